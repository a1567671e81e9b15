//! Tests of the delivery queue against real redb files in the temp directory:
//! dedup, one-transaction commits, per-chat order, backoff and dead letters,
//! bounds, corrupt rows, plus a consistency checker shared with the crash tests.

use super::*;
use crate::channel::{ChatKind, Envelope};
use crate::llm::{Message, Part, Role, TokenUsage};
use crate::store::Turn;
use redb::ReadableTableMetadata;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

static N: AtomicU32 = AtomicU32::new(0);

pub(super) fn tmp(name: &str) -> std::path::PathBuf {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let p = std::env::temp_dir().join(format!("pinch-queue-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

pub(super) fn env(channel: &str, chat: &str, id: &str) -> Envelope {
    Envelope {
        channel: channel.into(),
        account: "default".into(),
        chat_id: chat.into(),
        chat_kind: ChatKind::Direct,
        sender_id: chat.into(),
        sender_username: None,
        sender_name: "Ann".into(),
        mentioned: false,
        reply_to_bot: false,
        text: format!("message {id}"),
        attachments: vec![],
        platform_id: id.into(),
        time_ms: 0,
        thread_id: None,
        parent_group: None,
    }
}

pub(super) fn out(chat: &str, text: &str) -> Outbound {
    Outbound {
        channel: "telegram".into(),
        account: "default".into(),
        chat_id: chat.into(),
        text: text.into(),
        reply_to: None,
        thread_id: None,
        max_attempts: None,
        edit: None,
    }
}

pub(super) fn turn(role: Role, text: &str) -> Turn {
    Turn::message(
        1,
        Message {
            role,
            parts: vec![Part::Text(text.into())],
        },
    )
}

fn none() -> HashSet<u64> {
    HashSet::new()
}

fn enqueue(s: &Store, cfg: &QueueConfig, chat: &str, text: &str, now: u64) -> u64 {
    let c = s
        .commit_reply(
            cfg,
            "",
            &[],
            TokenUsage::default(),
            None,
            &[out(chat, text)],
            now,
        )
        .expect("commit");
    c.seqs[0]
}

fn texts(v: &[QueuedMsg]) -> Vec<&str> {
    v.iter().map(|m| m.row.outbound.text.as_str()).collect()
}

fn inbox_rows(s: &Store) -> usize {
    let tx = s.db.begin_read().expect("read");
    let t = tx.open_table(INBOX).expect("open");
    t.iter().expect("iter").count()
}

/// Checks every index and counter against the tables they summarize.
pub(super) fn check_consistency(s: &Store) {
    let tx = s.db.begin_read().expect("read");
    let outq = tx.open_table(OUTQ).expect("open");
    let chats = tx.open_table(OUTQ_CHAT).expect("open");
    let due = tx.open_table(OUTQ_DUE).expect("open");
    let meta = tx.open_table(META).expect("open");
    let mut rows: BTreeMap<u64, QueuedRow> = BTreeMap::new();
    for r in outq.iter().expect("iter") {
        let (k, v) = r.expect("row");
        rows.insert(
            k.value(),
            serde_json::from_slice(v.value()).expect("decode"),
        );
    }
    let mut by_chat: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in chats.iter().expect("iter") {
        let (k, v) = r.expect("row");
        let (ck, seq) = k.value();
        assert_eq!(rows.get(&seq).map(|r| r.chat_key.as_str()), Some(ck));
        assert_eq!(rows[&seq].bytes, v.value());
        by_chat.entry(ck.to_string()).or_default().push(seq);
    }
    assert_eq!(by_chat.values().map(Vec::len).sum::<usize>(), rows.len());
    let mut heads: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in due.iter().expect("iter") {
        let (k, v) = r.expect("row");
        let prev = heads.insert(v.value().to_string(), k.value());
        assert!(prev.is_none(), "two heads for {}", v.value());
    }
    assert_eq!(heads.len(), by_chat.len());
    for (ck, seqs) in &by_chat {
        let (at, seq) = heads[ck];
        assert_eq!(seq, seqs[0], "head of {ck} is its lowest seq");
        assert_eq!(at, rows[&seq].next_at_ms);
    }
    let mut n: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in rows.values() {
        let e = n.entry(r.outbound.channel.clone()).or_default();
        e.0 += 1;
        e.1 += r.bytes;
    }
    let got_n: BTreeMap<String, u64> = meta_prefixed(&meta, "n:")
        .expect("meta")
        .into_iter()
        .collect();
    let got_b: BTreeMap<String, u64> = meta_prefixed(&meta, "b:")
        .expect("meta")
        .into_iter()
        .collect();
    let want_n: BTreeMap<String, u64> = n.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    let want_b: BTreeMap<String, u64> = n.iter().map(|(k, v)| (k.clone(), v.1)).collect();
    assert_eq!(got_n, want_n);
    assert_eq!(got_b, want_b);
    let dead = tx.open_table(DEAD).expect("open");
    let dead_n = meta.get(K_DEAD).expect("meta").map_or(0, |v| v.value());
    assert_eq!(dead.len().expect("len"), dead_n);
    let inbox = tx.open_table(INBOX).expect("open");
    let age = tx.open_table(INBOX_AGE).expect("open");
    let pending = tx.open_table(INBOX_PENDING).expect("open");
    assert_eq!(inbox.len().expect("len"), age.len().expect("len"));
    for r in pending.iter().expect("iter") {
        let (k, _) = r.expect("row");
        assert!(inbox.get(k.value()).expect("get").is_some());
    }
    let total: u64 = meta_prefixed(&meta, "inbox:")
        .expect("meta")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, inbox.len().expect("len"));
}

#[test]
fn dedup_by_platform_id_survives_reopen_and_stays_bounded() {
    let path = tmp("dedup");
    let cfg = QueueConfig {
        dedup_keep: 5,
        ..QueueConfig::default()
    };
    {
        let s = Store::open(&path).expect("open");
        let e = env("telegram", "42", "7");
        assert_eq!(
            accept_inbound(&s, &cfg, &e, "telegram:42", 1).expect("a"),
            Accept::New
        );
        assert_eq!(
            accept_inbound(&s, &cfg, &e, "telegram:42", 2).expect("a"),
            Accept::Duplicate
        );
        let other = env("discord", "42", "7");
        assert_eq!(
            accept_inbound(&s, &cfg, &other, "discord:42", 3).expect("a"),
            Accept::New
        );
        let other_chat = env("telegram", "43", "7");
        assert_eq!(
            accept_inbound(&s, &cfg, &other_chat, "t:43", 3).expect("a"),
            Accept::New
        );
        check_consistency(&s);
    }
    let s = Store::open(&path).expect("reopen");
    let e = env("telegram", "42", "7");
    assert_eq!(
        accept_inbound(&s, &cfg, &e, "telegram:42", 4).expect("a"),
        Accept::Duplicate
    );
    let pend = pending_inbound(&s, 10).expect("pending");
    assert_eq!(pend.len(), 3, "accepted, never answered");
    assert_eq!(pend[0].0.platform_id, "7");
    assert_eq!(pend[0].1, "telegram:42");

    // Answer 30 messages: the window keeps about `dedup_keep` done entries,
    // never drops pending ones.
    for i in 0..30u64 {
        let e = env("telegram", "42", &format!("m{i}"));
        accept_inbound(&s, &cfg, &e, "telegram:42", 10 + i).expect("accept");
        s.commit_reply(
            &cfg,
            "telegram:42",
            &[],
            TokenUsage::default(),
            Some(InboundKey {
                channel: "telegram",
                id: &inbound_id(&e),
            }),
            &[],
            10 + i,
        )
        .expect("done");
    }
    check_consistency(&s);
    let rows = inbox_rows(&s);
    assert!(rows <= 5 + 2 + 2, "bounded: {rows} rows");
    assert!(
        accept_inbound(&s, &cfg, &env("telegram", "42", "m29"), "x", 50).expect("a")
            == Accept::Duplicate,
        "the newest stay in the window"
    );
    {
        let tx = s.db.begin_read().expect("read");
        let t = tx.open_table(INBOX).expect("open");
        let id = inbound_id(&env("telegram", "42", "m29"));
        let row = t
            .get(("telegram", id.as_str()))
            .expect("get")
            .expect("kept");
        let v: serde_json::Value = serde_json::from_slice(row.value()).expect("json");
        assert_eq!(
            (v["state"].as_str(), v["envelope"]["text"].as_str()),
            (Some("done"), Some(""))
        );
    }
    // Age bound: everything done and older than 48 h goes; pending stay.
    let later = 50 + cfg.dedup_max_age_ms;
    assert!(prune_inbox(&s, &cfg, later).expect("prune") > 0);
    check_consistency(&s);
    assert_eq!(inbox_rows(&s), 3, "only the 3 pending remain");
    assert_eq!(pending_inbound(&s, 10).expect("p").len(), 3);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn commit_reply_is_one_transaction() {
    let path = tmp("commit");
    let cfg = QueueConfig::default();
    let e = env("telegram", "42", "100");
    let id = inbound_id(&e);
    let turns = [turn(Role::User, "q"), turn(Role::Assistant, "a")];
    {
        let s = Store::open(&path).expect("open");
        accept_inbound(&s, &cfg, &e, "telegram:42", 1).expect("accept");
        // A failure after the turns and the inbound mark, at the third chunk:
        let bad = [out("42", "one"), out("42", "two"), out("", "three")];
        let r = s.commit_reply(
            &cfg,
            "telegram:42",
            &turns,
            TokenUsage {
                input: 5,
                output: 6,
            },
            Some(InboundKey {
                channel: "telegram",
                id: &id,
            }),
            &bad,
            2,
        );
        assert!(matches!(r, Err(QueueError::Invalid(_))), "{r:?}");
        assert!(
            s.session("telegram:42").expect("r").is_none(),
            "no turns written"
        );
        assert_eq!(
            pending_inbound(&s, 10).expect("p").len(),
            1,
            "still pending"
        );
        assert!(list(&s, 10).expect("list").is_empty(), "no chunk queued");
        // An injected crash at every step inside the transaction: nothing lands.
        let good = [out("42", "one"), out("42", "two"), out("42", "three")];
        for k in 1..=5 {
            crash_after(k);
            let r = s.commit_reply(
                &cfg,
                "telegram:42",
                &turns,
                TokenUsage {
                    input: 5,
                    output: 6,
                },
                Some(InboundKey {
                    channel: "telegram",
                    id: &id,
                }),
                &good,
                2,
            );
            crash_after(0);
            assert!(r.is_err(), "step {k}");
            assert!(s.session("telegram:42").expect("r").is_none());
            assert!(list(&s, 10).expect("list").is_empty());
            check_consistency(&s);
        }
        let c = s
            .commit_reply(
                &cfg,
                "telegram:42",
                &turns,
                TokenUsage {
                    input: 5,
                    output: 6,
                },
                Some(InboundKey {
                    channel: "telegram",
                    id: &id,
                }),
                &good,
                3,
            )
            .expect("commit");
        assert_eq!(c.seqs.len(), 3);
        assert!(!c.over_limit);
        assert_eq!(c.meta.expect("meta").next_seq, 2);
        // A second commit for the same inbound message is refused, whole.
        let again = s.commit_reply(
            &cfg,
            "telegram:42",
            &turns,
            TokenUsage {
                input: 5,
                output: 6,
            },
            Some(InboundKey {
                channel: "telegram",
                id: &id,
            }),
            &good,
            4,
        );
        assert!(
            matches!(again, Err(QueueError::AlreadyDone { .. })),
            "{again:?}"
        );
        let unknown = s.commit_reply(
            &cfg,
            "telegram:42",
            &turns,
            TokenUsage::default(),
            Some(InboundKey {
                channel: "telegram",
                id: "nope",
            }),
            &good,
            4,
        );
        assert!(matches!(unknown, Err(QueueError::UnknownInbound { .. })));
    }
    let s = Store::open(&path).expect("reopen");
    let m = s.session("telegram:42").expect("r").expect("session");
    assert_eq!((m.next_seq, m.tokens_in, m.tokens_out), (2, 5, 6));
    assert!(pending_inbound(&s, 10).expect("p").is_empty());
    assert_eq!(texts(&list(&s, 10).expect("list")), ["one", "two", "three"]);
    check_consistency(&s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn per_chat_order_and_independence() {
    let path = tmp("order");
    let cfg = QueueConfig::default();
    let s = Store::open(&path).expect("open");
    let a1 = enqueue(&s, &cfg, "A", "a1", 100);
    let a2 = enqueue(&s, &cfg, "A", "a2", 100);
    let b1 = enqueue(&s, &cfg, "B", "b1", 100);
    let b2 = enqueue(&s, &cfg, "B", "b2", 100);
    assert_eq!(
        texts(&next_due(&s, 100, 10, &none()).expect("due")),
        ["a1", "b1"]
    );
    assert_eq!(next_wake(&s, &none()).expect("wake"), Some(100));
    // In flight heads are not handed out twice; the chat does not move on.
    let inflight: HashSet<u64> = [a1].into_iter().collect();
    assert_eq!(
        texts(&next_due(&s, 100, 10, &inflight).expect("due")),
        ["b1"]
    );
    // A's head fails: A waits, B proceeds.
    let d = failed(&s, &cfg, a1, 100, "HTTP 502", None, &mut |_| 0).expect("failed");
    assert_eq!(d, Disposition::Retry { at_ms: 600 });
    assert_eq!(texts(&next_due(&s, 100, 10, &none()).expect("due")), ["b1"]);
    assert!(delivered(&s, b1).expect("ok"));
    assert_eq!(texts(&next_due(&s, 100, 10, &none()).expect("due")), ["b2"]);
    assert!(delivered(&s, b2).expect("ok"));
    assert!(
        next_due(&s, 599, 10, &none()).expect("due").is_empty(),
        "a2 waits behind a1"
    );
    assert_eq!(next_wake(&s, &none()).expect("wake"), Some(600));
    assert_eq!(texts(&next_due(&s, 600, 10, &none()).expect("due")), ["a1"]);
    assert!(delivered(&s, a1).expect("ok"));
    assert!(!delivered(&s, a1).expect("twice is harmless"));
    assert_eq!(next_due(&s, 600, 10, &none()).expect("due")[0].seq, a2);
    assert_eq!(delivered_many(&s, &[a2, 999]).expect("ok"), 1);
    assert_eq!(next_wake(&s, &none()).expect("wake"), None);
    check_consistency(&s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn backoff_doubles_with_bounded_jitter_and_honours_retry_after() {
    let cfg = QueueConfig::default();
    assert_eq!(backoff_ms(&cfg, 1, None, &mut |_| 0), 500);
    assert_eq!(backoff_ms(&cfg, 1, None, &mut |n| n), 1_000);
    assert_eq!(
        backoff_ms(&cfg, 1, None, &mut |_| u64::MAX),
        1_000,
        "jitter clamped"
    );
    assert_eq!(backoff_ms(&cfg, 3, None, &mut |_| 0), 2_000);
    assert_eq!(backoff_ms(&cfg, 3, None, &mut |n| n), 4_000);
    assert_eq!(backoff_ms(&cfg, 50, None, &mut |n| n), 300_000, "capped");
    assert_eq!(backoff_ms(&cfg, u32::MAX, None, &mut |_| 0), 150_000);
    assert_eq!(
        backoff_ms(&cfg, 1, Some(30), &mut |n| n),
        30_000,
        "retry-after is a floor"
    );
    assert_eq!(backoff_ms(&cfg, 20, Some(1), &mut |_| 0), 150_000);
    let mut asked = Vec::new();
    backoff_ms(&cfg, 2, None, &mut |n| {
        asked.push(n);
        0
    });
    assert_eq!(asked, [1_000]);
}

#[test]
fn dead_letters_after_attempts_or_age_then_retry_and_drop() {
    let path = tmp("dead");
    let cfg = QueueConfig {
        max_attempts: 3,
        max_age_ms: 10_000,
        ..QueueConfig::default()
    };
    let s = Store::open(&path).expect("open");
    let a1 = enqueue(&s, &cfg, "A", "a1", 0);
    let a2 = enqueue(&s, &cfg, "A", "a2", 0);
    let j = &mut |_| 0;
    assert!(matches!(
        failed(&s, &cfg, a1, 0, "e1", None, j),
        Ok(Disposition::Retry { .. })
    ));
    assert_eq!(
        failed(&s, &cfg, a1, 1_000, "429", Some(7), j).expect("f"),
        Disposition::Retry { at_ms: 8_000 }
    );
    assert_eq!(
        failed(&s, &cfg, a1, 8_000, "e3", None, j).expect("f"),
        Disposition::Dead
    );
    assert_eq!(
        texts(&next_due(&s, 8_000, 10, &none()).expect("due")),
        ["a2"],
        "chat moves on"
    );
    let dead = dead_letters(&s, 10).expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].seq, a1);
    assert_eq!(dead[0].dead.row.attempts, 3);
    assert_eq!(dead[0].dead.row.last_error.as_deref(), Some("e3"));
    assert!(
        dead[0].dead.reason.contains("queue.maxAttempts"),
        "{}",
        dead[0].dead.reason
    );
    // Age: one failure past maxAgeMs is enough.
    assert_eq!(
        failed(&s, &cfg, a2, 10_000, "e", None, j).expect("f"),
        Disposition::Dead
    );
    let dead = dead_letters(&s, 10).expect("dead");
    assert!(dead[1].dead.reason.contains("queue.maxAgeMs"));
    assert_eq!(stats(&s, 10_000).expect("stats").dead, 2);
    assert!(matches!(
        failed(&s, &cfg, a2, 1, "e", None, j),
        Err(QueueError::NotFound(_))
    ));
    // Retry puts it back, behind what is queued, with a fresh count.
    let a3 = enqueue(&s, &cfg, "A", "a3", 20_000);
    let again = retry_dead(&s, &cfg, a1, 20_000).expect("retry");
    assert!(again > a3);
    let q = list(&s, 10).expect("list");
    assert_eq!(texts(&q), ["a3", "a1"]);
    assert_eq!(q[1].row.attempts, 0);
    assert_eq!(
        texts(&next_due(&s, 20_000, 10, &none()).expect("due")),
        ["a3"]
    );
    assert_eq!(drop_msg(&s, a3).expect("drop"), Dropped::Queued);
    assert_eq!(
        texts(&next_due(&s, 20_000, 10, &none()).expect("due")),
        ["a1"]
    );
    assert_eq!(drop_msg(&s, a2).expect("drop"), Dropped::Dead);
    assert!(matches!(drop_msg(&s, a2), Err(QueueError::NotFound(_))));
    assert!(matches!(
        retry_dead(&s, &cfg, a2, 0),
        Err(QueueError::NotFound(_))
    ));
    let st = stats(&s, 20_000).expect("stats");
    assert_eq!((st.depth, st.dead), (1, 0));
    assert_eq!(st.dropped.get("telegram:dropped_by_admin"), Some(&2));
    // A permanent error dead-letters at once.
    assert!(fail_permanent(&s, &cfg, again, 21_000, "403 bot was blocked").expect("perm"));
    assert!(dead_letters(&s, 10).expect("d")[0]
        .dead
        .reason
        .contains("blocked"));
    check_consistency(&s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn dead_letters_are_bounded() {
    let path = tmp("deadcap");
    let cfg = QueueConfig {
        max_dead: 2,
        ..QueueConfig::default()
    };
    let s = Store::open(&path).expect("open");
    for i in 0..5 {
        let seq = enqueue(&s, &cfg, &format!("c{i}"), "x", 0);
        fail_permanent(&s, &cfg, seq, 1, "gone").expect("perm");
    }
    let d = dead_letters(&s, 10).expect("dead");
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].dead.row.outbound.chat_id, "c3", "oldest dropped first");
    let st = stats(&s, 2).expect("stats");
    assert_eq!(st.dead, 2);
    assert_eq!(st.dropped.get("telegram:dead_overflow"), Some(&3));
    check_consistency(&s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bounds_refuse_admission_with_a_reason_but_keep_replies() {
    let path = tmp("bounds");
    let cfg = QueueConfig {
        max_entries: 3,
        ..QueueConfig::default()
    };
    let s = Store::open(&path).expect("open");
    can_accept(&s, &cfg, "telegram").expect("empty");
    for i in 0..3 {
        enqueue(&s, &cfg, "A", &format!("m{i}"), 1_000 + i);
    }
    let e = can_accept(&s, &cfg, "telegram").expect_err("full");
    let msg = e.to_string();
    assert!(
        msg.contains("queue.maxEntries") && msg.contains("= 3"),
        "{msg}"
    );
    assert!(matches!(
        e,
        QueueError::Full(Full {
            entries: 3,
            limit: Limit::Entries(3),
            ..
        })
    ));
    can_accept(&s, &cfg, "discord").expect("other channels are not blocked");
    // Over the bound at commit: kept, flagged.
    let c = s
        .commit_reply(
            &cfg,
            "",
            &[],
            TokenUsage::default(),
            None,
            &[out("B", "late")],
            2_000,
        )
        .expect("commit");
    assert!(c.over_limit);
    let st = stats(&s, 5_000).expect("stats");
    assert_eq!(st.depth, 4);
    assert_eq!(st.oldest_age_ms, Some(4_000));
    assert_eq!(st.over_limit.get("telegram"), Some(&1));
    assert_eq!(st.channels["telegram"].entries, 4);
    assert!(st.bytes > 0 && st.bytes == st.channels["telegram"].bytes);
    let json = serde_json::to_value(&st).expect("json");
    assert_eq!(json["depth"], 4);
    assert_eq!(json["oldestAgeMs"], 4_000);

    let small = QueueConfig {
        max_bytes: 100,
        ..QueueConfig::default()
    };
    let path2 = tmp("bytes");
    let s2 = Store::open(&path2).expect("open");
    enqueue(&s2, &small, "A", &"x".repeat(200), 0);
    let msg = can_accept(&s2, &small, "telegram")
        .expect_err("full")
        .to_string();
    assert!(msg.contains("queue.maxBytes"), "{msg}");
    // Draining reopens admission.
    let seq = next_due(&s2, 0, 1, &none()).expect("due")[0].seq;
    delivered(&s2, seq).expect("ok");
    can_accept(&s2, &small, "telegram").expect("drained");
    let st = stats(&s2, 0).expect("stats");
    assert_eq!((st.depth, st.bytes, st.oldest_age_ms), (0, 0, None));
    check_consistency(&s);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&path2);
}

#[test]
fn drops_and_channel_state_are_persisted() {
    let path = tmp("drops");
    {
        let s = Store::open(&path).expect("open");
        assert_eq!(count_drop(&s, "telegram", "not_allowlisted").expect("c"), 1);
        assert_eq!(count_drop(&s, "telegram", "not_allowlisted").expect("c"), 2);
        count_drop(&s, "telegram", "no_mention").expect("c");
        channel_state_put(&s, "telegram", "offset", b"12345").expect("put");
    }
    let s = Store::open(&path).expect("reopen");
    let st = stats(&s, 0).expect("stats");
    assert_eq!(st.dropped.get("telegram:not_allowlisted"), Some(&2));
    assert_eq!(st.dropped.get("telegram:no_mention"), Some(&1));
    assert_eq!(
        channel_state_get(&s, "telegram", "offset")
            .expect("get")
            .as_deref(),
        Some(&b"12345"[..])
    );
    assert_eq!(
        s.kv_get("channel/telegram/offset").expect("kv").as_deref(),
        Some(&b"12345"[..])
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn corrupt_rows_are_dead_lettered_or_skipped_never_a_panic() {
    let path = tmp("corrupt");
    let cfg = QueueConfig::default();
    let s = Store::open(&path).expect("open");
    let a1 = enqueue(&s, &cfg, "A", "a1", 0);
    let a2 = enqueue(&s, &cfg, "A", "a2", 0);
    let b1 = enqueue(&s, &cfg, "B", "b1", 0);
    let e = env("telegram", "9", "1");
    accept_inbound(&s, &cfg, &e, "t:9", 0).expect("accept");
    {
        let tx = s.db.begin_write().expect("w");
        {
            let mut t = tx.open_table(OUTQ).expect("open");
            t.insert(a1, &b"{not json"[..]).expect("i");
            t.insert(b1, &b"\xff\xfe"[..]).expect("i");
            let mut i = tx.open_table(INBOX).expect("open");
            i.insert(("telegram", inbound_id(&e).as_str()), &b"garbage"[..])
                .expect("i");
        }
        tx.commit().expect("c");
    }
    assert_eq!(
        list(&s, 10).expect("list").len(),
        1,
        "unreadable rows skipped"
    );
    assert!(next_due(&s, 0, 10, &none()).expect("due").is_empty());
    // Both heads went to the dead letters; A's next message is now due.
    assert_eq!(texts(&next_due(&s, 0, 10, &none()).expect("due")), ["a2"]);
    let dead = dead_letters(&s, 10).expect("dead");
    assert_eq!(dead.len(), 2);
    assert!(dead[0].dead.reason.starts_with("unreadable"));
    assert_eq!(dead[0].dead.row.outbound.chat_id, "A");
    assert!(matches!(
        retry_dead(&s, &cfg, a1, 0),
        Err(QueueError::Invalid(_))
    ));
    assert_eq!(stats(&s, 0).expect("stats").depth, 1);
    check_consistency(&s);
    delivered(&s, a2).expect("ok");
    // A corrupt pending inbound row is released and counted.
    assert!(pending_inbound(&s, 10).expect("p").is_empty());
    assert_eq!(
        stats(&s, 0).expect("s").dropped.get("telegram:corrupt"),
        Some(&1)
    );
    assert_eq!(
        accept_inbound(&s, &cfg, &e, "t:9", 1).expect("a"),
        Accept::Duplicate
    );
    let _ = std::fs::remove_file(&path);
}

/// Not a test: `cargo test --lib queue_throughput_report -- --ignored --nocapture`.
#[test]
#[ignore]
fn queue_throughput_report() {
    use std::time::Instant;
    let path = tmp("throughput");
    let cfg = QueueConfig::default();
    let s = Store::open(&path).expect("open");
    let rss0 = crate::util::rss_kib();
    let text = "x".repeat(200);
    let n = 10_000u64;
    let t = Instant::now();
    for i in 0..n {
        let chat = format!("{}", i % 100);
        s.commit_reply(
            &cfg,
            "",
            &[],
            TokenUsage::default(),
            None,
            &[out(&chat, &text)],
            i,
        )
        .expect("commit");
    }
    let enq = t.elapsed();
    let rss_full = crate::util::rss_kib();
    let st = stats(&s, n).expect("stats");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let drain = |batch: bool| -> (u64, std::time::Duration) {
        let t = Instant::now();
        let mut sent = 0u64;
        loop {
            let due = next_due(&s, u64::MAX / 2, 100, &none()).expect("due");
            if due.is_empty() {
                return (sent, t.elapsed());
            }
            if batch {
                let seqs: Vec<u64> = due.iter().map(|m| m.seq).collect();
                sent += delivered_many(&s, &seqs).expect("ok") as u64;
            } else {
                for m in &due {
                    delivered(&s, m.seq).expect("ok");
                    sent += 1;
                }
            }
        }
    };
    let (sent, del) = drain(false);
    let t = Instant::now();
    for i in 0..(n / 10) {
        let replies: Vec<Outbound> = (0..10)
            .map(|j| out(&format!("{}", (i * 10 + j) % 100), &text))
            .collect();
        s.commit_reply(&cfg, "", &[], TokenUsage::default(), None, &replies, i)
            .expect("commit");
    }
    let enq_b = t.elapsed();
    let (sent_b, del_b) = drain(true);
    let rate = |k: u64, d: std::time::Duration| k as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "queue_throughput_report ({} queued, {} B text each):",
        st.depth,
        text.len()
    );
    println!(
        "  enqueue, 1 commit per message:     {:>8.0} msg/s",
        rate(n, enq)
    );
    println!(
        "  enqueue, 10 chunks per commit:     {:>8.0} msg/s",
        rate(n, enq_b)
    );
    println!(
        "  next_due + delivered per message:  {:>8.0} msg/s",
        rate(sent, del)
    );
    println!(
        "  next_due + delivered_many (100):   {:>8.0} msg/s",
        rate(sent_b, del_b)
    );
    println!(
        "  RSS: {rss0} KiB before, {rss_full} KiB with {} queued ({} B); file {} KiB",
        st.depth,
        st.bytes,
        size / 1024
    );
    assert_eq!(sent, n);
    assert_eq!(sent_b, n);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_message_with_its_own_lower_limit_is_dead_lettered_sooner_and_frees_its_chat() {
    let path = tmp("ownlimit");
    let cfg = QueueConfig::default();
    let s = Store::open(&path).expect("open");
    let mut alert = out("A", "alert");
    alert.max_attempts = Some(2);
    let c = s
        .commit_reply(
            &cfg,
            "",
            &[],
            TokenUsage::default(),
            None,
            &[alert, out("A", "later")],
            0,
        )
        .expect("commit");
    let j = &mut |_| 0;
    assert!(matches!(
        failed(&s, &cfg, c.seqs[0], 0, "500", None, j),
        Ok(Disposition::Retry { .. })
    ));
    assert_eq!(
        failed(&s, &cfg, c.seqs[0], 5_000, "500", None, j).expect("f"),
        Disposition::Dead
    );
    let dead = dead_letters(&s, 10).expect("dead");
    assert_eq!(dead[0].dead.row.attempts, 2);
    assert!(
        dead[0].dead.reason.contains("own limit"),
        "{}",
        dead[0].dead.reason
    );
    assert_eq!(
        texts(&next_due(&s, 5_000, 10, &none()).expect("due")),
        ["later"],
        "the chat's next message is not held"
    );
    // A limit above queue.maxAttempts does not raise it.
    let mut patient = out("B", "b");
    patient.max_attempts = Some(cfg.max_attempts + 10);
    let b = s
        .commit_reply(&cfg, "", &[], TokenUsage::default(), None, &[patient], 0)
        .expect("commit")
        .seqs[0];
    for n in 1..=cfg.max_attempts {
        let d = failed(&s, &cfg, b, u64::from(n), "500", None, j).expect("f");
        assert_eq!(d == Disposition::Dead, n == cfg.max_attempts, "attempt {n}");
    }
    check_consistency(&s);
    let _ = std::fs::remove_file(&path);
}

/// A reply that replaces a draft keeps the draft's name across a restart,
/// so the answer is still delivered as that edit (or anew) after a crash;
/// rows written before `edit` existed read it as absent.
#[test]
fn a_reply_replacing_a_draft_keeps_its_name_across_reopen() {
    let path = tmp("draft");
    let cfg = QueueConfig::default();
    {
        let s = Store::open(&path).expect("open");
        let mut first = out("42", "the whole answer");
        first.edit = Some("default:42:7".into());
        s.commit_reply(
            &cfg,
            "",
            &[],
            TokenUsage::default(),
            None,
            &[first, out("42", "the rest")],
            1,
        )
        .expect("commit");
    }
    let s = Store::open(&path).expect("reopen");
    let due = next_due(&s, 10, 10, &none()).expect("due");
    assert_eq!(due.len(), 1, "one per chat in flight");
    assert_eq!(due[0].row.outbound.edit.as_deref(), Some("default:42:7"));
    let old: Outbound = serde_json::from_str(
        r#"{"channel":"telegram","account":"default","chat_id":"42","text":"hi"}"#,
    )
    .expect("an old row");
    assert_eq!(old.edit, None);
}
