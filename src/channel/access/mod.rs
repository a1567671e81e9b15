//! Per-channel access policy, evaluated on every inbound envelope before any model call.
//!
//! DMs are gated by `dmPolicy` + `allowFrom` (+ pairing approvals); groups by
//! `groupPolicy`, the `groups` map (id or `"*"`), per-group sender lists and mention
//! gating. Pairing approvals open DMs only, never groups.

use super::envelope::{ChatKind, Envelope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Pairing,
    Allowlist,
    Open,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    Open,
    #[default]
    Allowlist,
    Disabled,
}

/// Settings for one group id, or for every group under the key `"*"`.
/// Unset fields fall back to the `"*"` rule, then to the channel defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_mention: Option<bool>,
    /// Senders allowed to trigger the bot in this group (ids or usernames, `"*"`).
    /// Unset means any member of an allowed group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AccessConfig {
    pub dm_policy: DmPolicy,
    /// DM senders always allowed: ids, `@username`/`username` where usernames are
    /// stable, optionally prefixed with the channel (`telegram:123`, `tg:123`); `"*"` = anyone.
    pub allow_from: Vec<String>,
    pub group_policy: GroupPolicy,
    /// Keys are group (chat) ids or `"*"`.
    pub groups: BTreeMap<String, GroupRule>,
    pub require_mention: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            dm_policy: DmPolicy::Pairing,
            allow_from: Vec::new(),
            group_policy: GroupPolicy::Allowlist,
            groups: BTreeMap::new(),
            require_mention: true,
        }
    }
}

/// JSON keys owned by [`AccessConfig`] inside a channel block.
pub const ACCESS_KEYS: &[&str] = &[
    "dmPolicy",
    "allowFrom",
    "groupPolicy",
    "groups",
    "requireMention",
];

impl AccessConfig {
    /// Reads the access keys out of a whole channel block (which also holds tokens etc.),
    /// so the config layer need not use `#[serde(flatten)]`. The gateway reads the
    /// typed block ([`AccessConfig::from_channel`]); tests write blocks as JSON.
    #[cfg(test)]
    pub fn from_channel_block(
        block: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<AccessConfig, String> {
        let mut sub = serde_json::Map::new();
        for k in ACCESS_KEYS {
            if let Some(v) = block.get(*k) {
                sub.insert((*k).to_string(), v.clone());
            }
        }
        let mut access: AccessConfig =
            serde_json::from_value(serde_json::Value::Object(sub)).map_err(|e| e.to_string())?;
        // Discord's servers and their channels, as group rules.
        if let Some(guilds) = block.get("guilds") {
            access.groups.extend(super::discord::guild_groups(guilds)?);
        }
        // Slack's channels, as group rules.
        if let Some(channels) = block.get("channels").and_then(|c| c.as_object()) {
            for (id, c) in channels {
                access
                    .groups
                    .insert(id.clone(), rule_of(c, &GroupRule::default()));
            }
        }
        // OpenClaw's `dm` block: off, or the older spellings of the policy.
        if let Some(dm) = block.get("dm") {
            let default_policy = block.get("dmPolicy").and_then(|p| p.as_str()) == Some("pairing");
            if let Some(policy) = dm.get("policy").filter(|_| default_policy) {
                access.dm_policy = serde_json::from_value(policy.clone())
                    .map_err(|e| format!("dm.policy: {e}"))?;
            }
            if let Some(list) = dm.get("allowFrom").filter(|_| access.allow_from.is_empty()) {
                access.allow_from = serde_json::from_value(list.clone())
                    .map_err(|e| format!("dm.allowFrom: {e}"))?;
            }
            if dm.get("enabled").and_then(serde_json::Value::as_bool) == Some(false) {
                access.dm_policy = DmPolicy::Disabled;
            }
        }
        Ok(access)
    }

    /// The access rules of a typed channel block (`channels.<name>`).
    pub fn from_channel(ch: &crate::config::Channel) -> Result<AccessConfig, String> {
        let parse_dm_policy = |policy: &str| match policy {
            "pairing" => Ok(DmPolicy::Pairing),
            "allowlist" => Ok(DmPolicy::Allowlist),
            "open" => Ok(DmPolicy::Open),
            "disabled" => Ok(DmPolicy::Disabled),
            other => Err(format!("unknown dmPolicy {other:?}")),
        };
        let mut dm_policy = parse_dm_policy(&ch.dm_policy)?;
        let mut allow_from = ch.allow_from.clone();
        // OpenClaw's `dm` block: off, or the older spellings of the policy.
        if let Some(dm) = &ch.dm {
            if let Some(policy) = dm.policy.as_deref().filter(|_| ch.dm_policy == "pairing") {
                dm_policy = parse_dm_policy(policy).map_err(|e| format!("dm.policy: {e}"))?;
            }
            if let Some(list) = dm.allow_from.as_ref().filter(|_| allow_from.is_empty()) {
                allow_from = list.clone();
            }
            if dm.enabled == Some(false) {
                dm_policy = DmPolicy::Disabled;
            }
        }
        let group_policy = match ch.group_policy.as_str() {
            "open" => GroupPolicy::Open,
            "allowlist" => GroupPolicy::Allowlist,
            "disabled" => GroupPolicy::Disabled,
            other => return Err(format!("unknown groupPolicy {other:?}")),
        };
        let mut groups: BTreeMap<String, GroupRule> = ch
            .groups
            .iter()
            .map(|(id, rule)| {
                let rule = GroupRule {
                    require_mention: rule.require_mention,
                    allow_from: rule.allow_from.clone(),
                    enabled: rule.enabled,
                };
                (id.clone(), rule)
            })
            .collect();
        // Discord's servers and their channels, as group rules.
        groups.extend(super::discord::guild_rules(&ch.guilds));
        // Slack's channels, as group rules.
        for (id, c) in &ch.channels {
            let rule = GroupRule {
                require_mention: c.require_mention,
                allow_from: c.users.clone(),
                enabled: c.enabled.or(c.allow),
            };
            groups.insert(id.clone(), rule);
        }
        Ok(AccessConfig {
            dm_policy,
            allow_from,
            group_policy,
            groups,
            require_mention: ch.require_mention,
        })
    }
}

/// A group rule from a config object (`requireMention`, `users`,
/// `enabled` or its older spelling `allow`), each field not set taken from
/// `inherit`.
pub fn rule_of(v: &serde_json::Value, inherit: &GroupRule) -> GroupRule {
    let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_bool);
    let users = v.get("users").and_then(|u| u.as_array()).map(|a| {
        a.iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect()
    });
    GroupRule {
        require_mention: flag("requireMention").or(inherit.require_mention),
        allow_from: users.or_else(|| inherit.allow_from.clone()),
        enabled: flag("enabled")
            .or_else(|| flag("allow"))
            .or(inherit.enabled),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Accept,
    /// Unknown DM sender under `dmPolicy: pairing`: run the pairing flow, do not answer.
    Pair,
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DropReason {
    DmDisabled,
    NotAllowlisted,
    GroupDisabled,
    GroupNotAllowed,
    SenderNotAllowedInGroup,
    NoMention,
    Empty,
}

/// Channels whose usernames are unique and may be used in allowlists.
fn has_stable_usernames(channel: &str) -> bool {
    channel == "telegram"
}

/// Whether one allowlist entry names the sender of `env`.
pub fn entry_matches(entry: &str, env: &Envelope) -> bool {
    let mut e = entry.trim();
    if e == "*" {
        return true;
    }
    if let Some(rest) = strip_prefix_ci(e, &env.channel).and_then(|r| r.strip_prefix(':')) {
        e = rest;
    } else if env.channel == "telegram" {
        if let Some(rest) = strip_prefix_ci(e, "tg:") {
            e = rest;
        }
    }
    if e.is_empty() {
        return false;
    }
    if e == env.sender_id {
        return true;
    }
    if !has_stable_usernames(&env.channel) {
        return false;
    }
    let name = e.strip_prefix('@').unwrap_or(e);
    if name.is_empty() || name.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match &env.sender_username {
        Some(u) => u.trim_start_matches('@').eq_ignore_ascii_case(name),
        None => false,
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

fn list_matches(list: &[String], env: &Envelope) -> bool {
    list.iter().any(|e| entry_matches(e, env))
}

/// The access decision. `approved` says whether pairing approved this sender id.
///
/// DM: `disabled` drops; `open` and `allowlist` accept senders matching `allowFrom`
/// (so `open` without `"*"` fails closed; `validate` rejects that config); pairing
/// approvals are merged into `allowFrom` for DMs, as OpenClaw does; `pairing` answers
/// [`Verdict::Pair`] for anyone else.
/// Group: policy `disabled` drops; `allowlist` needs the group id or `"*"` in `groups`;
/// a rule with `enabled: false` drops; the rule's `allowFrom` (per-group, else `"*"`)
/// gates senders (pairing is not consulted); then mention gating.
pub fn decide(cfg: &AccessConfig, env: &Envelope, approved: &dyn Fn(&str) -> bool) -> Verdict {
    if env.is_empty() {
        return Verdict::Drop(DropReason::Empty);
    }
    match env.chat_kind {
        ChatKind::Direct => decide_dm(cfg, env, approved),
        ChatKind::Group => decide_group(cfg, env),
    }
}

fn decide_dm(cfg: &AccessConfig, env: &Envelope, approved: &dyn Fn(&str) -> bool) -> Verdict {
    let listed = || list_matches(&cfg.allow_from, env) || approved(&env.sender_id);
    match cfg.dm_policy {
        DmPolicy::Disabled => Verdict::Drop(DropReason::DmDisabled),
        DmPolicy::Open | DmPolicy::Allowlist => {
            if listed() {
                Verdict::Accept
            } else {
                Verdict::Drop(DropReason::NotAllowlisted)
            }
        }
        DmPolicy::Pairing => {
            if listed() {
                Verdict::Accept
            } else {
                Verdict::Pair
            }
        }
    }
}

fn decide_group(cfg: &AccessConfig, env: &Envelope) -> Verdict {
    if cfg.group_policy == GroupPolicy::Disabled {
        return Verdict::Drop(DropReason::GroupDisabled);
    }
    // A group without a rule of its own takes its parent's (a Discord
    // server's), then the `"*"` rule.
    let own = cfg.groups.get(&env.chat_id).or_else(|| {
        env.parent_group
            .as_ref()
            .and_then(|parent| cfg.groups.get(parent))
    });
    let star = cfg.groups.get("*");
    if cfg.group_policy == GroupPolicy::Allowlist && own.is_none() && star.is_none() {
        return Verdict::Drop(DropReason::GroupNotAllowed);
    }
    let enabled = own
        .and_then(|r| r.enabled)
        .or_else(|| star.and_then(|r| r.enabled))
        .unwrap_or(true);
    if !enabled {
        return Verdict::Drop(DropReason::GroupDisabled);
    }
    let senders = own
        .and_then(|r| r.allow_from.as_ref())
        .or_else(|| star.and_then(|r| r.allow_from.as_ref()));
    if let Some(list) = senders {
        if !list_matches(list, env) {
            return Verdict::Drop(DropReason::SenderNotAllowedInGroup);
        }
    }
    let need_mention = own
        .and_then(|r| r.require_mention)
        .or_else(|| star.and_then(|r| r.require_mention))
        .unwrap_or(cfg.require_mention);
    if need_mention && !(env.mentioned || env.reply_to_bot) {
        return Verdict::Drop(DropReason::NoMention);
    }
    Verdict::Accept
}

#[cfg(test)]
mod tests;
