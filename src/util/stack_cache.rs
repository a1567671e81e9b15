//! glibc's cache of exited threads' stacks, turned off through
//! `GLIBC_TUNABLES`: the setting, and the one re-exec that puts it in place.

/// The `GLIBC_TUNABLES` setting that turns glibc's cache of exited threads'
/// stacks off; the systemd units set it so no re-exec is needed.
pub const NO_STACK_CACHE: &str = "glibc.pthread.stack_cache_size=0";

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
