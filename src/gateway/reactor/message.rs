//! `message.send`: a text to a target the owner allowed
//! (`tools.message.allowTargets`), queued in the durable outbound queue like
//! any reply (crash-safe, in order per chat). The agent's `message` tool
//! calls it through its sink; an operator client may call it too. The
//! allowlist is checked here, where the config lives: an unlisted target is
//! refused with the key to set, `"owner"` is the chat (and thread) the owner
//! used last, and every other target must name a channel of this build.

use super::{err, CallResult, Reactor};
use crate::api_error::ErrorCode;
use crate::channel::ReplyTarget;
use serde_json::{json, Value};

/// Longest text one `message.send` takes, in bytes (split into the
/// channel's message size on delivery).
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// The allowlist entry for the owner's last-used chat.
pub(crate) const OWNER_TARGET: &str = "owner";

impl Reactor {
    pub(super) fn message_send(&mut self, params: &Value) -> CallResult {
        let to = params
            .get("to")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("");
        let text = params
            .get("text")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("");
        if to.is_empty() || text.is_empty() {
            return Err(err(
                ErrorCode::InvalidRequest,
                "params.to (a target of tools.message.allowTargets) and params.text (non-empty) are required",
            ));
        }
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(err(
                ErrorCode::TooLarge,
                format!(
                    "text of {} bytes is over the {MAX_MESSAGE_BYTES}-byte limit of one message; send less or split it",
                    text.len()
                ),
            ));
        }
        let allowed = &self.cfg.tools.message.allow_targets;
        if !allowed.iter().any(|a| a == to) {
            let listed = if allowed.is_empty() {
                "the list is empty".to_string()
            } else {
                format!("allowed: {}", allowed.join(", "))
            };
            return Err(err(
                ErrorCode::Unauthorized,
                format!("{to:?} is not an allowed target ({listed}); the owner adds it to tools.message.allowTargets"),
            ));
        }
        let target =
            resolve(to, self.owner_chat()).map_err(|e| err(ErrorCode::InvalidRequest, e))?;
        let chat = target.chat();
        self.deliver(
            &chat,
            &target,
            &[],
            crate::llm::TokenUsage::default(),
            None,
            text,
        )
        .map_err(|e| {
            err(
                ErrorCode::Store,
                format!("could not queue the message: {e}"),
            )
        })?;
        log::info!("message.send: {} bytes queued for {chat}", text.len());
        Ok(json!({"to": to, "chat": chat, "thread": target.thread_id, "queued": true}))
    }
}

/// The reply target an allowed entry names: the owner's last chat for
/// `"owner"`, else a `channel:chat` whose channel this build has.
fn resolve(to: &str, owner: Option<&ReplyTarget>) -> Result<ReplyTarget, String> {
    if to == OWNER_TARGET {
        return owner.cloned().ok_or_else(|| {
            "the owner has not written from a channel yet, so \"owner\" names no chat; name a channel:chat target".to_string()
        });
    }
    crate::channel::registry::check_target(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_needs_a_last_chat_and_other_targets_a_known_channel() {
        assert!(resolve("owner", None)
            .expect_err("no chat")
            .contains("not written"));
        let mut last = ReplyTarget::parse("telegram:42").expect("target");
        last.thread_id = Some("7".into());
        assert_eq!(resolve("owner", Some(&last)).expect("owner"), last);
        assert_eq!(resolve("telegram:9", None).expect("chat").chat_id, "9");
        let e = resolve("wechat:1", None).expect_err("no adapter");
        assert!(e.contains("no adapter"), "{e}");
    }
}
