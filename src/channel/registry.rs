//! The adapters compiled into this build: channel name → start function and
//! capabilities. The reactor reaches adapters only through this table, so a
//! new adapter is one line here, its folder under `src/channel/`, and its
//! config keys.

use super::adapter::{Capabilities, StartFn};
use super::envelope::ReplyTarget;
use super::split::Measure;

/// One adapter of this build.
pub struct Adapter {
    pub name: &'static str,
    pub capabilities: Capabilities,
    pub start: StartFn,
}

/// Every adapter of this build.
pub const ADAPTERS: &[Adapter] = &[
    Adapter {
        name: super::telegram::CHANNEL,
        capabilities: super::telegram::CAPABILITIES,
        start: super::telegram::shell::start,
    },
    Adapter {
        name: super::slack::CHANNEL,
        capabilities: super::slack::CAPABILITIES,
        start: super::slack::shell::start,
    },
    Adapter {
        name: super::discord::CHANNEL,
        capabilities: super::discord::CAPABILITIES,
        start: super::discord::shell::start,
    },
];

pub fn find(name: &str) -> Option<&'static Adapter> {
    ADAPTERS.iter().find(|a| a.name == name)
}

/// The channel names with an adapter, for messages.
pub fn supported() -> String {
    ADAPTERS
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for a channel this build has no adapter for.
pub fn unsupported(name: &str) -> String {
    format!(
        "channel {name:?} has no adapter in this build of pinch; supported channels: {}",
        supported()
    )
}

/// The longest message text for `channel`: the adapter's limit, or the
/// channel's smaller `textChunkLimit` (at least 100), and how it is counted.
pub fn text_limit(channel: &str, configured: Option<usize>) -> (usize, Measure) {
    let (platform, measure) = match find(channel) {
        Some(a) => (a.capabilities.max_text, a.capabilities.measure),
        None => (4000, Measure::Utf16),
    };
    let limit = configured
        .map(|l| l.clamp(100.min(platform), platform))
        .unwrap_or(platform);
    (limit, measure)
}

/// A delivery target (`channel:chat`) that an adapter of this build can
/// deliver to.
pub fn check_target(to: &str) -> Result<ReplyTarget, String> {
    // A misspelt channel name gets its "did you mean".
    let target = crate::config::check_target(to)?;
    if find(&target.channel).is_none() {
        return Err(format!("{to:?}: {}", unsupported(&target.channel)));
    }
    Ok(target)
}

/// Every enabled channel has an adapter, and every configured delivery
/// target (heartbeat, hooks) names one.
pub fn check_config(cfg: &crate::config::Config) -> Result<(), String> {
    for (name, ch) in &cfg.channels {
        if ch.enabled && find(name).is_none() {
            return Err(format!(
                "channels.{name}: {}; set channels.{name}.enabled to false or remove the block",
                unsupported(name)
            ));
        }
    }
    if let Some(to) = cfg
        .agents
        .defaults
        .heartbeat
        .as_ref()
        .and_then(|h| h.to.as_deref())
    {
        check_target(to).map_err(|e| format!("agents.defaults.heartbeat.to: {e}"))?;
    }
    for (name, hook) in &cfg.hooks {
        if let Some(to) = hook.to.as_deref() {
            check_target(to).map_err(|e| format!("hooks.{name}.to: {e}"))?;
        }
    }
    // "owner" is the chat the owner used last.
    for to in &cfg.tools.message.allow_targets {
        if to != "owner" {
            check_target(to).map_err(|e| format!("tools.message.allowTargets: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_is_compiled_in_and_others_are_refused_by_name() {
        assert!(find("telegram").is_some());
        let e = check_target("wechat:abc").expect_err("no wechat adapter");
        assert!(e.contains("no adapter") && e.contains("telegram"), "{e}");
        assert_eq!(check_target("telegram:42").expect("ok").chat_id, "42");
        assert!(check_target("telegram").is_err());
    }

    #[test]
    fn text_limit_is_the_platforms_or_a_smaller_configured_one() {
        assert_eq!(text_limit("telegram", None), (4096, Measure::Utf16));
        assert_eq!(text_limit("telegram", Some(9000)).0, 4096);
        assert_eq!(text_limit("telegram", Some(10)).0, 100);
        assert_eq!(text_limit("telegram", Some(1000)).0, 1000);
    }

    #[test]
    fn an_enabled_channel_without_adapter_is_a_config_error() {
        let mut cfg = crate::config::Config::default();
        cfg.channels
            .insert("wechat".into(), crate::config::Channel::default());
        let e = check_config(&cfg).expect_err("refused");
        assert!(
            e.starts_with("channels.wechat:") && e.contains("telegram"),
            "{e}"
        );
        cfg.channels.get_mut("wechat").expect("block").enabled = false;
        assert!(check_config(&cfg).is_ok());
    }
}
