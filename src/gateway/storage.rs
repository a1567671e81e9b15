//! Disk upkeep inside the reactor: at a quiet moment (no run in flight, no
//! message for 5 s), at most once an hour, measure `$PINCH_HOME`, plan
//! retention (`store::retention::plan`, pure) and carry it out in bounded
//! transactions; rotate the config audit log; compact the store when free
//! pages pass the threshold. Also `store.snapshot` for `pinch backup`: the
//! reactor only opens the read transaction that fixes the snapshot's
//! content; one worker thread at a time copies it to the file, and
//! `store.snapshot.status` reports when it is there.

use super::reactor::Reactor;
use crate::api_error::{ApiError, ErrorCode};
use crate::store::retention::{self, Action};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// First pass this long after start, then one per interval.
const FIRST_PASS: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_secs(3600);
/// Turns removed per transaction and per pass (the reactor stays responsive;
/// what is left goes in the next pass).
const PRUNE_CHUNK: usize = 500;
const PRUNE_PER_PASS: u64 = 20_000;
/// Files counted when measuring the home.
const MAX_ENTRIES: usize = 100_000;
/// The config audit log is rotated (one old file kept) past this size.
const AUDIT_LOG_CAP: u64 = 1 << 20;
/// The gateway's own log, which the tarball's init scripts append its
/// output to (`logs/gateway.log`), is cut back past this size.
const GATEWAY_LOG_CAP: u64 = 4 << 20;

/// What the last pass saw and did.
#[derive(Debug, Default, Clone)]
pub struct Upkeep {
    pub last_pass: Option<Instant>,
    pub last_pass_ms: u64,
    /// What the last pass that ran to the end found and did.
    pub last: PassOutcome,
    pub last_error: Option<String>,
    /// The store snapshot for `pinch backup`, written off the reactor.
    pub snapshot: SnapshotSlot,
}

/// Where the snapshot worker stands.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum SnapshotState {
    #[default]
    Idle,
    Running,
    Done {
        path: PathBuf,
        bytes: u64,
    },
    Failed(String),
}

/// Shared between the reactor and the (single) snapshot worker.
#[derive(Debug, Default, Clone)]
pub struct SnapshotSlot {
    state: Arc<Mutex<SnapshotState>>,
    /// The worker, until the shutdown takes it to join.
    worker: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// Raised at shutdown: the copy stops and its file is removed.
    stop: Arc<AtomicBool>,
}

impl SnapshotSlot {
    pub fn get(&self) -> SnapshotState {
        crate::util::lock(&self.state).clone()
    }

    fn set(&self, state: SnapshotState) {
        *crate::util::lock(&self.state) = state;
    }

    /// Shutdown: tells a snapshot being written to stop (its unfinished
    /// file is removed) and hands its worker over to be joined.
    pub fn stop(&self) -> Option<std::thread::JoinHandle<()>> {
        self.stop.store(true, Ordering::SeqCst);
        crate::util::lock(&self.worker).take()
    }

    pub fn running(&self) -> bool {
        self.get() == SnapshotState::Running
    }

    /// The status object of `store.snapshot` and `store.snapshot.status`.
    pub fn json(&self) -> Value {
        match self.get() {
            SnapshotState::Idle => json!({"state": "idle"}),
            SnapshotState::Running => json!({"state": "running"}),
            SnapshotState::Done { path, bytes } => {
                json!({"state": "done", "path": path, "bytes": bytes})
            }
            SnapshotState::Failed(error) => json!({"state": "failed", "error": error}),
        }
    }

    /// Starts writing `snapshot` on a worker thread, unless one runs.
    pub fn start(
        &self,
        begin: impl FnOnce() -> Result<crate::store::Snapshot, String>,
    ) -> Result<Value, String> {
        {
            let mut g = crate::util::lock(&self.state);
            if *g == SnapshotState::Running {
                return Err(
                    "a snapshot is being written (another backup runs); try again when it is done"
                        .into(),
                );
            }
            let snapshot = begin()?;
            *g = SnapshotState::Running;
            let slot = self.clone();
            let spawned = std::thread::Builder::new()
                .name("store-snapshot".into())
                .stack_size(512 * 1024)
                .spawn(move || {
                    let state = match snapshot.write(&slot.stop) {
                        Ok((path, bytes)) => SnapshotState::Done { path, bytes },
                        Err(e) => {
                            log::info!("store snapshot not written: {e}");
                            SnapshotState::Failed(e)
                        }
                    };
                    slot.set(state);
                });
            match spawned {
                // The previous worker has ended (its state is not Running).
                Ok(handle) => *crate::util::lock(&self.worker) = Some(handle),
                Err(e) => {
                    *g = SnapshotState::Failed(format!("cannot start the snapshot thread: {e}"));
                    return Err(format!("cannot start the snapshot thread: {e}"));
                }
            }
        }
        Ok(self.json())
    }
}

/// Sizes of regular files under `root`, not following links, bounded.
pub fn dir_bytes(root: &Path) -> u64 {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return total;
            }
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

/// Renames `path` to `path.1` (replacing an older one) once it passes `cap`.
pub fn rotate_if_large(path: &Path, cap: u64) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > cap => {
            let mut old = path.as_os_str().to_os_string();
            old.push(".1");
            std::fs::rename(path, old).is_ok()
        }
        _ => false,
    }
}

/// Cuts a log that another process appends to (`>>`: every write goes to
/// the end of the file) once it passes `cap`: its last `cap` bytes go to
/// `path.1` (replacing an older one), then the file is truncated in place,
/// so the writer's descriptor stays valid. Lines written between the copy
/// and the truncation are lost.
pub fn cut_appended_log(path: &Path, cap: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom, Write};
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    else {
        return false;
    };
    let len = match file.metadata() {
        Ok(m) if m.is_file() && m.len() > cap => m.len(),
        _ => return false,
    };
    let mut old = path.as_os_str().to_os_string();
    old.push(".1");
    let copied = file
        .seek(SeekFrom::Start(len.saturating_sub(cap)))
        .and_then(|_| {
            let mut out = std::fs::File::create(&old)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                out.write_all(buf.get(..n).unwrap_or_default())?;
            }
        });
    if let Err(e) = copied {
        log::warn!("cannot keep the tail of {}: {e}", path.display());
    }
    file.set_len(0).is_ok()
}

/// What one pass found and did.
#[derive(Debug, Default, Clone)]
pub struct PassOutcome {
    pub home_bytes: u64,
    pub store_bytes: u64,
    pub over_budget: bool,
    pub removed_turns: u64,
    pub removed_dead: u64,
    pub compacted_bytes: u64,
}

/// One retention pass over `store` (in `home`) at `now_ms`: measure, plan,
/// remove in bounded transactions, compact. The reactor's upkeep and the
/// soak benchmark both call it.
pub fn run_pass(
    store: &mut crate::store::Store,
    s: &crate::config::storage::Storage,
    max_dead: u64,
    home: &Path,
    now_ms: u64,
) -> Result<PassOutcome, String> {
    rotate_if_large(&home.join("logs").join("config-audit.jsonl"), AUDIT_LOG_CAP);
    cut_appended_log(&home.join("logs").join("gateway.log"), GATEWAY_LOG_CAP);
    let policy = retention::Policy {
        max_bytes: s.max_bytes,
        transcript_days: s.transcript_days,
        dead_letter_days: s.dead_letter_days,
        compact_min_bytes: (s.max_bytes / 16).max(1 << 20),
    };
    let usage = retention::Usage {
        home_bytes: dir_bytes(home),
        reclaimable_bytes: store.reclaimable_bytes()?,
    };
    let archived = store.archived()?;
    let dead: Vec<retention::Dead> = crate::queue::dead_letters(store, max_dead as usize)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|d| retention::Dead {
            seq: d.seq,
            dead_ms: d.dead.dead_ms,
            bytes: d.dead.row.bytes,
        })
        .collect();
    let plan = retention::plan(&policy, now_ms, &usage, &archived, &dead);
    let over_budget = plan.over_budget;
    let mut turns = 0u64;
    let mut dead_seqs = Vec::new();
    let mut compact = false;
    for action in plan.actions {
        match action {
            Action::PruneTurns {
                session,
                from_seq,
                below_seq,
                before_ms,
            } => {
                let mut from = from_seq;
                while turns < PRUNE_PER_PASS {
                    let n = store.prune_turns(&session, from, below_seq, before_ms, PRUNE_CHUNK)?;
                    turns += n;
                    if n < PRUNE_CHUNK as u64 {
                        break;
                    }
                    from = from.saturating_add(n);
                }
            }
            Action::DropDead { seq } => dead_seqs.push(seq),
            Action::Compact => compact = true,
        }
    }
    let dropped = if dead_seqs.is_empty() {
        0
    } else {
        let n = crate::queue::expire_dead(store, &dead_seqs).map_err(|e| e.to_string())?;
        store.meta_add("retention_dead", n)?;
        n
    };
    let mut shrunk = 0;
    if compact {
        // redb's compaction moves pages toward the start in steps: a few
        // calls return what one leaves (bounded).
        for _ in 0..3 {
            shrunk += store.compact()?;
        }
        store.meta_add("retention_compactions", 1)?;
        store.meta_add("retention_freed_bytes", shrunk)?;
    }
    if turns > 0 || dropped > 0 || shrunk > 0 {
        log::info!(
            "storage upkeep: removed {turns} archived turns and {dropped} dead letters; compaction returned {shrunk} bytes"
        );
    }
    let home_bytes = dir_bytes(home);
    Ok(PassOutcome {
        home_bytes,
        store_bytes: std::fs::metadata(&store.path).map(|m| m.len()).unwrap_or(0),
        over_budget: over_budget || home_bytes > s.max_bytes,
        removed_turns: turns,
        removed_dead: dropped,
        compacted_bytes: shrunk,
    })
}

impl Reactor {
    /// Called every second from `maintain`; runs a pass when due and quiet.
    pub(super) fn storage_tick(&mut self, quiet: bool) {
        // Compaction cannot run while the snapshot's read transaction is
        // open; upkeep waits for the backup.
        if !quiet || self.upkeep.snapshot.running() {
            return;
        }
        let due = match self.upkeep.last_pass {
            None => self.started.elapsed() >= FIRST_PASS,
            Some(t) => t.elapsed() >= INTERVAL,
        };
        if due {
            self.storage_pass(crate::util::now_ms());
        }
    }

    /// One retention pass at `now_ms`; returns the status object.
    pub(super) fn storage_pass(&mut self, now_ms: u64) -> Value {
        self.upkeep.last_pass = Some(Instant::now());
        self.upkeep.last_pass_ms = now_ms;
        match self.storage_pass_inner(now_ms) {
            Ok(()) => self.upkeep.last_error = None,
            Err(e) => {
                log::warn!("storage upkeep: {e}");
                self.upkeep.last_error = Some(e);
            }
        }
        self.storage_status()
    }

    fn storage_pass_inner(&mut self, now_ms: u64) -> Result<(), String> {
        let home = self
            .store
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let storage = self.cfg.storage.clone();
        let max_dead = self.cfg.queue.max_dead;
        let out = run_pass(&mut self.store, &storage, max_dead, &home, now_ms)?;
        if out.over_budget {
            log::warn!(
                "storage: {} bytes used, over storage.maxBytes ({}) with nothing left that retention may remove (live sessions and queued messages are kept)",
                out.home_bytes,
                storage.max_bytes
            );
        }
        self.upkeep.last = out;
        Ok(())
    }

    /// The `storage` object of `status`.
    pub(super) fn storage_status(&self) -> Value {
        let (u, last) = (&self.upkeep, &self.upkeep.last);
        let total = |k: &str| self.store.meta_get(k).unwrap_or(0);
        json!({
            "schemaVersion": self.store.schema_version().unwrap_or(0),
            "maxBytes": self.cfg.storage.max_bytes,
            "homeBytes": last.home_bytes,
            "storeBytes": last.store_bytes,
            "overBudget": last.over_budget,
            "lastPassMs": u.last_pass_ms,
            "lastPass": {"turns": last.removed_turns, "deadLetters": last.removed_dead, "compactedBytes": last.compacted_bytes},
            "removedTotal": {
                "turns": total("retention_turns"),
                "deadLetters": total("retention_dead"),
                "compactions": total("retention_compactions"),
                "freedBytes": total("retention_freed_bytes"),
            },
            "lastError": u.last_error,
        })
    }

    /// `storage.*` and `store.*` methods.
    pub(super) fn storage_call(&mut self, method: &str) -> super::reactor::CallResult {
        match method {
            "store.snapshot" => {
                let store = &self.store;
                self.upkeep
                    .snapshot
                    .start(|| store.snapshot_begin())
                    .map_err(|e| ApiError::new(ErrorCode::Store, e))
            }
            "store.snapshot.status" => Ok(self.upkeep.snapshot.json()),
            "storage.run" => {
                if self.upkeep.snapshot.running() {
                    return Err(ApiError::new(
                        ErrorCode::Busy,
                        "a backup snapshot is being written; storage upkeep waits for it",
                    ));
                }
                if !self.runs_idle() {
                    return Err(ApiError::new(
                        ErrorCode::Busy,
                        "runs are in flight; storage upkeep waits for a quiet moment",
                    ));
                }
                Ok(self.storage_pass(crate::util::now_ms()))
            }
            "storage.status" => Ok(self.storage_status()),
            other => Err(ApiError::new(
                ErrorCode::MethodNotFound,
                format!("unknown method {other:?}; see docs/protocol.md"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_appended_log_past_its_cap_keeps_its_tail_and_its_writer_goes_on() {
        let dir = std::env::temp_dir().join(format!("pinch-logcut-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("gateway.log");
        let mut writer = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open");
        writer.write_all(b"0123456789").expect("write");
        assert!(!cut_appended_log(&path, 10), "at the cap: kept");
        writer.write_all(b"abcdef").expect("write");
        assert!(cut_appended_log(&path, 10));
        assert_eq!(
            std::fs::read(dir.join("gateway.log.1")).expect("old"),
            b"6789abcdef"
        );
        writer.write_all(b"next line").expect("write");
        assert_eq!(
            std::fs::read(&path).expect("log"),
            b"next line",
            "the writer appends from the start"
        );
        assert!(!cut_appended_log(&dir.join("missing.log"), 10));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_pass_over_budget_removes_dead_letters_but_never_what_is_still_to_deliver() {
        let home = std::env::temp_dir().join(format!("pinch-keepq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join("logs")).expect("home");
        let mut store = crate::store::Store::open(&home.join("state.redb")).expect("store");
        let queue = crate::queue::QueueConfig::default();
        let to = crate::channel::ReplyTarget::parse("telegram:1").expect("target");
        let day = 86_400_000u64;
        let waiting = store
            .commit_reply(
                &queue,
                "",
                &[],
                crate::llm::types::TokenUsage::default(),
                None,
                &[to.outbound("still to deliver".into())],
                day,
            )
            .expect("queued");
        let dead = store
            .commit_reply(
                &queue,
                "",
                &[],
                crate::llm::types::TokenUsage::default(),
                None,
                &[to.outbound("undeliverable".into())],
                day,
            )
            .expect("queued");
        crate::queue::fail_permanent(&store, &queue, dead.seqs[0], day, "403").expect("dead");
        let storage = crate::config::storage::Storage {
            max_bytes: 1,
            transcript_days: 1,
            dead_letter_days: 1,
        };
        let outcome =
            run_pass(&mut store, &storage, queue.max_dead, &home, 40 * day).expect("pass");
        assert!(outcome.over_budget);
        assert_eq!(outcome.removed_dead, 1);
        let left = crate::queue::list(&store, 10).expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].seq, waiting.seqs[0]);
        assert_eq!(left[0].row.outbound.text, "still to deliver");
        drop(store);
        let _ = std::fs::remove_dir_all(&home);
    }
}
