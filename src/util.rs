//! Small helpers shared by every layer: wall-clock time as unix
//! milliseconds, RFC 3339 formatting, hashing and constant-time comparison.
//! Pure code only reads time through the `now_ms` values it is handed; only
//! I/O shells call `now_ms()`.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an HTTP date (`Wed, 25 Nov 2026 10:15:33 GMT`) to unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: u32 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let year: i64 = it.next()?.parse().ok()?;
    let hms: Vec<u64> = it
        .next()?
        .split(':')
        .filter_map(|x| x.parse().ok())
        .collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| *x == mon)? as u32 + 1;
    if hms.len() != 3 || day == 0 || day > 31 {
        return None;
    }
    let days = days_from_civil(year, m, day);
    u64::try_from(days * 86_400)
        .ok()
        .map(|d| d + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// Hex SHA-256, shortened to 16 bytes: enough to tell values apart in the
/// audit log without storing them.
pub fn short_hash(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A random number from the system's secure generator (pairing codes,
/// jitter). Falls back to the clock if the generator fails.
pub fn random_u64() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    match ring::rand::SystemRandom::new().fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => now_ms().wrapping_mul(6_364_136_223_846_793_005),
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = if ca == *cb { 0 } else { 1 };
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase());
        if best.map(|(bd, _)| d < bd).unwrap_or(true) {
            best = Some((d, c));
        }
    }
    best.filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .map(|(_, c)| c)
}

/// Tunes glibc's allocator for a small, steady footprint: one arena (worker
/// threads otherwise each get their own, and memory freed in one arena is
/// not reusable by another, nor is a worker arena's free top trimmed), and
/// fixed mmap/trim thresholds. By default
/// glibc raises both after the first large buffer is freed, up to tens of
/// MB, and a worker arena's free top is then never returned: RSS would stay
/// at the high-water mark of a burst.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// The `GLIBC_TUNABLES` setting that turns glibc's cache of exited threads'
/// stacks off; the systemd units set it so no re-exec is needed.
pub const NO_STACK_CACHE: &str = "glibc.pthread.stack_cache_size=0";

/// Locks `m`, taking the guard even if a thread panicked while holding it:
/// for data (queues, counters, maps) that stays valid across such a panic.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// glibc keeps the stacks of exited threads for reuse (up to 40 MiB), each
/// with about 24 KiB still resident. The gateway runs a thread per
/// connection, so a burst of 100 connections would leave 2.4 MiB resident
/// for good. The cache size can only be set through `GLIBC_TUNABLES` before
/// the process starts, so the gateway re-executes itself once with it set
/// (same PID, so systemd and the notify socket are unaffected). Returns
/// only if the setting is in place or the re-exec failed (then logged).
pub fn disable_thread_stack_cache() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let (name, _) = NO_STACK_CACHE
            .split_once('=')
            .unwrap_or((NO_STACK_CACHE, ""));
        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if current.contains(name) {
            // Executed through /proc/self/exe, the kernel named us "exe";
            // take our own name back so `pgrep -x pinch` and `ps` find us.
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most
            // 16 bytes, which the literal is.
            unsafe { libc::prctl(libc::PR_SET_NAME, c"pinch".as_ptr(), 0, 0, 0) };
            return;
        }
        let value = if current.is_empty() {
            NO_STACK_CACHE.to_string()
        } else {
            format!("{current}:{NO_STACK_CACHE}")
        };
        let cstr = |b: &[u8]| CString::new(b).ok();
        let args: Option<Vec<CString>> = std::env::args_os().map(|a| cstr(a.as_bytes())).collect();
        let mut env: Option<Vec<CString>> = std::env::vars_os()
            .filter(|(k, _)| k != "GLIBC_TUNABLES")
            .map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect();
        if let Some(env) = env.as_mut() {
            env.extend(cstr(format!("GLIBC_TUNABLES={value}").as_bytes()));
        }
        let (Some(args), Some(env), Some(exe)) = (args, env, cstr(b"/proc/self/exe")) else {
            return;
        };
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: all pointers refer to NUL-terminated strings alive across
        // the call, and both arrays end with a null pointer. execve (unlike
        // execvp) never falls back to running the file as a shell script;
        // it returns only on failure, e.g. under qemu-user without binfmt.
        unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let err = std::io::Error::last_os_error();
        eprintln!("pinch: cannot re-execute with {NO_STACK_CACHE} ({err}); continuing");
    }
}

/// Returns free heap pages to the kernel (glibc), so RSS falls back after load.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases unused memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drops the clean pages of the executable and its shared libraries from
/// this process's resident set, and returns how many KiB that was.
///
/// Start-up code (config parsing, store opening) and code that ran during a
/// burst stay mapped after use and count in RSS although the gateway at
/// rest never touches them again. Only mappings that cannot hold private
/// data are dropped: not writable, backed by the binary or a `.so` file,
/// and with no anonymous (copy-on-write) pages. Their contents stay in the
/// kernel's page cache; whatever is needed again is mapped back on first
/// touch, a minor fault of well under a microsecond per page.
pub fn release_code_pages() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return 0;
        };
        let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
        let exe = exe.to_string_lossy();
        let mut released = 0;
        for m in code_mappings(&smaps, &exe) {
            // SAFETY: the range is a whole mapping of a file that stays
            // mapped for the life of the process (the executable or a loaded
            // library, never unloaded), read-only, with no private pages:
            // dropping it loses nothing, and a later access re-reads the same
            // bytes from the page cache.
            let rc = unsafe {
                libc::madvise(
                    m.start as *mut libc::c_void,
                    m.end - m.start,
                    libc::MADV_DONTNEED,
                )
            };
            if rc == 0 {
                released += m.rss_kib;
            }
        }
        released
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Whether a file name is a shared library's: `libx.so` or `libx.so.6.0.1`.
fn is_library(file: &str) -> bool {
    match file.split_once(".so") {
        Some((stem, version)) => {
            !stem.is_empty()
                && (version.is_empty()
                    || (version.starts_with('.')
                        && version[1..].chars().all(|c| c.is_ascii_digit() || c == '.')))
        }
        None => false,
    }
}

/// One mapping from /proc/self/smaps that `release_code_pages` may drop.
#[derive(Debug, PartialEq)]
struct CodeMapping {
    start: usize,
    end: usize,
    rss_kib: u64,
}

/// Picks from smaps text the resident, read-only, private mappings of `exe`
/// or of a shared library that hold no anonymous pages.
fn code_mappings(smaps: &str, exe: &str) -> Vec<CodeMapping> {
    let mut out = Vec::new();
    // The mapping being read: its range, whether its header qualified, its Rss.
    let mut cur: Option<(CodeMapping, bool)> = None;
    fn finish(cur: Option<(CodeMapping, bool)>, out: &mut Vec<CodeMapping>) {
        if let Some((m, true)) = cur {
            if m.rss_kib > 0 {
                out.push(m);
            }
        }
    }
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some(key) = first.strip_suffix(':') {
            let Some((m, ok)) = cur.as_mut() else {
                continue;
            };
            let kib = fields.next().and_then(|v| v.parse::<u64>().ok());
            match (key, kib) {
                ("Rss", Some(v)) => m.rss_kib = v,
                ("Anonymous", Some(v)) if v > 0 => *ok = false,
                ("VmFlags", _) if line.contains(" lo") => *ok = false,
                _ => {}
            }
            continue;
        }
        // A header: "start-end perms offset dev inode [path]".
        finish(cur.take(), &mut out);
        let Some((a, b)) = first.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        let perms = fields.next().unwrap_or("");
        let path = fields.nth(3).unwrap_or("");
        let file = path.rsplit('/').next().unwrap_or("");
        let is_code =
            (!exe.is_empty() && path == exe) || (path.starts_with('/') && is_library(file));
        let ok = is_code && perms.len() == 4 && !perms.contains('w') && perms.ends_with('p');
        cur = Some((
            CodeMapping {
                start,
                end,
                rss_kib: 0,
            },
            ok && end > start,
        ));
    }
    finish(cur, &mut out);
    out
}

/// Reads RSS of this process in KiB from /proc (0 where unavailable).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_mappings_keep_only_clean_read_only_library_pages() {
        let smaps = "\
56000000-56001000 r--p 00000000 fd:01 11 /usr/bin/pinch
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
56001000-56300000 r-xp 00001000 fd:01 11 /usr/bin/pinch
Rss:                 900 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
56300000-56310000 r--p 00300000 fd:01 11 /usr/bin/pinch
Rss:                  64 kB
Anonymous:            64 kB
VmFlags: rd mr mw me ac
56310000-56311000 rw-p 00310000 fd:01 11 /usr/bin/pinch
Rss:                   4 kB
Anonymous:             4 kB
56400000-56500000 rw-p 00000000 00:00 0 [heap]
Rss:                 200 kB
Anonymous:           200 kB
7f000000-7f100000 r-xp 00028000 fd:01 22 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 500 kB
Anonymous:             0 kB
7f100000-7f200000 r--p 00000000 fd:01 23 /usr/lib/locale/locale-archive
Rss:                  40 kB
Anonymous:             0 kB
7f200000-7f201000 r--p 00000000 fd:01 24 /etc/ld.so.cache
Rss:                   4 kB
Anonymous:             0 kB
7f300000-7f301000 r-xp 00000000 fd:01 25 /usr/lib/libpinned.so
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd ex lo
7f400000-7f500000 r-xp 00000000 fd:01 26 /usr/lib/libcold.so.1
Rss:                   0 kB
Anonymous:             0 kB
bffd0000-bffd2000 r-xp 00000000 00:00 0 [vdso]
Rss:                   8 kB
";
        let got = code_mappings(smaps, "/usr/bin/pinch");
        let starts: Vec<usize> = got.iter().map(|m| m.start).collect();
        assert_eq!(
            starts,
            vec![0x5600_0000, 0x5600_1000, 0x7f00_0000],
            "{got:?}"
        );
        assert_eq!(got.iter().map(|m| m.rss_kib).sum::<u64>(), 1404);
        assert_eq!(got[1].end, 0x5630_0000);
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40.000Z");
        assert_eq!(
            parse_http_date("Wed, 18 Nov 2026 11:06:40 GMT"),
            Some(1_795_000_000)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn ct_eq_and_suggestions() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert_eq!(nearest("prot", ["bind", "port", "auth"]), Some("port"));
        assert_eq!(nearest("zzzzzz", ["bind", "port"]), None);
        assert_eq!(truncate("héllo", 2), "h");
    }
}
