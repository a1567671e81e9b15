//! The reactor's part of shutdown, after its loop has ended: every run in
//! flight is stopped; a channel message's run is dropped (its inbox entry
//! stays and runs again at the next start); a client's run (WebSocket,
//! web chat, `pinch chat`) is checkpointed: what it had done — its user
//! turn, whole tool rounds and the answer streamed so far — goes into the
//! session's transcript with a note that the gateway stopped it, so the
//! person finds it in the history and can ask to go on. Then the pool takes
//! no more runs, adapters are told to stop, the job table is saved and the
//! clients' outboxes are dropped. Until the adapters' threads have ended,
//! their send outcomes are still recorded: a reply that reached the
//! platform is never sent again at the next start.

use super::{Origin, Reactor};
use crate::agent::{Checkpoint, RunEvent, RunUpdate};
use crate::channel::adapter::AdapterEvent;
use crate::gateway::shutdown::NamedThread;
use crate::gateway::ToReactor;
use crate::llm::{Message, Part, Role};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TryRecvError;

/// The note that ends a checkpointed answer.
pub const INTERRUPTED: &str =
    "[interrupted: the gateway shut down before this answer was finished]";

/// The longest the shutdown waits for client runs' checkpoints, leaving
/// the rest of the grace period to the joins.
pub const CHECKPOINT_WAIT: Duration = Duration::from_secs(3);

/// How often the wait looks for the workers' reports.
const POLL: Duration = Duration::from_millis(10);

impl Reactor {
    /// Stops every run in flight (see the file comment), tells the clients
    /// whose runs are checkpointed, closes the pool, stops the adapters and
    /// the snapshot worker, saves the job table and drops the outboxes.
    /// Returns the threads to join besides the adapters' (the snapshot
    /// worker, when one ran).
    pub fn begin_shutdown(&mut self) -> Vec<NamedThread> {
        for r in self.runs.values() {
            r.cancel.store(true, Ordering::SeqCst);
        }
        let clients: Vec<(u64, u64, String)> = self
            .runs
            .iter()
            .filter_map(|(id, r)| match r.origin {
                Origin::Client(conn) => Some((conn, *id, r.session.clone())),
                _ => None,
            })
            .collect();
        log::info!(
            "stopping {} run(s) in flight ({} of clients, to be checkpointed)",
            self.runs.len(),
            clients.len()
        );
        for (conn, run_id, session) in clients {
            self.send(conn, crate::gateway::protocol::event_frame("chat.error", json!({"runId": run_id.to_string(), "session": session, "message": "the gateway is shutting down; what was done so far is kept in the session's history", "kind": "shutdown"})));
        }
        self.pool.close();
        self.stop_channels();
        self.flush_proactive();
        self.clients.clear();
        let mut threads = Vec::new();
        if let Some(handle) = self.upkeep.snapshot.stop() {
            threads.push(NamedThread {
                name: "store-snapshot".into(),
                handle,
            });
        }
        threads
    }

    /// Waits until `deadline` for the workers' checkpoints of client runs
    /// (only run updates are read; other requests are not served and an
    /// adapter's unacknowledged batch is polled again at the next start),
    /// and keeps each in its session's transcript. A run that did not
    /// report in time is kept as the reactor saw it: the message and the
    /// text streamed.
    pub fn checkpoint_client_runs(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<ToReactor>,
        deadline: Instant,
    ) {
        while self.runs.values().any(|r| r.client.is_some()) {
            match rx.try_recv() {
                Ok(msg) => self.on_stopping_message(msg),
                Err(TryRecvError::Empty) if Instant::now() < deadline => std::thread::sleep(POLL),
                Err(_) => break,
            }
        }
        let late: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, r)| r.client.is_some())
            .map(|(id, _)| *id)
            .collect();
        for run_id in late {
            let Some(run) = self.runs.remove(&run_id) else {
                continue;
            };
            let Some(client) = run.client else {
                continue;
            };
            log::warn!(
                "run {run_id}: no checkpoint from its worker in time; keeping what was streamed"
            );
            let user = Message {
                role: Role::User,
                parts: vec![Part::Text(client.text)],
            };
            self.keep_checkpoint(
                &run.session,
                Checkpoint {
                    messages: vec![user],
                    partial: client.streamed,
                    model: String::new(),
                    usage: Default::default(),
                    cache: Default::default(),
                    summary: None,
                },
            );
        }
    }

    /// Reads the adapters' last reports until every adapter thread has
    /// ended or `deadline` passes: a send that went out while the gateway
    /// stopped is recorded as delivered, so the next start does not send it
    /// again.
    pub fn settle_adapters(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<ToReactor>,
        adapters: &[NamedThread],
        deadline: Instant,
    ) {
        loop {
            let ended = adapters.iter().all(|t| t.handle.is_finished());
            while let Ok(msg) = rx.try_recv() {
                self.on_stopping_message(msg);
            }
            if ended || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(POLL);
        }
    }

    /// A message during shutdown: client runs' updates are kept (see
    /// [`Self::on_stopping_run`]) and send outcomes recorded; the rest is
    /// dropped (an inbound batch left unacknowledged is polled again at the
    /// next start, a query's caller sees the gateway gone).
    fn on_stopping_message(&mut self, msg: ToReactor) {
        match msg {
            ToReactor::Run(update) => self.on_stopping_run(update),
            ToReactor::Adapter {
                event: AdapterEvent::Sent { seq, result },
                ..
            } => self.on_sent(seq, result),
            _ => {}
        }
    }

    /// A run update during shutdown: a client run's checkpoint is kept, its
    /// answer if it finished first is stored as usual; the rest is dropped.
    fn on_stopping_run(&mut self, update: RunUpdate) {
        let Some(run) = self.runs.get(&update.run_id) else {
            return;
        };
        if run.client.is_none() {
            return;
        }
        let session = run.session.clone();
        match update.event {
            RunEvent::Checkpoint(checkpoint) => {
                self.runs.remove(&update.run_id);
                self.keep_checkpoint(&session, checkpoint);
            }
            RunEvent::Final { .. } | RunEvent::Delta(_) | RunEvent::Restart { .. } => {
                self.on_run(update)
            }
            RunEvent::Error { .. } => {
                // Failed before it could stop: nothing to keep, as for any
                // failed run.
                self.runs.remove(&update.run_id);
            }
            _ => {}
        }
    }

    /// Appends a checkpoint to the session: its messages, then the partial
    /// answer ending with [`INTERRUPTED`].
    fn keep_checkpoint(&mut self, session: &str, checkpoint: Checkpoint) {
        let Checkpoint {
            mut messages,
            partial,
            model,
            usage,
            cache,
            summary,
        } = checkpoint;
        let note = if partial.trim().is_empty() {
            INTERRUPTED.to_string()
        } else {
            format!("{}\n\n{INTERRUPTED}", partial.trim_end())
        };
        messages.push(Message {
            role: Role::Assistant,
            parts: vec![Part::Text(note)],
        });
        let now = crate::util::now_ms();
        let turns = super::proactive::final_turns(now, messages, &model, usage, cache, summary);
        match self.store.append(session, &turns, usage, now) {
            Ok(meta) => {
                self.sessions.put(meta);
                log::info!(
                    "session {session}: the run in flight is checkpointed in its transcript"
                );
            }
            Err(e) => log::error!("session {session}: could not keep the checkpoint: {e}"),
        }
    }

    /// Waits for the agent workers until `deadline`; returns how many still run.
    pub fn wait_workers(&self, deadline: Instant) -> usize {
        self.pool.wait_stopped(deadline)
    }
}
