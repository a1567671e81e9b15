//! Crash simulation: a deterministic gateway-like script (accept, run,
//! dispatch, fail, prune) is cut at every write step, the store is dropped and
//! reopened, recovery runs as the reactor would, and the invariants are
//! checked: no committed reply is lost, no inbound message gets two committed
//! replies, and each chat's messages go out in order.

use super::tests::{check_consistency, env, out, tmp, turn};
use super::*;
use crate::llm::Role;
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[derive(Clone, Copy)]
enum Op {
    Accept(&'static str, &'static str),
    Run(&'static str, &'static str, usize),
    Dispatch(usize),
    Fail,
    Prune,
}

const SCRIPT: &[Op] = &[
    Op::Accept("A", "a1"),
    Op::Accept("B", "b1"),
    Op::Accept("A", "a1"), // platform redelivery
    Op::Run("A", "a1", 2),
    Op::Accept("A", "a2"),
    Op::Dispatch(1),
    Op::Run("B", "b1", 3),
    Op::Fail,
    Op::Run("A", "a2", 2),
    Op::Dispatch(10),
    Op::Accept("B", "b2"),
    Op::Run("B", "b2", 1),
    Op::Dispatch(10),
    Op::Prune,
    Op::Dispatch(10),
];

/// What the outside world saw (it survives the crash).
#[derive(Default)]
struct World {
    /// Every send: (seq, chat, text); resends after a crash appear twice.
    sent: Vec<(u64, String, String)>,
    /// Acknowledged with `delivered`.
    acked: BTreeSet<u64>,
    /// Seqs of replies whose commit returned Ok.
    committed: BTreeSet<u64>,
    /// Inbound messages whose accept committed: the adapter acknowledged
    /// them (advanced its offset), so the platform never redelivers them.
    accepted: BTreeSet<(&'static str, &'static str)>,
}

fn cfg() -> QueueConfig {
    QueueConfig {
        dedup_keep: 2,
        ..QueueConfig::default()
    }
}

fn chunks(id: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("reply {id}#{i}")).collect()
}

fn run_one(
    s: &Store,
    w: &mut World,
    chat: &str,
    id: &str,
    n: usize,
    now: u64,
) -> Result<(), QueueError> {
    let e = env("telegram", chat, id);
    let replies: Vec<Outbound> = chunks(id, n).iter().map(|t| out(chat, t)).collect();
    let turns = [
        turn(Role::User, id),
        turn(Role::Assistant, &format!("reply {id}")),
    ];
    let session = format!("telegram:{chat}");
    let c = s.commit_reply(
        &cfg(),
        &session,
        &turns,
        crate::llm::types::TokenUsage {
            input: 1,
            output: 1,
        },
        Some(InboundKey {
            channel: "telegram",
            id: &inbound_id(&e),
        }),
        &replies,
        now,
    )?;
    w.committed.extend(c.seqs);
    Ok(())
}

fn dispatch(s: &Store, w: &mut World, limit: usize, now: u64) -> Result<usize, QueueError> {
    let due = next_due(s, now, limit, &HashSet::new())?;
    for m in &due {
        w.sent.push((
            m.seq,
            m.row.outbound.chat_id.clone(),
            m.row.outbound.text.clone(),
        ));
        delivered(s, m.seq)?;
        w.acked.insert(m.seq);
    }
    Ok(due.len())
}

fn step(s: &Store, w: &mut World, op: Op, now: u64) -> Result<(), QueueError> {
    match op {
        Op::Accept(chat, id) => {
            accept_inbound(
                s,
                &cfg(),
                &env("telegram", chat, id),
                &format!("telegram:{chat}"),
                now,
            )?;
            w.accepted.insert((chat, id));
        }
        Op::Run(chat, id, n) => run_one(s, w, chat, id, n, now)?,
        Op::Dispatch(limit) => {
            dispatch(s, w, limit, now)?;
        }
        Op::Fail => {
            if let Some(m) = next_due(s, now, 1, &HashSet::new())?.first() {
                failed(s, &cfg(), m.seq, now, "HTTP 502", None, &mut |_| 0)?;
            }
        }
        Op::Prune => {
            prune_inbox(s, &cfg(), now + cfg().dedup_max_age_ms)?;
        }
    }
    Ok(())
}

/// Text → seqs over everything queued, dead or ever sent.
fn text_seqs(s: &Store, w: &World) -> BTreeMap<String, BTreeSet<u64>> {
    let mut m: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for q in list(s, usize::MAX).expect("list") {
        m.entry(q.row.outbound.text).or_default().insert(q.seq);
    }
    for d in dead_letters(s, usize::MAX).expect("dead") {
        m.entry(d.dead.row.outbound.text).or_default().insert(d.seq);
    }
    for (seq, _, text) in &w.sent {
        m.entry(text.clone()).or_default().insert(*seq);
    }
    m
}

fn check_after_reopen(s: &Store, w: &World, k: u32) {
    check_consistency(s);
    let queued: BTreeSet<u64> = list(s, usize::MAX)
        .expect("list")
        .iter()
        .map(|m| m.seq)
        .collect();
    let dead: BTreeSet<u64> = dead_letters(s, usize::MAX)
        .expect("dead")
        .iter()
        .map(|m| m.seq)
        .collect();
    for seq in &w.committed {
        assert!(
            w.acked.contains(seq) || queued.contains(seq) || dead.contains(seq),
            "crash at step {k}: committed reply #{seq} lost"
        );
    }
    for (text, seqs) in text_seqs(s, w) {
        assert_eq!(
            seqs.len(),
            1,
            "crash at step {k}: {text:?} committed twice: {seqs:?}"
        );
    }
}

/// What the reactor does on start: the platform redelivers what was never
/// acknowledged, pending messages run again, the queue drains.
fn recover_and_drain(s: &Store, w: &mut World, now: u64) {
    for op in SCRIPT {
        if let Op::Accept(chat, id) = *op {
            if w.accepted.contains(&(chat, id)) {
                continue;
            }
            accept_inbound(
                s,
                &cfg(),
                &env("telegram", chat, id),
                &format!("telegram:{chat}"),
                now,
            )
            .expect("accept");
        }
    }
    for (e, session) in pending_inbound(s, 100).expect("pending") {
        assert_eq!(session, format!("telegram:{}", e.chat_id));
        let n = SCRIPT
            .iter()
            .find_map(|op| match *op {
                Op::Run(_, id, n) if id == e.platform_id => Some(n),
                _ => None,
            })
            .expect("scripted");
        let chat = e.chat_id.clone();
        run_one(s, w, &chat, &e.platform_id, n, now).expect("re-run");
    }
    assert!(pending_inbound(s, 100).expect("pending").is_empty());
    while dispatch(s, w, 10, u64::MAX / 2).expect("drain") > 0 {}
}

fn check_final(s: &Store, w: &World, k: u32) {
    check_consistency(s);
    let st = stats(s, 0).expect("stats");
    assert_eq!(
        (st.depth, st.dead, st.inbound_pending),
        (0, 0, 0),
        "crash at step {k}"
    );
    let sent_texts: BTreeSet<&str> = w.sent.iter().map(|(_, _, t)| t.as_str()).collect();
    for op in SCRIPT {
        if let Op::Run(_, id, n) = *op {
            for t in chunks(id, n) {
                assert!(
                    sent_texts.contains(t.as_str()),
                    "crash at step {k}: {t:?} never delivered"
                );
            }
        }
    }
    for (text, seqs) in text_seqs(s, w) {
        assert_eq!(seqs.len(), 1, "crash at step {k}: {text:?} committed twice");
    }
    // Per chat, first sends are in sequence order and chunks in order.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (seq, chat, _) in &w.sent {
        if !seen.insert(*seq) {
            continue; // a resend of a message whose ack was cut by the crash
        }
        let prev = last.insert(chat.clone(), *seq);
        assert!(
            prev.is_none_or(|p| p < *seq),
            "crash at step {k}: chat {chat} out of order"
        );
    }
    // One transcript exchange per inbound message: no double commit.
    for chat in ["A", "B"] {
        let m = s
            .session(&format!("telegram:{chat}"))
            .expect("read")
            .expect("session");
        assert_eq!(m.next_seq, 4, "crash at step {k}: chat {chat} transcript");
    }
}

#[test]
fn crash_at_every_step_loses_nothing_and_commits_once() {
    let mut k = 1;
    loop {
        let path = tmp("crash");
        let mut w = World::default();
        let mut finished = true;
        {
            let s = Store::open(&path).expect("open");
            crash_after(k);
            for (i, op) in SCRIPT.iter().enumerate() {
                if let Err(e) = step(&s, &mut w, *op, 1_000 * (i as u64 + 1)) {
                    assert_eq!(e, QueueError::Store("injected crash".into()), "step {k}");
                    finished = false;
                    break;
                }
            }
        } // the store is dropped mid-script: the crash
        let armed = crash_disarm();
        assert_eq!(
            finished, armed,
            "a crash that fired must have stopped the script"
        );
        let s = Store::open(&path).expect("reopen");
        check_after_reopen(&s, &w, k);
        recover_and_drain(&s, &mut w, 100_000);
        check_final(&s, &w, k);
        drop(s);
        let _ = std::fs::remove_file(&path);
        if finished {
            assert!(k > 20, "the script has many crash points ({k})");
            println!("crash points exercised: {}", k - 1);
            break;
        }
        k += 1;
    }
}
