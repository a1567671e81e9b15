//! The one method table of `Reactor::call`: every API method by name
//! (docs/protocol.md) with the handler that serves it, and the chat and
//! session handlers themselves. Channel, storage and `cron.*` handlers live
//! with their state (`channels.rs`, `../storage.rs`, `proactive.rs`).

use super::{
    bounded_history, err, session_param, CallResult, Enqueued, Origin, Pending, Reactor,
    HISTORY_TEXT_BYTES, MAX_TEXT,
};
use crate::api_error::ErrorCode;
use serde_json::{json, Value};

/// One API request as a handler sees it.
pub(super) struct Request<'a> {
    /// The WebSocket or chat-stream client, if any (`None`: a one-shot query).
    pub conn: Option<u64>,
    pub method: &'a str,
    pub params: Value,
}

type Handler = fn(&mut Reactor, Request) -> CallResult;

/// A method name and its handler.
struct Method {
    name: &'static str,
    handler: Handler,
}

const METHODS: &[Method] = &[
    Method {
        name: "chat.send",
        handler: Reactor::chat_send,
    },
    Method {
        name: "chat.abort",
        handler: Reactor::chat_abort,
    },
    Method {
        name: "chat.history",
        handler: Reactor::chat_history,
    },
    Method {
        name: "sessions.show",
        handler: Reactor::chat_history,
    },
    Method {
        name: "sessions.list",
        handler: Reactor::sessions_list,
    },
    Method {
        name: "sessions.reset",
        handler: Reactor::sessions_reset,
    },
    Method {
        name: "status",
        handler: |r, _| Ok(r.status()),
    },
    Method {
        name: "message.send",
        handler: |r, q| r.message_send(&q.params),
    },
    Method {
        name: "health",
        handler: |_, _| Ok(json!({"ok": true})),
    },
    Method {
        name: "pairing.list",
        handler: Reactor::channel_call,
    },
    Method {
        name: "pairing.approve",
        handler: Reactor::channel_call,
    },
    Method {
        name: "pairing.reject",
        handler: Reactor::channel_call,
    },
    Method {
        name: "queue.list",
        handler: Reactor::channel_call,
    },
    Method {
        name: "queue.retry",
        handler: Reactor::channel_call,
    },
    Method {
        name: "queue.drop",
        handler: Reactor::channel_call,
    },
    Method {
        name: "store.snapshot",
        handler: |r, q| r.storage_call(q.method),
    },
    Method {
        name: "store.snapshot.status",
        handler: |r, q| r.storage_call(q.method),
    },
    Method {
        name: "storage.run",
        handler: |r, q| r.storage_call(q.method),
    },
    Method {
        name: "storage.status",
        handler: |r, q| r.storage_call(q.method),
    },
    Method {
        name: "cron.list",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "cron.get",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "cron.add",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "cron.edit",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "cron.remove",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "cron.run",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "cron.lastChat",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "heartbeat.run",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
    Method {
        name: "hook.run",
        handler: |r, q| r.proactive_call(q.method, q.params),
    },
];

/// The handler of `method`, if the API has it.
pub(super) fn find(method: &str) -> Option<Handler> {
    METHODS.iter().find(|m| m.name == method).map(|m| m.handler)
}

impl Reactor {
    /// `chat.send`: a message into a session's run queue (or an in-chat command).
    fn chat_send(&mut self, request: Request) -> CallResult {
        let Request { conn, params, .. } = request;
        let conn =
            conn.ok_or_else(|| err(ErrorCode::InvalidRequest, "chat.send needs a connection"))?;
        let session = match params.get("session") {
            None => self.client_default_session(conn),
            Some(_) => session_param(&params, Some(conn))?,
        };
        let mut text = params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        let mut note = None;
        if let Some(answer) = self.client_command(conn, &session, &mut text, &mut note) {
            return answer;
        }
        if text.is_empty() {
            return Err(err(
                ErrorCode::InvalidRequest,
                "params.text must be a non-empty string",
            ));
        }
        if text.len() > MAX_TEXT {
            return Err(err(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes is over the {MAX_TEXT}-byte limit",
                    text.len()
                ),
            ));
        }
        let run_id = self.new_run_id();
        let pending = Pending {
            origin: Origin::Client(conn),
            text,
            run_id,
            run: Default::default(),
        };
        let queued = self.enqueue_run(&session, pending)? == Enqueued::Queued;
        let mut answer = json!({"runId": run_id.to_string(), "session": session, "queued": queued});
        if let Some((command, reply)) = note {
            answer["command"] = json!(command);
            answer["text"] = json!(reply);
        }
        Ok(answer)
    }

    /// `chat.abort`: cancels a run in flight.
    fn chat_abort(&mut self, request: Request) -> CallResult {
        let run = request
            .params
            .get("runId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok());
        match run.and_then(|r| self.runs.get(&r)) {
            Some(r) => {
                r.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(json!({"aborted": true}))
            }
            None => Err(err(ErrorCode::NotFound, "no such run in flight")),
        }
    }

    /// `chat.history` and `sessions.show`: a session's turns, newest last, bounded in size.
    fn chat_history(&mut self, request: Request) -> CallResult {
        let Request {
            conn,
            method,
            params,
        } = request;
        let session = match (params.get("session"), conn) {
            (None, Some(c)) => self.client_default_session(c),
            _ => session_param(&params, conn)?,
        };
        let limit = params
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(50)
            .min(500) as usize;
        let meta = self
            .store
            .session(&session)
            .map_err(|e| err(ErrorCode::Store, e))?;
        // With `before` (a cursor, or null for the newest page) the
        // answer is one page of every stored turn plus the next cursor.
        if let Some(before) = params.get("before") {
            let (turns, cursor) = self
                .store
                .page(&session, before.as_u64(), limit)
                .map_err(|e| err(ErrorCode::Store, e))?;
            let (items, complete) = bounded_history(&turns, HISTORY_TEXT_BYTES);
            // Turns left out for size are on the next page.
            let cursor = if complete {
                cursor
            } else {
                items.first().and_then(|i| i["seq"].as_u64())
            };
            return Ok(
                json!({"session": session, "meta": meta.as_ref().map(crate::api_wire::SessionInfo::from), "turns": items, "complete": complete, "before": cursor}),
            );
        }
        let turns = self
            .store
            .recent(&session, limit, usize::MAX)
            .map_err(|e| err(ErrorCode::Store, e))?;
        if meta.is_none() && method == "sessions.show" {
            return Err(err(ErrorCode::NotFound, format!("no session {session:?}")));
        }
        let (items, complete) = bounded_history(&turns, HISTORY_TEXT_BYTES);
        Ok(
            json!({"session": session, "meta": meta.as_ref().map(crate::api_wire::SessionInfo::from), "turns": items, "complete": complete}),
        )
    }

    /// `sessions.list`: stored sessions, newest first.
    fn sessions_list(&mut self, request: Request) -> CallResult {
        let params = request.params;
        let limit = params
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(100)
            .min(1000) as usize;
        let list = self
            .store
            .list_sessions(limit)
            .map_err(|e| err(ErrorCode::Store, e))?;
        Ok(json!({"sessions": crate::api_wire::sessions(&list)}))
    }

    /// `sessions.reset`: archives a session's transcript.
    fn sessions_reset(&mut self, request: Request) -> CallResult {
        let Request { conn, params, .. } = request;
        let session = session_param(&params, conn)?;
        if self.busy.contains_key(&session) {
            return Err(err(
                ErrorCode::Busy,
                "a reply is being generated for this session; try again when it ends",
            ));
        }
        let archived = self
            .archive_session(&session)
            .map_err(|e| err(ErrorCode::Store, e))?;
        Ok(json!({"session": session, "reset": archived.is_some(), "archivedAs": archived}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_listed_once_and_documented() {
        let protocol = include_str!("../../../docs/protocol.md");
        let mut seen = std::collections::HashSet::new();
        for m in METHODS {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            let documented = protocol.contains(&format!("`{}`", m.name));
            assert!(documented, "{} is not in docs/protocol.md", m.name);
        }
        assert!(find("chat.send").is_some());
        assert!(find("chat.sendx").is_none());
        assert!(find("cron.").is_none(), "no prefix matches");
    }
}
