//! The sandbox every program pinch starts for the agent (`exec`, skill
//! scripts) runs in: Landlock filesystem rules, `no_new_privs`, rlimits and
//! a scrubbed environment.
//!
//! Landlock is an allowlist: a sandboxed program may read and execute the
//! system directories (`/usr`, `/bin`, `/sbin`, `/lib*`), a short list of
//! non-secret files under `/etc` (never `/etc/shadow`), a few devices and
//! the workspace. `/proc` is not reachable at all: Landlock's ptrace scoping
//! closes another process's `mem` and `fd`, but on current kernels still
//! lets a same-user sandboxed process read its parent's `environ` and
//! `maps`, and a rule for `/proc/self` made in the parent would name the
//! gateway's own folder. So programs that need `/proc` (`ps`, `free`) fail. It may write only the workspace's existing entries other than
//! `skills/` and a private temporary directory. Nothing else is reachable:
//! not `$PINCH_HOME` (config, `.env`, store, logs), not
//! `$CREDENTIALS_DIRECTORY`, not `/home`, `/root`, `/var` or `/run`.
//!
//! The sandbox confines files and secrets, not the network.
//!
//! The ruleset is built in the parent (allocation, path lookups); the child
//! only calls `prctl` and `landlock_restrict_self` between fork and exec.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, ABI,
};

/// The newest Landlock ABI whose filesystem rights pinch asks for. Older
/// kernels get the subset they know (best effort, reported by `doctor`).
const WANTED_ABI: ABI = ABI::V5;

/// Non-secret files and folders under `/etc` that ordinary programs read.
const ETC_READABLE: [&str; 22] = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ld.so.preload",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/mime.types",
    "/etc/magic",
    "/etc/os-release",
    "/etc/locale.alias",
];

/// System folders readable (and executable) in the sandbox.
const SYSTEM_READABLE: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Device files programs may read and write.
const DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

/// What the kernel offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    /// Landlock is enabled; the kernel's ABI version.
    Landlock { abi: i32 },
    /// No Landlock: why (old kernel, disabled at boot, not allowed here).
    Unavailable(String),
}

/// Asks the kernel for its Landlock ABI version.
pub fn probe() -> Support {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the
    // VERSION flag only returns a number (or -1 with errno); no memory is
    // passed.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v >= 1 {
        return Support::Landlock { abi: v as i32 };
    }
    let err = std::io::Error::last_os_error();
    Support::Unavailable(unavailable_reason(
        err.raw_os_error(),
        &Surroundings::of_this_process(),
    ))
}

/// The Landlock system calls, as seccomp filters and unit files name them.
pub const LANDLOCK_SYSCALLS: &str =
    "landlock_create_ruleset landlock_add_rule landlock_restrict_self";

/// What the probe looks at when the kernel refuses: whether a seccomp
/// filter is on this process, which container manager (if any) started the
/// system, and whether a service manager started pinch.
#[derive(Clone, Debug, Default)]
pub struct Surroundings {
    /// `Seccomp:` of /proc/self/status (0 none, 1 strict, 2 filter).
    pub seccomp: Option<u32>,
    /// /run/systemd/container or `$container` (e.g. "systemd-nspawn").
    pub container: Option<String>,
    /// Started as a systemd service (`$INVOCATION_ID` is set).
    pub in_service: bool,
}

impl Surroundings {
    pub fn of_this_process() -> Surroundings {
        let status = read_small("/proc/self/status", 16 * 1024).unwrap_or_default();
        let seccomp = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .and_then(|v| v.trim().parse().ok());
        let container = read_small("/run/systemd/container", 256)
            .or_else(|| std::env::var("container").ok())
            .map(|c| crate::util::truncate_chars(c.trim(), 64))
            .filter(|c| !c.is_empty());
        Surroundings {
            seccomp,
            container,
            in_service: std::env::var_os("INVOCATION_ID").is_some(),
        }
    }
}

/// Reads at most `cap` bytes of a small text file.
fn read_small(path: &str, cap: u64) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(cap)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Why Landlock is unavailable, with what to do. EPERM never comes from
/// Landlock itself (it answers ENOSYS, EOPNOTSUPP or EINVAL): it is a
/// seccomp filter, most often a container manager's allowlist that predates
/// Landlock (systemd-nspawn of systemd 252, Debian 12), or a unit's
/// `SystemCallFilter=` without the Landlock calls.
pub fn unavailable_reason(errno: Option<i32>, around: &Surroundings) -> String {
    match errno {
        Some(libc::ENOSYS) => "the kernel has no Landlock (Linux 5.13 or newer with CONFIG_SECURITY_LANDLOCK is needed)".to_string(),
        Some(libc::EOPNOTSUPP) => "Landlock is built in but not enabled: add landlock to the lsm= kernel parameter".to_string(),
        Some(libc::EPERM) => {
            let mut why = String::from("a seccomp filter denies the Landlock system calls (EPERM; the kernel's Landlock never answers that)");
            if around.seccomp == Some(0) {
                why = String::from("Landlock is not permitted here (EPERM, though no seccomp filter is on this process)");
            }
            match around.container.as_deref() {
                Some(c) if c.contains("nspawn") => why.push_str(&format!(
                    ". This runs in a systemd-nspawn container, whose own system call allowlist lacks them in older systemd releases (252, Debian 12's, among them): start the container with --system-call-filter='{LANDLOCK_SYSCALLS}', or SystemCallFilter={LANDLOCK_SYSCALLS} in the [Exec] section of its .nspawn file"
                )),
                Some(c) => why.push_str(&format!(
                    ". This runs in a {c} container: allow {LANDLOCK_SYSCALLS} in its seccomp profile"
                )),
                None => {}
            }
            if around.in_service {
                why.push_str(&format!(
                    ". If the service's unit sets SystemCallFilter=, it must also list {LANDLOCK_SYSCALLS} (the packaged pinch.service does)"
                ));
            } else if around.container.is_none() {
                why.push_str(&format!(
                    ": allow {LANDLOCK_SYSCALLS} in the filter of whatever starts pinch"
                ));
            }
            why
        }
        _ => format!(
            "Landlock is not usable here: {}",
            errno.map_or_else(
                || "unknown error".to_string(),
                |e| std::io::Error::from_raw_os_error(e).to_string()
            )
        ),
    }
}

impl Support {
    /// One line for `pinch doctor` and `pinch status`.
    pub fn describe(&self) -> String {
        match self {
            Support::Landlock { abi } if *abi < 3 => format!("Landlock ABI {abi}: files are confined, but truncate(2) is not (Linux 6.2+ closes that)"),
            Support::Landlock { abi } => format!("Landlock ABI {abi}"),
            Support::Unavailable(why) => why.clone(),
        }
    }
}

/// How `tools.exec.sandbox` and the kernel combine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Children run under Landlock.
    Enforced { abi: i32 },
    /// `tools.exec.sandbox: "off"`: only rlimits and the scrubbed environment.
    Off,
    /// No Landlock and the sandbox not switched off: programs are refused.
    Refused(String),
}

pub fn mode(setting: &str) -> Mode {
    if setting == "off" {
        return Mode::Off;
    }
    match probe() {
        Support::Landlock { abi } => Mode::Enforced { abi },
        Support::Unavailable(why) => Mode::Refused(why),
    }
}

/// The `sandbox` object of `/status` and the doctor's line.
pub fn status_json(setting: &str) -> serde_json::Value {
    let support = probe();
    let state = match mode(setting) {
        Mode::Enforced { .. } => "enforced",
        Mode::Off => "off",
        Mode::Refused(_) => "unavailable: exec and skill scripts are refused",
    };
    serde_json::json!({"state": state, "kernel": support.describe()})
}

/// Where a sandboxed program may go.
pub struct Policy {
    /// The agent's workspace (canonical).
    pub workspace: PathBuf,
    /// Programs outside the system folders that may run (canonical files).
    pub extra_programs: Vec<PathBuf>,
    /// Further read-only folders: the skills' own folders.
    pub readable: Vec<PathBuf>,
    /// Folders that must stay unreachable even if a rule would cover them:
    /// `$PINCH_HOME` and `$CREDENTIALS_DIRECTORY`.
    pub secret_roots: Vec<PathBuf>,
}

/// A prepared sandbox for one child: the Landlock ruleset (built in the
/// parent) and its private temporary folder, removed on drop.
pub struct Prepared {
    ruleset: Option<RulesetCreated>,
    pub tmp: PathBuf,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn rights_for(path: &Path, wanted: BitFlags<AccessFs>, abi: ABI) -> BitFlags<AccessFs> {
    if path.is_dir() {
        wanted
    } else {
        wanted & AccessFs::from_file(abi)
    }
}

/// True when `p` is, contains or lies inside one of `secret_roots`, except
/// for the workspace itself.
fn touches_secret(p: &Path, policy: &Policy) -> bool {
    policy
        .secret_roots
        .iter()
        .any(|s| (p.starts_with(s) && !p.starts_with(&policy.workspace)) || s.starts_with(p))
}

static TMP_COUNTER: crate::atomic64::AtomicU64 = crate::atomic64::AtomicU64::new(0);

/// Builds the ruleset for one child and creates its private temp folder.
/// With `enforce` false only the temp folder is made (sandbox "off").
pub fn prepare(policy: &Policy, enforce: bool) -> Result<Prepared, String> {
    let n = TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!("pinch-exec-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(|e| format!("cannot create a temporary folder {}: {e}", tmp.display()))?;
    let mut prepared = Prepared { ruleset: None, tmp };
    if !enforce {
        return Ok(prepared);
    }
    for s in &policy.secret_roots {
        if s.starts_with(&policy.workspace) {
            return Err(format!("the workspace {} contains {}, which holds secrets; programs are refused. fix: point agents.defaults.workspace at a folder that does not contain pinch's home", policy.workspace.display(), s.display()));
        }
    }
    let abi = WANTED_ABI;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let err = |e: landlock::RulesetError| format!("cannot build the sandbox: {e}");
    let mut ruleset = Ruleset::default()
        .handle_access(all)
        .map_err(err)?
        .create()
        .map_err(err)?;
    // `follow`: the fixed system paths may be symlinks (merged /usr,
    // /etc/resolv.conf into /run); paths from the workspace never are
    // followed, or a rule would cover whatever a link points at.
    let add = |rs: RulesetCreated, path: &Path, access: BitFlags<AccessFs>, follow: bool| {
        if !follow {
            match std::fs::symlink_metadata(path) {
                Ok(m) if !m.file_type().is_symlink() => {}
                _ => return Ok(rs),
            }
        }
        let real = match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(_) => return Ok(rs),
        };
        if touches_secret(&real, policy) {
            return Ok(rs);
        }
        let fd = match PathFd::new(&real) {
            Ok(fd) => fd,
            Err(_) => return Ok(rs),
        };
        rs.add_rule(PathBeneath::new(fd, rights_for(&real, access, abi)))
            .map_err(err)
    };
    for dir in SYSTEM_READABLE.iter().chain(ETC_READABLE.iter()) {
        ruleset = add(ruleset, Path::new(dir), read, true)?;
    }
    let device = AccessFs::ReadFile | AccessFs::WriteFile;
    for dev in DEVICES {
        ruleset = add(ruleset, Path::new(dev), device, true)?;
    }
    for p in &policy.extra_programs {
        ruleset = add(ruleset, p, AccessFs::Execute | AccessFs::ReadFile, true)?;
    }
    for dir in &policy.readable {
        ruleset = add(ruleset, dir, read, true)?;
    }
    ruleset = add(ruleset, &policy.workspace, read, false)?;
    if let Ok(entries) = std::fs::read_dir(&policy.workspace) {
        let mut names: Vec<OsString> = entries.flatten().map(|e| e.file_name()).collect();
        crate::sort::sort(&mut names);
        for name in names.into_iter().take(1000) {
            if name == "skills" {
                continue;
            }
            ruleset = add(ruleset, &policy.workspace.join(&name), all, false)?;
        }
    }
    ruleset = add(ruleset, &prepared.tmp, all, false)?;
    prepared.ruleset = Some(ruleset);
    Ok(prepared)
}

/// Resource limits for one child.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    pub file_bytes: u64,
    pub open_files: u64,
}

/// Applies the sandbox to `cmd`: scrubbed environment, working folder, and,
/// between fork and exec, `no_new_privs`, the rlimits and the Landlock
/// ruleset. The environment holds only PATH, HOME (the workspace), LANG and
/// TMPDIR: no API key, token or proxy credential reaches a child.
pub fn apply(
    cmd: &mut std::process::Command,
    prepared: &mut Prepared,
    workspace: &Path,
    limits: Limits,
) {
    use std::os::unix::process::CommandExt;
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    cmd.env_clear()
        .env("PATH", path)
        .env("HOME", workspace)
        .env("LANG", "C.UTF-8")
        .env("TMPDIR", &prepared.tmp);
    let mut ruleset = prepared.ruleset.take();
    // SAFETY: between fork and exec the closure makes only syscalls
    // (setrlimit, prctl, landlock_restrict_self through the crate) on values
    // prepared in the parent; it allocates nothing on the success path.
    unsafe {
        cmd.pre_exec(move || {
            let set = |res, cur: u64, max: u64| {
                let l = libc::rlimit {
                    rlim_cur: cur as libc::rlim_t,
                    rlim_max: max as libc::rlim_t,
                };
                libc::setrlimit(res, &l);
            };
            set(
                libc::RLIMIT_CPU,
                limits.cpu_seconds,
                limits.cpu_seconds.saturating_add(1),
            );
            set(libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes);
            set(libc::RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes);
            set(libc::RLIMIT_NOFILE, limits.open_files, limits.open_files);
            set(libc::RLIMIT_CORE, 0, 0);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(rs) = ruleset.take() {
                match rs.restrict_self() {
                    Ok(s) if s.ruleset != RulesetStatus::NotEnforced => {}
                    _ => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            "landlock",
                        ))
                    }
                }
            }
            Ok(())
        });
    }
}

/// Hardens the gateway process itself: not dumpable, so other processes of
/// the same user cannot read its memory or `/proc/<pid>/environ` (where API
/// keys from the environment live), and no core dumps holding secrets.
pub fn harden_gateway() {
    // SAFETY: plain prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests;
