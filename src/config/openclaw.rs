//! Keys that OpenClaw's `openclaw.json` schema defines and pinch does not
//! implement. A config carried over from OpenClaw keeps working: such a key
//! is dropped with one warning line naming it, while a key neither system
//! knows stays a fatal error with the nearest valid key.
//!
//! The table is consulted only when the typed parse or the validation
//! rejects a key, so a key pinch implements is never shadowed by it. Where
//! pinch has the same concept under its own name the schema accepts
//! OpenClaw's spelling directly (`proxy.proxyUrl`, `channels.<name>.proxy`,
//! `authHeader`), so those are not listed here.
//!
//! Patterns: `*` stands for any map key (a provider id, a channel name), `[]`
//! for any list index. A pattern matches an error's field path when it
//! matches a prefix of it; the matched prefix is the member that is dropped.

/// Known OpenClaw paths pinch ignores (from OpenClaw 2026.9.6's schema).
pub const UNSUPPORTED: &[&str] = &[
    // Top-level keys with no pinch counterpart (the 44 top-level keys minus
    // $schema, gateway, models, agents, channels, tools, logging, hooks and
    // proxy, which pinch reads).
    "meta",
    "env",
    "wizard",
    "diagnostics",
    "update",
    "telemetry",
    "browser",
    "ui",
    "secrets",
    "auth",
    "accessGroups",
    "acp",
    "nodeHost",
    "worktreeRoot",
    "worktreeAcceleration",
    "security",
    "bindings",
    "broadcast",
    "attachments",
    "messages",
    "tts",
    "commands",
    "approvals",
    "session.scope",
    "session.groupScope",
    "session.identityLinks",
    "session.resetByType",
    "session.resetByChannel",
    "session.mainKey",
    "session.sendPolicy",
    "session.maintenance",
    "session.store",
    "cron",
    "transcripts",
    "discovery",
    "talk",
    "cloudWorkers",
    "desktop",
    "memory",
    "mcp",
    "skills",
    "plugins",
    "surfaces",
    // gateway.*
    "gateway.mode",
    "gateway.customBindHost",
    "gateway.auth.mode",
    "gateway.auth.password",
    "gateway.auth.allowTailscale",
    "gateway.auth.rateLimit",
    "gateway.auth.trustedProxy",
    "gateway.trustedProxies",
    "gateway.allowRealIpFallback",
    "gateway.tailscale",
    "gateway.controlUi",
    "gateway.terminal",
    "gateway.remote",
    "gateway.tls",
    "gateway.http",
    "gateway.tools",
    "gateway.nodes",
    "gateway.reload",
    "gateway.roles",
    "gateway.push",
    "gateway.publicOrigin",
    // models.*
    "models.mode",
    "models.catalogRefresh",
    "models.providers.*.auth",
    "models.providers.*.maxTokens",
    "models.providers.*.timeoutSeconds",
    "models.providers.*.region",
    "models.providers.*.params",
    "models.providers.*.injectNumCtxForOpenAICompat",
    "models.providers.*.localService",
    "models.providers.*.agentRuntime",
    "models.providers.*.request",
    "models.providers.*.models[].api",
    "models.providers.*.models[].baseUrl",
    "models.providers.*.models[].cost",
    "models.providers.*.models[].contextTokens",
    "models.providers.*.models[].thinkingLevelMap",
    "models.providers.*.models[].params",
    "models.providers.*.models[].headers",
    "models.providers.*.models[].compat",
    "models.providers.*.models[].mediaInput",
    // agents.*
    "agents.list",
    "agents.entries",
    "agents.defaults.models",
    "agents.defaults.utilityModel",
    "agents.defaults.imageModel",
    "agents.defaults.pdfModel",
    "agents.defaults.imageGenerationModel",
    "agents.defaults.musicGenerationModel",
    "agents.defaults.videoGenerationModel",
    "agents.defaults.compaction",
    "agents.defaults.contextPruning",
    "agents.defaults.contextInjection",
    "agents.defaults.bootstrapTotalMaxChars",
    "agents.defaults.thinkingDefault",
    "agents.defaults.sandbox",
    "agents.defaults.typingMode",
    "agents.defaults.humanDelay",
    "agents.defaults.blockStreamingDefault",
    "agents.defaults.blockStreamingBreak",
    "agents.defaults.blockStreamingChunk",
    "agents.defaults.blockStreamingCoalesce",
    "agents.defaults.skills",
    "agents.defaults.userTimezone",
    "agents.defaults.subagents",
    "agents.defaults.memorySearch",
    "agents.defaults.heartbeat.session",
    "agents.defaults.heartbeat.target",
    "agents.defaults.heartbeat.directPolicy",
    "agents.defaults.heartbeat.accountId",
    "agents.defaults.heartbeat.prompt",
    "agents.defaults.heartbeat.timeoutSeconds",
    "agents.defaults.heartbeat.lightContext",
    "agents.defaults.heartbeat.isolatedSession",
    "agents.defaults.heartbeat.agentId",
    // channels.*: shared blocks and channel ids pinch has no adapter or
    // validation for, then per-channel keys.
    "channels.defaults",
    "channels.modelByChannel",
    "channels.a2a",
    "channels.buzz",
    "channels.clickclack",
    "channels.googlechat",
    "channels.imessage",
    "channels.irc",
    "channels.line",
    "channels.matrix",
    "channels.mattermost",
    "channels.msteams",
    "channels.nextcloud-talk",
    "channels.nostr",
    "channels.qa-channel",
    "channels.raft",
    "channels.reef",
    "channels.signal",
    "channels.sms",
    "channels.synology-chat",
    "channels.tlon",
    "channels.twitch",
    "channels.zalo",
    "channels.zalouser",
    "channels.*.groupAllowFrom",
    "channels.*.dm.groupEnabled",
    "channels.*.dm.groupChannels",
    "channels.*.channels.*.skills",
    "channels.*.channels.*.systemPrompt",
    "channels.*.replyToModeByChatType",
    "channels.*.guilds.*.ignoreOtherMentions",
    "channels.*.guilds.*.roles",
    "channels.*.guilds.*.channels.*.skills",
    "channels.*.guilds.*.channels.*.systemPrompt",
    "channels.*.mentionPatterns",
    "channels.*.historyLimit",
    "channels.*.dmHistoryLimit",
    "channels.*.replyToMode",
    "channels.*.mediaMaxMb",
    "channels.*.tokenFile",
    "channels.*.accounts",
    "channels.*.defaultAccount",
    "channels.*.webhookUrl",
    "channels.*.webhookSecret",
    "channels.*.webhookPath",
    "channels.*.groups.*.systemPrompt",
    "channels.*.groups.*.skills",
    "channels.*.groups.*.tools",
    "channels.*.groups.*.toolsBySender",
    "channels.*.groups.*.groupPolicy",
    "channels.*.groups.*.topics",
    // tools.*
    "tools.profile",
    "tools.allow",
    "tools.alsoAllow",
    "tools.deny",
    "tools.byProvider",
    "tools.toolsBySender",
    "tools.elevated",
    "tools.fs",
    "tools.web",
    "tools.sandbox",
    "tools.media",
    "tools.links",
    "tools.message",
    "tools.agentToAgent",
    "tools.sessions",
    "tools.subagents",
    "tools.loopDetection",
    "tools.exec.host",
    "tools.exec.security",
    "tools.exec.ask",
    "tools.exec.node",
    "tools.exec.pathPrepend",
    "tools.exec.safeBins",
    "tools.exec.backgroundMs",
    "tools.exec.timeoutSec",
    "tools.exec.cleanupMs",
    "tools.exec.notifyOnExit",
    "tools.exec.applyPatch",
    // logging.*
    "logging.file",
    "logging.consoleLevel",
    "logging.consoleStyle",
    "logging.redactSensitive",
    "logging.redactPatterns",
    // OpenClaw's `hooks` is one HTTP ingress block; pinch's is a map of
    // named hooks. These names are recognised when their value is not a
    // hook (a pinch hook is always an object, so it never fails here).
    "hooks.enabled",
    "hooks.token",
    "hooks.path",
    "hooks.allowedAgentIds",
    "hooks.defaultSessionKey",
    "hooks.allowRequestSessionKey",
    "hooks.allowedSessionKeyPrefixes",
    "hooks.presets",
    "hooks.mappings",
    "hooks.transformsDir",
    "hooks.gmail",
    "hooks.internal",
    // proxy.*: proxyUrl, enabled and tls.caFile are read (the default route).
    "proxy.loopbackMode",
];

/// The segments of a field path: `a.b[2].c` → `a`, `b`, `[2]`, `c`.
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if path.is_empty() {
        return out;
    }
    for part in path.split('.') {
        match part.find('[') {
            Some(i) => {
                if i > 0 {
                    out.push(&part[..i]);
                }
                let mut rest = &part[i..];
                while let Some(end) = rest.find(']') {
                    out.push(&rest[..=end]);
                    rest = &rest[end + 1..];
                }
            }
            None => out.push(part),
        }
    }
    out
}

fn joined(segs: &[&str]) -> String {
    let mut s = String::new();
    for seg in segs {
        if !s.is_empty() && !seg.starts_with('[') {
            s.push('.');
        }
        s.push_str(seg);
    }
    s
}

fn pattern_matches(pattern: &str, path_segs: &[&str]) -> Option<usize> {
    let pat = segments(pattern);
    if pat.len() > path_segs.len() {
        return None;
    }
    let ok = pat.iter().zip(path_segs).all(|(p, s)| match *p {
        "*" => !s.starts_with('['),
        "[]" => s.starts_with('['),
        literal => literal == *s,
    });
    ok.then_some(pat.len())
}

/// The OpenClaw member to drop for an error at `path` (the path itself or
/// one of its parents), or `None` when OpenClaw does not know it either.
pub fn unsupported_member(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let segs = segments(path);
    UNSUPPORTED
        .iter()
        .filter_map(|p| pattern_matches(p, &segs))
        .min()
        .map(|n| joined(&segs[..n]))
}

/// OpenClaw key names directly under `parent` (a concrete path), for
/// "did you mean" suggestions next to pinch's own.
pub fn known_children(parent: &str) -> Vec<&'static str> {
    let segs = segments(parent);
    let mut out = Vec::new();
    for pattern in UNSUPPORTED {
        let pat = segments(pattern);
        if pat.len() != segs.len() + 1 {
            continue;
        }
        if pattern_matches(&joined(&pat[..segs.len()]), &segs) == Some(segs.len())
            || (segs.is_empty() && pat.len() == 1)
        {
            if let Some(last) = pattern.rsplit('.').next() {
                out.push(last);
            }
        }
    }
    out
}

/// One ignored key: where it is and the line printed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    pub path: String,
    pub line: usize,
    pub column: usize,
}

impl IgnoredKey {
    /// `"<path>: ignored: not supported by pinch"`.
    pub fn message(&self) -> String {
        format!("{}: ignored: not supported by pinch", self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_prefixes_and_wildcards() {
        assert_eq!(
            unsupported_member("agents.defaults.imageModel.primary").as_deref(),
            Some("agents.defaults.imageModel")
        );
        assert_eq!(unsupported_member("tts").as_deref(), Some("tts"));
        assert_eq!(
            unsupported_member("models.providers.minimax.models[0].cost.input").as_deref(),
            Some("models.providers.minimax.models[0].cost")
        );
        assert_eq!(
            unsupported_member("channels.telegram.groups.-100.topics").as_deref(),
            Some("channels.telegram.groups.-100.topics")
        );
        assert_eq!(unsupported_member("agents.defaults.imageModle"), None);
        assert_eq!(unsupported_member("models.providers.x.models"), None);
        assert_eq!(unsupported_member(""), None);
    }

    #[test]
    fn all_44_top_level_keys_are_known() {
        let read = [
            "$schema", "gateway", "models", "agents", "channels", "tools", "logging", "hooks",
            "proxy", "session",
        ];
        let top: Vec<&str> = UNSUPPORTED
            .iter()
            .filter(|p| !p.contains('.'))
            .copied()
            .collect();
        assert_eq!(top.len() + read.len(), 44);
        for r in read {
            assert!(!top.contains(&r), "{r}");
        }
    }

    #[test]
    fn children_for_suggestions() {
        let c = known_children("agents.defaults");
        assert!(c.contains(&"imageModel") && c.contains(&"musicGenerationModel"));
        assert!(known_children("").contains(&"tts"));
        assert!(known_children("channels.telegram").contains(&"mediaMaxMb"));
    }
}
