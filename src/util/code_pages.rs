//! Clean code pages of the executable and its libraries dropped from the
//! resident set (`madvise`), picked from `/proc/self/smaps`.

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
}
