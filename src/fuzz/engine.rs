//! The fuzzing engine: a seeded xorshift PRNG, byte and structure mutators,
//! a time-budgeted loop that catches panics, and the failing-input files.
//!
//! Self-contained (std only, no `crate::` paths) so the black-box gateway
//! fuzz test in `tests/` can include this same file with `#[path]`.

#![allow(dead_code)]

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

/// xorshift64*: fast, deterministic from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// FNV-1a, for file names and per-input derived seeds.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const INTERESTING_BYTES: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xf0, 0xff, b'%', b'"', b'\\', b'{', b'}', b'[',
    b']', b':', b',', b'\n', b'\r', b' ', b'\t', b'-', b'0', b'9', b'=', b'#', b'|', b'?', b'/',
];

/// Multibyte UTF-8 (2, 3 and 4 bytes), a lone continuation byte, an
/// overlong encoding and a surrogate encoded as UTF-8 bytes.
pub const MULTIBYTE: &[&[u8]] = &[
    "é".as_bytes(),
    "€".as_bytes(),
    "😀".as_bytes(),
    "\u{FFFF}".as_bytes(),
    "\u{200B}".as_bytes(),
    &[0x80],
    &[0xc0, 0x80],
    &[0xed, 0xa0, 0x80],
    &[0xf4, 0x90, 0x80, 0x80],
];

const TOKENS: &[&str] = &[
    "%",
    "%€",
    "%1é",
    "%%",
    "%0",
    "%zz",
    "%00",
    "%ff",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\\udfff",
    "\\uD83D\\uDE00",
    "-1",
    "0",
    "-0",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "9223372036854775807",
    "1e999",
    "1e-999",
    "NaN",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\r\n",
    "\r\n\r\n",
    "\n\n",
    "data: ",
    "event: ",
    ": ",
    "---\n",
    "\u{FEFF}",
    "../",
    "/..",
    "*",
    "*/0",
    "60",
    "1h",
    "0s",
    "99999999999d",
    "$",
    "${",
    "$X",
    "\"$A\"",
    "//",
    "/*",
    "*/",
    "\t",
    "\0",
];

/// One mutated copy of `input`: one to four stacked mutations, some of
/// which splice in material from another `corpus` entry.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate_once(rng, &mut out, corpus);
    }
    out.truncate(max_len);
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = out.len();
    match rng.below(16) {
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = *rng.pick(INTERESTING_BYTES);
        }
        2 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            out.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(32));
            out.drain(i..i + n);
        }
        4 if len > 0 => {
            // Duplicate a range in place.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            let piece = out[i..i + n].to_vec();
            let at = rng.below(out.len() + 1);
            out.splice(at..at, piece);
        }
        5 if !corpus.is_empty() => {
            // Splice: our prefix, another input's suffix.
            let other = rng.pick(corpus);
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        6 if !corpus.is_empty() => {
            // Insert a slice of another input.
            let other = rng.pick(corpus);
            if !other.is_empty() {
                let a = rng.below(other.len());
                let b = a + 1 + rng.below((other.len() - a).min(64));
                let at = rng.below(len + 1);
                out.splice(at..at, other[a..b].iter().copied());
            }
        }
        7 => {
            let cut = rng.below(len + 1);
            out.truncate(cut);
        }
        8 | 9 => {
            let at = rng.below(len + 1);
            let ch = *rng.pick(MULTIBYTE);
            out.splice(at..at, ch.iter().copied());
        }
        10 | 11 => {
            let at = rng.below(len + 1);
            let t = rng.pick(TOKENS).as_bytes();
            out.splice(at..at, t.iter().copied());
        }
        12 => {
            // Deep nesting at a random place.
            let at = rng.below(len + 1);
            let depth = 1 + rng.below(3000);
            let (open, close): (&[u8], &[u8]) = match rng.below(3) {
                0 => (b"[", b"]"),
                1 => (b"{\"a\":", b"}"),
                _ => (b"[{\"b\":[", b"]}]"),
            };
            let mut nest = open.repeat(depth);
            if rng.chance(2) {
                nest.extend_from_slice(&close.repeat(depth));
            }
            out.splice(at..at, nest);
        }
        13 if len > 0 => {
            // Replace a run of digits with an interesting number.
            let start = rng.below(len);
            if let Some(p) = out[start..].iter().position(u8::is_ascii_digit) {
                let a = start + p;
                let b = a + out[a..].iter().take_while(|c| c.is_ascii_digit()).count();
                let n = *rng.pick(&[
                    "0",
                    "-1",
                    "65535",
                    "65536",
                    "4294967295",
                    "18446744073709551615",
                    "99999999999999999999999",
                    "1e308",
                ]);
                out.splice(a..b, n.bytes());
            }
        }
        14 if len > 0 => {
            // Repeat a short chunk many times (long lines, many fields).
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(16));
            let piece = out[i..i + n].to_vec();
            let times = 1 + rng.below(2000);
            let at = rng.below(out.len() + 1);
            out.splice(at..at, piece.repeat(times));
        }
        _ if len > 0 => {
            // Swap two bytes.
            let a = rng.below(len);
            let b = rng.below(len);
            out.swap(a, b);
        }
        _ => out.push(rng.next() as u8),
    }
}

/// What one execution of a target found wrong (an invariant), or `Ok`.
pub type Verdict = Result<(), String>;

/// A panic that another branch fixes: counted as "known", not a failure,
/// until the fix lands and its entry is deleted.
pub struct Known {
    pub location_contains: &'static str,
    pub message_contains: &'static str,
    pub reason: &'static str,
}

/// One input that failed: a panic (message with location) or a broken invariant.
pub struct Failure {
    pub input: Vec<u8>,
    pub what: String,
    pub known: bool,
}

#[derive(Default)]
pub struct Stats {
    pub execs: u64,
    pub failures: Vec<Failure>,
    pub known: u64,
    pub distinct: std::collections::BTreeSet<String>,
}

impl Stats {
    pub fn new_failures(&self) -> usize {
        self.failures.iter().filter(|f| !f.known).count()
    }
}

thread_local! {
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics raised while a target
/// runs on this thread instead of printing them; other panics still print.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURE.with(|c| {
                let mut c = c.borrow_mut();
                if let Some(slot) = c.as_mut() {
                    let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                        (*s).to_string()
                    } else if let Some(s) = info.payload().downcast_ref::<String>() {
                        s.clone()
                    } else {
                        "panic".to_string()
                    };
                    let loc = info
                        .location()
                        .map(|l| format!("{}:{}", l.file(), l.line()))
                        .unwrap_or_default();
                    *slot = format!("panic at {loc}: {msg}");
                    true
                } else {
                    false
                }
            });
            if !captured {
                previous(info);
            }
        }));
    });
}

/// One execution longer than this is a finding (a hang or a quadratic
/// blow-up an attacker could feed); generous for unoptimized test builds.
pub const SLOW: Duration = Duration::from_secs(2);

/// Runs `f` on `input`, turning a panic into `Err("panic at …")` and an
/// execution over [`SLOW`] into `Err("slow: …")`.
pub fn run_one(f: &dyn Fn(&[u8]) -> Verdict, input: &[u8]) -> Verdict {
    let started = Instant::now();
    let v = run_caught(f, input);
    let took = started.elapsed();
    if v.is_ok() && took > SLOW {
        return Err(format!("slow: one execution took {} ms", took.as_millis()));
    }
    v
}

fn run_caught(f: &dyn Fn(&[u8]) -> Verdict, input: &[u8]) -> Verdict {
    CAPTURE.with(|c| *c.borrow_mut() = Some(String::new()));
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(input)));
    let msg = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    match r {
        Ok(v) => v,
        Err(_) => Err(if msg.is_empty() { "panic".into() } else { msg }),
    }
}

fn is_known(what: &str, known: &[Known]) -> bool {
    what.starts_with("panic at ")
        && known.iter().any(|k| {
            let (loc, msg) = what.split_once(": ").unwrap_or((what, ""));
            loc.contains(k.location_contains) && msg.contains(k.message_contains)
        })
}

/// The failure's kind without its input-specific details (for dedup):
/// the panic location, or the first 60 bytes of the invariant message.
fn failure_key(what: &str) -> String {
    match what.split_once(": ") {
        Some((loc, _)) if what.starts_with("panic at ") => loc.to_string(),
        _ => what.chars().take(60).collect(),
    }
}

/// Records one outcome into `stats` (keeps the first input per distinct failure).
pub fn record(stats: &mut Stats, input: &[u8], verdict: Verdict, known: &[Known]) {
    stats.execs += 1;
    if let Err(what) = verdict {
        let k = is_known(&what, known);
        if k {
            stats.known += 1;
        }
        if stats.distinct.insert(failure_key(&what)) {
            stats.failures.push(Failure {
                input: input.to_vec(),
                what,
                known: k,
            });
        }
    }
}

/// Deterministic passes over every seed first (each prefix, a multibyte
/// character inserted at every position), then random mutation until the
/// deadline. Seeds longer than `systematic_max` get only sampled positions.
pub fn fuzz(
    f: &dyn Fn(&[u8]) -> Verdict,
    seeds: &[Vec<u8>],
    known: &[Known],
    rng: &mut Rng,
    budget: Duration,
    max_len: usize,
) -> Stats {
    install_hook();
    let deadline = Instant::now() + budget;
    let mut stats = Stats::default();
    for s in seeds {
        let v = run_one(f, s);
        record(&mut stats, s, v, known);
    }
    // Systematic: truncation and multibyte insertion at every position.
    'systematic: for s in seeds {
        let step = (s.len() / 512).max(1);
        let mut at = 0;
        while at <= s.len() {
            if Instant::now() >= deadline {
                break 'systematic;
            }
            let v = run_one(f, &s[..at]);
            record(&mut stats, &s[..at], v, known);
            for ch in [MULTIBYTE[0], MULTIBYTE[1], MULTIBYTE[2], MULTIBYTE[5]] {
                let mut m = s[..at].to_vec();
                m.extend_from_slice(ch);
                m.extend_from_slice(&s[at..]);
                let v = run_one(f, &m);
                record(&mut stats, &m, v, known);
            }
            at += step;
        }
    }
    let mut pool: Vec<Vec<u8>> = seeds.to_vec();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    while Instant::now() < deadline {
        for _ in 0..16 {
            let base = pool[rng.below(pool.len())].clone();
            let m = mutate(rng, &base, &pool, max_len);
            let v = run_one(f, &m);
            let ok = v.is_ok();
            record(&mut stats, &m, v, known);
            // Keep a few survivors to mutate further (bounded pool).
            if ok && rng.chance(64) {
                if pool.len() < 256 {
                    pool.push(m);
                } else {
                    let i = seeds.len() + rng.below(pool.len() - seeds.len());
                    pool[i] = m;
                }
            }
        }
    }
    stats
}

/// Every regular file in `dir`, sorted by name (missing dir: none).
pub fn read_dir_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file() {
                if let Ok(b) = std::fs::read(&p) {
                    out.push((p, b));
                }
            }
        }
    }
    out.sort();
    out
}

/// Writes a failing input to `dir/<hash>.bin`; returns the path.
pub fn save_failure(dir: &Path, input: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join(format!("{:016x}.bin", hash(input)));
    std::fs::write(&p, input)?;
    Ok(p)
}

/// The total budget from `PINCH_FUZZ_SECONDS` (default `default_s`).
pub fn budget_from_env(default_s: f64) -> Duration {
    let s = std::env::var("PINCH_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(default_s);
    Duration::from_secs_f64(s.min(86_400.0))
}

/// The seed from `PINCH_FUZZ_SEED` (decimal or 0x-hex), default fixed.
pub fn seed_from_env() -> u64 {
    std::env::var("PINCH_FUZZ_SEED")
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(0x5EED_0F_F022)
}

/// A plain table: target, executions, failures, known.
pub fn table(rows: &[(String, u64, usize, u64)]) -> String {
    let mut s = format!(
        "{:<20} {:>12} {:>9} {:>7}\n",
        "target", "executions", "failures", "known"
    );
    for (name, execs, fails, known) in rows {
        s.push_str(&format!("{name:<20} {execs:>12} {fails:>9} {known:>7}\n"));
    }
    s
}
