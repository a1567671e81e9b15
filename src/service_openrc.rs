//! OpenRC integration (Alpine Linux and NAS systems that boot with OpenRC):
//! `pinch service install --openrc` writes `/etc/init.d/pinch` (the script
//! shipped in the release tarball) and `/etc/conf.d/pinch` naming this
//! binary, the unprivileged user and PINCH_HOME, then adds the service to
//! the default runlevel and starts it. `--root DIR` writes under DIR
//! instead of `/` (staging an image) and never runs rc-update/rc-service.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The init script, as the release tarball ships it (`init/openrc/pinch`).
pub const INIT_SCRIPT: &str = include_str!("../packaging/tarball/init/openrc/pinch");

/// Where PINCH_HOME goes for a system service when none is set.
pub const DEFAULT_HOME: &str = "/var/lib/pinch";

/// True where OpenRC is the init system (or at least installed): its
/// service runner exists, or it has booted this machine (`/run/openrc`).
pub fn detected(root: &Path) -> bool {
    root.join("sbin/openrc-run").exists() || root.join("run/openrc").is_dir()
}

/// What `install --openrc` needs to know.
pub struct Install {
    pub exe: PathBuf,
    pub home: PathBuf,
    pub run_as: String,
    /// Writes under this directory instead of `/`; no rc-update/rc-service.
    pub root: Option<PathBuf>,
    pub start: bool,
}

/// Quotes a value for a POSIX shell assignment in /etc/conf.d/pinch.
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// `/etc/conf.d/pinch` for this install.
pub fn conf_d(exe: &Path, home: &Path, run_as: &str) -> String {
    format!(
        "# Settings for /etc/init.d/pinch, written by `pinch service install --openrc`.
# The gateway reads $PINCH_HOME/pinch.json (mode 0600, owned by PINCH_USER)
# and keeps its queue and sessions there: keep PINCH_HOME on a local Linux
# filesystem (ext4, btrfs, xfs), not FAT or a network share.
PINCH_BIN={bin}
PINCH_USER={user}
PINCH_HOME={home}
#PINCH_LOG={home_log}
#RUST_LOG=info
",
        bin = shell_quote(&exe.to_string_lossy()),
        user = shell_quote(run_as),
        home = shell_quote(&home.to_string_lossy()),
        home_log = shell_quote(&home.join("logs/gateway.log").to_string_lossy()),
    )
}

/// True when `/etc/passwd` under `root` has the user.
fn user_exists(root: &Path, user: &str) -> bool {
    std::fs::read_to_string(root.join("etc/passwd"))
        .map(|p| {
            p.lines()
                .any(|l| l.split(':').next() == Some(user) && !user.is_empty())
        })
        .unwrap_or(false)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        println!("unchanged {}", path.display());
    } else {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    println!("$ {program} {}", args.join(" "));
    let st = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({st})", args.join(" ")))
    }
}

pub fn install(i: &Install) -> Result<i32, String> {
    let root = i.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let live = i.root.is_none();
    // SAFETY: geteuid has no preconditions.
    if live && unsafe { libc::geteuid() } != 0 {
        return Err("an OpenRC service is installed by root: run it with sudo or doas (or stage it with --root DIR)".into());
    }
    write_file(&root.join("etc/init.d/pinch"), INIT_SCRIPT, 0o755)?;
    write_file(
        &root.join("etc/conf.d/pinch"),
        &conf_d(&i.exe, &i.home, &i.run_as),
        0o644,
    )?;
    println!(
        "PINCH_HOME is {} (config: {}/pinch.json)",
        i.home.display(),
        i.home.display()
    );
    if !user_exists(&root, &i.run_as) {
        println!(
            "the user {u} does not exist yet: create it, e.g. `adduser -S -D -H -h {h} {u}` (Alpine) or `useradd --system --home-dir {h} {u}`",
            u = i.run_as,
            h = i.home.display()
        );
        if live && i.start {
            println!("not started; then: rc-update add pinch default && rc-service pinch start");
            return Ok(0);
        }
    }
    if !live {
        println!("staged under {}; on the machine: rc-update add pinch default && rc-service pinch start", root.display());
        return Ok(0);
    }
    run("rc-update", &["add", "pinch", "default"])?;
    if i.start {
        run("rc-service", &["pinch", "start"])?;
        println!(
            "running: `rc-service pinch status`, log: {}/logs/gateway.log",
            i.home.display()
        );
    } else {
        println!("not started (--no-start); later: rc-service pinch start");
    }
    Ok(0)
}

pub fn uninstall(root: Option<&Path>) -> Result<i32, String> {
    let live = root.is_none();
    let root = root.map(Path::to_path_buf).unwrap_or_else(|| "/".into());
    if live {
        if let Err(e) = run("rc-service", &["pinch", "stop"]) {
            eprintln!("pinch: {e} (continuing)");
        }
        if let Err(e) = run("rc-update", &["del", "pinch", "default"]) {
            eprintln!("pinch: {e} (continuing)");
        }
    }
    for f in ["etc/init.d/pinch", "etc/conf.d/pinch"] {
        let path = root.join(f);
        match std::fs::remove_file(&path) {
            Ok(()) => println!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("{} was not installed", path.display())
            }
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
    println!("PINCH_HOME is kept");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_script_runs_the_gateway_unprivileged() {
        assert!(INIT_SCRIPT.starts_with("#!/sbin/openrc-run\n"));
        for needle in [
            "--chuid \"$PINCH_USER\"",
            "gateway run",
            "--make-pidfile",
            "checkpath -d -m 0700",
            "need net",
        ] {
            assert!(INIT_SCRIPT.contains(needle), "missing {needle:?}");
        }
    }

    #[test]
    fn conf_d_quotes_values() {
        let c = conf_d(
            Path::new("/opt/my pinch/bin/pinch"),
            Path::new("/volume1/it's"),
            "pinch",
        );
        assert!(c.contains("PINCH_BIN='/opt/my pinch/bin/pinch'\n"), "{c}");
        assert!(c.contains("PINCH_HOME='/volume1/it'\\''s'\n"), "{c}");
        assert!(c.contains("PINCH_USER='pinch'\n"), "{c}");
    }

    #[test]
    fn detects_openrc_by_its_runner_or_run_dir() {
        let dir = std::env::temp_dir().join(format!("pinch-openrc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sbin")).expect("mkdir");
        assert!(!detected(&dir));
        std::fs::write(dir.join("sbin/openrc-run"), "").expect("write");
        assert!(detected(&dir));
        std::fs::remove_file(dir.join("sbin/openrc-run")).expect("rm");
        std::fs::create_dir_all(dir.join("run/openrc")).expect("mkdir");
        assert!(detected(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn staged_install_writes_both_files_and_uninstall_removes_them() {
        let dir = std::env::temp_dir().join(format!("pinch-openrc-stage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let i = Install {
            exe: PathBuf::from("/opt/pinch/bin/pinch"),
            home: PathBuf::from("/var/lib/pinch"),
            run_as: "pinch".into(),
            root: Some(dir.clone()),
            start: true,
        };
        assert_eq!(install(&i), Ok(0));
        let script = std::fs::read_to_string(dir.join("etc/init.d/pinch")).expect("script");
        assert_eq!(script, INIT_SCRIPT);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("etc/init.d/pinch"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let conf = std::fs::read_to_string(dir.join("etc/conf.d/pinch")).expect("conf");
        assert!(conf.contains("PINCH_HOME='/var/lib/pinch'\n"), "{conf}");
        assert_eq!(uninstall(Some(&dir)), Ok(0));
        assert!(!dir.join("etc/init.d/pinch").exists());
        assert!(!dir.join("etc/conf.d/pinch").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
