//! Storage soak (a benchmark, run by hand; prints numbers):
//! `cargo test --release --lib storage_soak_report -- --ignored --nocapture`.
//! Months of simulated traffic with an injected clock against a small
//! `storage.maxBytes`: sessions chat every day, long ones get compaction
//! summaries, and the daily retention pass keeps the home under budget.
//! Prints the home size, the store file, what retention removed and the
//! process RSS once a simulated month.

use super::*;
use crate::llm::{Part, Role};

const DAY: u64 = 86_400_000;

fn msg(role: Role, text: String, ts: u64) -> Turn {
    Turn::message(
        ts,
        Message {
            role,
            parts: vec![Part::Text(text)],
        },
    )
}

#[test]
#[ignore]
fn storage_soak_report() {
    const DAYS: u64 = 180;
    const SESSIONS: usize = 20;
    const EXCHANGES_PER_DAY: usize = 10;
    const MAX_BYTES: u64 = 16 << 20;
    let home = std::env::temp_dir().join(format!("pinch-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join("logs")).expect("home");
    let mut store = Store::open(&home.join("state.redb")).expect("open");
    let storage = crate::config::storage::Storage {
        max_bytes: MAX_BYTES,
        transcript_days: 30,
        dead_letter_days: 30,
    };
    let start = 1_700_000_000_000u64;
    let filler = "lorem ipsum dolor sit amet ".repeat(10);
    let mut peak_home = 0u64;
    let mut rss_first = 0u64;
    let mut rss_last = 0u64;
    let mut appended = 0u64;
    let t0 = std::time::Instant::now();
    println!("day  home_KiB  store_KiB  turns_removed_total  compactions  rss_KiB");
    for day in 0..DAYS {
        let now = start + day * DAY;
        for s in 0..SESSIONS {
            let key = format!("telegram:{s}");
            let mut turns = Vec::new();
            for i in 0..EXCHANGES_PER_DAY {
                let ts = now + (i as u64) * 60_000;
                turns.push(msg(Role::User, format!("day {day} q{i} {filler}"), ts));
                turns.push(msg(
                    Role::Assistant,
                    format!("day {day} a{i} {filler}"),
                    ts + 1,
                ));
            }
            appended += turns.len() as u64;
            let meta = store
                .append(
                    &key,
                    &turns,
                    crate::llm::types::TokenUsage {
                        input: 10,
                        output: 10,
                    },
                    now,
                )
                .expect("append");
            // The agent compacts a long session: a summary of all but the
            // last 10 turns.
            if meta.unsummarized_chars() > 30_000 {
                let through = meta.next_seq.saturating_sub(11);
                let covered = store.turns(&key, through, 1).expect("turn");
                let mut sum = msg(
                    Role::User,
                    format!("summary through day {day}"),
                    now + 3_600_000,
                );
                sum.kind = TurnKind::Summary;
                sum.covers_through = Some(through);
                sum.cum_chars = covered.first().map(|(_, t)| t.cum_chars).unwrap_or(0);
                store
                    .append(
                        &key,
                        &[sum],
                        crate::llm::types::TokenUsage::default(),
                        now + 3_600_000,
                    )
                    .expect("summary");
            }
        }
        let out =
            crate::gateway::storage::run_pass(&mut store, &storage, 1000, &home, now + DAY / 2)
                .expect("pass");
        peak_home = peak_home.max(out.home_bytes);
        let rss = crate::util::rss_kib();
        if day == 30 {
            rss_first = rss;
        }
        rss_last = rss;
        if day % 30 == 0 || day == DAYS - 1 {
            println!(
                "{day:>3}  {:>8}  {:>9}  {:>19}  {:>11}  {rss:>7}",
                out.home_bytes >> 10,
                out.store_bytes >> 10,
                store.meta_get("retention_turns").unwrap_or(0),
                store.meta_get("retention_compactions").unwrap_or(0),
            );
        }
    }
    println!(
        "{DAYS} simulated days, {appended} turns appended ({} MiB of text), budget {} MiB, peak home {} KiB, RSS day 30 {rss_first} KiB -> day {} {rss_last} KiB, {:.1} s",
        appended * 300 >> 20,
        MAX_BYTES >> 20,
        peak_home >> 10,
        DAYS - 1,
        t0.elapsed().as_secs_f64()
    );
    assert!(peak_home <= MAX_BYTES, "the home stayed under the budget");
    // Every session still has its summary and its recent turns.
    for s in 0..SESSIONS {
        let r = store
            .recent(&format!("telegram:{s}"), 100, usize::MAX)
            .expect("recent");
        assert!(r.len() >= 10, "recent turns kept");
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&home);
}
