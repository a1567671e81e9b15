//! The allocator: glibc malloc tuning for a small, steady footprint, free
//! heap returned to the kernel, and the process's resident size.

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

/// Returns free heap pages to the kernel (glibc), so RSS falls back after load.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases unused memory.
    unsafe {
        libc::malloc_trim(0);
    }
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
