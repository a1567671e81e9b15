//! The owner's one conversation. Under `session.dmScope: "main"` (the
//! default) the owner's direct messages on every channel, the web chat and
//! `pinch chat` share the session `main`; everyone else keeps a session per
//! chat. The owner of a channel is `channels.<ch>.owner`, else its first
//! `allowFrom` entry; on the web and the CLI it is the operator.
//!
//! Scheduled jobs and heartbeats without a target run in their own small
//! session and report into `main`: the answer is recorded there (after a
//! one-line user turn naming the job) in the transaction that queues it for
//! the owner's last-used chat, so a reply in the DM has it in context.

use super::Reactor;
use crate::config::session::MAIN_SESSION;
use crate::llm::{Message, Part, Role};
use crate::store::Turn;

impl Reactor {
    /// The session of a channel message: the owner's direct messages share
    /// `main` under `session.dmScope: "main"`; everyone else has their own.
    pub(crate) fn channel_session(&self, env: &crate::channel::Envelope) -> String {
        if env.chat_kind == crate::channel::ChatKind::Direct
            && self.cfg.session.main_scope()
            && self.is_owner(env)
        {
            return MAIN_SESSION.to_string();
        }
        format!("{}:{}", env.channel, env.chat_id)
    }

    /// Whether the sender is the channel's owner (`channels.<ch>.owner`,
    /// else the first `allowFrom` entry).
    pub(crate) fn is_owner(&self, env: &crate::channel::Envelope) -> bool {
        self.cfg
            .channels
            .get(&env.channel)
            .and_then(crate::config::session::channel_owner)
            .is_some_and(|o| crate::channel::access::entry_matches(&o, env))
    }

    /// The session a client gets when it names none.
    pub(super) fn client_default_session(&self, conn: u64) -> String {
        if self.cfg.session.main_scope() {
            MAIN_SESSION.to_string()
        } else {
            format!("ws:{conn}")
        }
    }

    /// Records a job's or heartbeat's answer in `main` and queues it for
    /// `to` (the owner's last chat) in one transaction; without `to` it is
    /// recorded only. The run's own turns stay in its own session.
    /// `max_attempts`: see [`super::DeliveryOptions`].
    pub(super) fn report_to_main(
        &mut self,
        label: &str,
        to: Option<&crate::channel::ReplyTarget>,
        text: &str,
        now: u64,
        max_attempts: Option<u32>,
    ) -> Result<(), String> {
        let note = crate::agent::prompt::envelope(
            now,
            &crate::agent::prompt::RunContext {
                origin: label.to_string(),
                ..Default::default()
            },
            "(report)",
        );
        let turns = [
            Turn::message(
                now,
                Message {
                    role: Role::User,
                    parts: vec![Part::Text(note)],
                },
            ),
            Turn::message(
                now,
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::Text(text.to_string())],
                },
            ),
        ];
        match to {
            Some(to) => self.deliver_with(
                MAIN_SESSION,
                to,
                &turns,
                crate::llm::TokenUsage::default(),
                None,
                text,
                super::DeliveryOptions {
                    max_attempts,
                    ..Default::default()
                },
            ),
            None => {
                let meta = self.store.append(
                    MAIN_SESSION,
                    &turns,
                    crate::llm::TokenUsage::default(),
                    now,
                )?;
                self.sessions.put(meta);
                Ok(())
            }
        }
    }

    /// `heartbeat.skipIdleDays`: why a beat is skipped, when the owner's
    /// conversation has been quiet longer than that (or never started).
    pub(super) fn owner_idle(&self, days: Option<u32>, now: u64) -> Option<String> {
        let days = days?;
        let last = self
            .store
            .session(MAIN_SESSION)
            .ok()
            .flatten()
            .map(|m| m.updated_ms)
            .unwrap_or(0);
        let idle = now.saturating_sub(last);
        (idle > u64::from(days).saturating_mul(86_400_000)).then(|| {
            format!("skipped: the owner's conversation has been quiet for more than {days} day(s) (heartbeat.skipIdleDays); no model call")
        })
    }
}
