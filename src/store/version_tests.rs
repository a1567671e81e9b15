//! Schema versions: a v1 store migrates forward after a backup, a crash
//! inside the migration leaves the old store, a newer store is refused
//! untouched, and a snapshot copies every table.

use super::*;
use crate::llm::{Part, Role};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pinch-version-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("state.redb")
}

fn turn(text: &str, ts: u64) -> Turn {
    Turn::message(
        ts,
        Message {
            role: Role::User,
            parts: vec![Part::Text(text.into())],
        },
    )
}

/// A store laid out as the first release wrote it: no meta table.
fn make_v1(path: &Path) {
    let s = Store::open(path).expect("open");
    s.append(
        "web:a",
        &[turn("hello", 1), turn("there", 2)],
        TokenUsage {
            input: 1,
            output: 2,
        },
        3,
    )
    .expect("append");
    s.kv_put("cron.jobs", b"[1,2,3]").expect("kv");
    let tx = s.db.begin_write().expect("w");
    tx.delete_table(version::META).expect("delete meta");
    tx.commit().expect("commit");
    drop(s);
    let db = redb::Database::open(path).expect("raw open");
    assert_eq!(
        version::read(&db).expect("read"),
        version::Found::Version(1)
    );
}

fn file_hash(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read file");
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .to_vec()
}

#[test]
fn a_new_store_starts_at_the_current_version() {
    let path = tmp("new");
    let s = Store::open(&path).expect("open");
    assert_eq!(s.schema_version().expect("v"), version::CURRENT);
    assert!(!version::backup_path(&path, 1).exists());
}

#[test]
fn a_v1_store_is_backed_up_then_migrated_with_its_data() {
    let path = tmp("v1");
    make_v1(&path);
    let s = Store::open(&path).expect("migrate");
    assert_eq!(s.schema_version().expect("v"), 2);
    assert!(s.meta_get("migrated_to_2_ms").expect("meta") > 0);
    assert_eq!(s.turns("web:a", 0, 10).expect("turns").len(), 2);
    assert_eq!(
        s.kv_get("cron.jobs").expect("kv"),
        Some(b"[1,2,3]".to_vec())
    );
    drop(s);
    // The backup is the old store, openable, still version 1.
    let bak = version::backup_path(&path, 1);
    assert!(bak.ends_with("state.redb.v1.bak"), "{}", bak.display());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bak).expect("bak").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the backup is private");
    }
    let db = redb::Database::open(&bak).expect("open bak");
    assert_eq!(
        version::read(&db).expect("read"),
        version::Found::Version(1)
    );
    drop(db);
    // Opening again does not migrate or back up again.
    std::fs::remove_file(&bak).expect("rm bak");
    let s = Store::open(&path).expect("reopen");
    assert_eq!(s.schema_version().expect("v"), 2);
    assert!(!bak.exists());
}

#[test]
fn a_crash_at_every_migration_step_leaves_the_old_store_whole() {
    let mut k = 1;
    loop {
        let path = tmp(&format!("crash-{k}"));
        make_v1(&path);
        version::crash_after(k);
        let result = Store::open(&path);
        let fired = result.is_err();
        if fired {
            assert!(
                result
                    .as_ref()
                    .err()
                    .is_some_and(|e| e.contains("injected crash")),
                "{:?}",
                result.err()
            );
        }
        drop(result);
        version::crash_after(0);
        // After the crash: the old store, untouched by the migration.
        if fired {
            let db = redb::Database::open(&path).expect("raw open after crash");
            assert_eq!(
                version::read(&db).expect("read"),
                version::Found::Version(1)
            );
        }
        let s = Store::open(&path).expect("restart migrates");
        assert_eq!(s.schema_version().expect("v"), 2);
        assert_eq!(s.turns("web:a", 0, 10).expect("turns").len(), 2);
        assert_eq!(
            s.kv_get("cron.jobs").expect("kv"),
            Some(b"[1,2,3]".to_vec())
        );
        if !fired {
            assert!(k > 1, "the migration has crash points");
            break;
        }
        k += 1;
    }
}

#[test]
fn a_store_from_a_newer_pinch_is_refused_and_left_untouched() {
    let path = tmp("newer");
    {
        let s = Store::open(&path).expect("open");
        s.append("web:a", &[turn("hi", 1)], TokenUsage::default(), 1)
            .expect("append");
        let tx = s.db.begin_write().expect("w");
        version::stamp(&tx, version::CURRENT + 1).expect("stamp");
        tx.commit().expect("commit");
    }
    let before = file_hash(&path);
    let err = Store::open(&path).err().expect("refused");
    let newer = (version::CURRENT + 1).to_string();
    assert!(err.contains(&format!("schema version {newer}")), "{err}");
    assert!(
        err.contains(&format!("up to {}", version::CURRENT)),
        "{err}"
    );
    assert!(err.contains("state.redb.v2.bak"), "{err}");
    assert!(err.contains("Nothing was changed"), "{err}");
    assert_eq!(file_hash(&path), before, "not a byte written");
    assert!(!version::backup_path(&path, version::CURRENT + 1).exists());
}

#[test]
fn a_snapshot_copies_every_table_of_a_populated_store() {
    let path = tmp("snapshot");
    let s = Store::open(&path).expect("open");
    s.append(
        "web:a",
        &[turn("remember the milk", 5)],
        TokenUsage {
            input: 1,
            output: 1,
        },
        5,
    )
    .expect("append");
    s.kv_put("pairing.telegram", b"{}").expect("kv");
    let (snap, bytes) = s.snapshot().expect("snapshot");
    assert!(bytes > 0);
    assert_eq!(snap, snapshot_path(&path));
    let names: Vec<String> = {
        let rx = s.db.begin_read().expect("r");
        rx.list_tables()
            .expect("list")
            .map(|h| h.name().to_string())
            .collect()
    };
    let copied = all_table_names();
    for n in &names {
        assert!(
            copied.contains(&n.as_str()),
            "table {n} is not in the snapshot list"
        );
    }
    drop(s);
    let copy = Store::open(&snap).expect("open snapshot");
    assert_eq!(copy.schema_version().expect("v"), version::CURRENT);
    let t = copy.turns("web:a", 0, 10).expect("turns");
    assert_eq!(t.len(), 1);
    assert_eq!(
        copy.kv_get("pairing.telegram").expect("kv"),
        Some(b"{}".to_vec())
    );
}

#[test]
fn retention_removes_only_turns_a_summary_replaced() {
    let path = tmp("prune");
    let s = Store::open(&path).expect("open");
    // seq 0..=3 old messages, 4 the summary, 5 a new message.
    for i in 0..4 {
        s.append(
            "k",
            &[turn(&format!("old {i}"), 1000 + i)],
            TokenUsage::default(),
            1,
        )
        .expect("append");
    }
    let mut sum = turn("summary", 2000);
    sum.kind = TurnKind::Summary;
    sum.covers_through = Some(3);
    s.append("k", &[sum, turn("new", 10)], TokenUsage::default(), 2)
        .expect("append");
    let a = s.archived().expect("archived");
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].from_seq, a[0].below_seq, a[0].oldest_ms),
        (0, 4, 1000)
    );
    // Only turns older than 1002: seq 0 and 1.
    assert_eq!(s.prune_turns("k", 0, 4, 1002, 100).expect("prune"), 2);
    // A caller asking past the summary still cannot remove it or what follows.
    assert_eq!(s.prune_turns("k", 0, 100, u64::MAX, 100).expect("prune"), 2);
    let left: Vec<u64> = s
        .turns("k", 0, 10)
        .expect("t")
        .iter()
        .map(|(q, _)| *q)
        .collect();
    assert_eq!(left, vec![4, 5]);
    assert_eq!(s.session("k").expect("m").expect("m").pruned_below, 4);
    assert!(s.archived().expect("archived").is_empty());
    assert_eq!(s.meta_get("retention_turns").expect("meta"), 4);
    let r = s.recent("k", 10, 10_000).expect("recent");
    assert_eq!(r.iter().map(|(q, _)| *q).collect::<Vec<_>>(), vec![4, 5]);
}

#[test]
fn a_snapshot_stopped_by_the_shutdown_leaves_no_file() {
    let path = tmp("snapshot-stop");
    let s = Store::open(&path).expect("open");
    s.append(
        "web:a",
        &[turn("remember the milk", 5)],
        crate::llm::types::TokenUsage {
            input: 1,
            output: 1,
        },
        5,
    )
    .expect("append");
    let stop = std::sync::atomic::AtomicBool::new(true);
    let err = s
        .snapshot_begin()
        .expect("begin")
        .write(&stop)
        .expect_err("stopped");
    assert!(err.contains("shutting down"), "{err}");
    assert!(
        !snapshot_path(&path).exists(),
        "the unfinished file is removed"
    );
}
