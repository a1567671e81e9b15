//! The fuzz harness for every parser of outside input (test builds only).
//!
//! `cargo test fuzz_` replays the regression corpus (`tests/data/fuzz/<target>/`)
//! and the seeds (`tests/data/fuzz-seeds/<target>/`: recorded payloads), then
//! mutates them for `PINCH_FUZZ_SECONDS` (default 15 s) split across the
//! targets, from `PINCH_FUZZ_SEED` (printed). A failing input is written to
//! the regression corpus and fails the test. The table of executions and
//! failures prints with `-- --nocapture`. The gateway's HTTP and WebSocket
//! edge is fuzzed from outside, against the real binary (`tests/fuzz_gateway.rs`).
//!
//! It lives under `src/` as a `#[cfg(test)]` module so it reaches parsers that
//! are private to their module without widening any production API; test
//! builds unwind on panic, so `catch_unwind` turns a panic into a finding.

pub mod engine;
mod targets;

use engine::{Known, Rng, Verdict};
use std::path::PathBuf;

struct FuzzTarget {
    name: &'static str,
    run: fn(&[u8]) -> Verdict,
    /// Longest input the mutator produces.
    max_len: usize,
}

const TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "percent_decode",
        run: targets::percent_decode,
        max_len: 4096,
    },
    FuzzTarget {
        name: "ws_frame",
        run: targets::ws_frame,
        max_len: 64 * 1024,
    },
    FuzzTarget {
        name: "sse",
        run: targets::sse,
        max_len: 64 * 1024,
    },
    FuzzTarget {
        name: "openai_stream",
        run: targets::openai_stream,
        max_len: 64 * 1024,
    },
    FuzzTarget {
        name: "anthropic_stream",
        run: targets::anthropic_stream,
        max_len: 64 * 1024,
    },
    FuzzTarget {
        name: "model_error",
        run: targets::model_error,
        max_len: 16 * 1024,
    },
    FuzzTarget {
        name: "tool_args",
        run: targets::tool_args,
        max_len: 16 * 1024,
    },
    FuzzTarget {
        name: "tool_text",
        run: targets::tool_text,
        max_len: 32 * 1024,
    },
    FuzzTarget {
        name: "telegram_update",
        run: targets::telegram_update,
        max_len: 64 * 1024,
    },
    FuzzTarget {
        name: "slack_frame",
        run: targets::slack_frame,
        max_len: 64 * 1024,
    },
    FuzzTarget {
        name: "socks5_reply",
        run: targets::socks5_reply,
        max_len: 1024,
    },
    FuzzTarget {
        name: "discord_gateway",
        run: targets::discord_gateway,
        max_len: 64 * 1024,
    },
    FuzzTarget {
        name: "reply_split",
        run: targets::reply_split,
        max_len: 8 * 1024,
    },
    FuzzTarget {
        name: "dotenv",
        run: targets::dotenv,
        max_len: 16 * 1024,
    },
    FuzzTarget {
        name: "pinch_json",
        run: targets::pinch_json,
        max_len: 32 * 1024,
    },
    FuzzTarget {
        name: "skill_md",
        run: targets::skill_md,
        max_len: 16 * 1024,
    },
    FuzzTarget {
        name: "sched_text",
        run: targets::sched_text,
        max_len: 1024,
    },
    FuzzTarget {
        name: "sched_json",
        run: targets::sched_json,
        max_len: 4096,
    },
    FuzzTarget {
        name: "webhook_body",
        run: targets::webhook_body,
        max_len: 16 * 1024,
    },
];

/// Panics already known and being fixed, reported instead of failing the
/// run. Empty: every panic found is a failure, and the regression corpus
/// keeps each input that once panicked.
const KNOWN_ELSEWHERE: &[Known] = &[];

fn data_dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
        .join(target)
}

fn seeds(t: &FuzzTarget) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = engine::read_dir_files(&data_dir("fuzz-seeds", t.name))
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    out.extend(
        engine::read_dir_files(&data_dir("fuzz", t.name))
            .into_iter()
            .map(|(_, b)| b),
    );
    out
}

#[test]
fn fuzz_corpus_replays_without_new_failures() {
    engine::install_hook();
    let mut bad = Vec::new();
    let mut total = 0;
    for t in TARGETS {
        let files = [
            engine::read_dir_files(&data_dir("fuzz-seeds", t.name)),
            engine::read_dir_files(&data_dir("fuzz", t.name)),
        ]
        .concat();
        assert!(
            !files.is_empty() || t.name == "percent_decode",
            "{}: no seeds in tests/data/fuzz-seeds/{}",
            t.name,
            t.name
        );
        for (path, bytes) in files {
            total += 1;
            if let Err(what) = engine::run_one(&t.run, &bytes) {
                let known = KNOWN_ELSEWHERE.iter().any(|k| {
                    what.contains(k.location_contains) && what.contains(k.message_contains)
                });
                if !known {
                    bad.push(format!("{}: {}: {what}", t.name, path.display()));
                }
            }
        }
    }
    targets::tool_args_cleanup();
    assert!(total > 50, "only {total} corpus files");
    assert!(bad.is_empty(), "corpus inputs fail:\n{}", bad.join("\n"));
}

#[test]
fn fuzz_targets_for_the_time_budget() {
    let budget = engine::budget_from_env(15.0);
    let seed = engine::seed_from_env();
    let per = budget / TARGETS.len() as u32;
    println!(
        "fuzzing {} targets for {:.1} s each, PINCH_FUZZ_SEED={seed:#x}",
        TARGETS.len(),
        per.as_secs_f64()
    );
    let mut rows = Vec::new();
    let mut new = Vec::new();
    for t in TARGETS {
        let mut rng = Rng::new(seed ^ engine::hash(t.name.as_bytes()));
        let stats = engine::fuzz(&t.run, &seeds(t), KNOWN_ELSEWHERE, &mut rng, per, t.max_len);
        for f in &stats.failures {
            if f.known {
                println!("{}: known, fixed elsewhere: {}", t.name, f.what);
                continue;
            }
            let saved = engine::save_failure(&data_dir("fuzz", t.name), &f.input)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| format!("(not saved: {e})"));
            let shown: String = String::from_utf8_lossy(&f.input)
                .chars()
                .take(300)
                .collect();
            new.push(format!(
                "{}: {} -> {saved}\n  input: {shown:?}",
                t.name, f.what
            ));
        }
        rows.push((
            t.name.to_string(),
            stats.execs,
            stats.new_failures(),
            stats.known,
        ));
    }
    targets::tool_args_cleanup();
    println!("{}", engine::table(&rows));
    assert!(
        new.is_empty(),
        "fuzzing found failures (inputs saved; replay with cargo test fuzz_corpus):\n{}",
        new.join("\n")
    );
}
