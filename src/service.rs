//! systemd integration without libsystemd: `READY=1` and watchdog pings are
//! datagrams to `$NOTIFY_SOCKET` (a path, or an abstract socket when it starts
//! with `@`). Both are no-ops when not started by systemd. Also the unit files:
//! `pinch service print-unit [--user]` and `pinch service install --user`;
//! OpenRC (`--openrc`, detected by itself) is in service_openrc.rs.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

fn notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        send_abstract(&sock, name, msg)
    } else {
        sock.send_to(msg.as_bytes(), std::path::Path::new(&path))
            .map(|_| ())
    };
    if let Err(e) = sent {
        log::debug!("sd_notify {msg:?} failed: {e}");
    }
}

fn send_abstract(sock: &UnixDatagram, name: &[u8], msg: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(msg.as_bytes(), &addr).map(|_| ())
}

/// Tells systemd the gateway is ready (Type=notify).
pub fn notify_ready() {
    notify("READY=1");
}

/// Pets the watchdog (WatchdogSec=); called from the reactor's timer, so a
/// wedged reactor stops petting and systemd restarts the service.
pub fn watchdog() {
    if std::env::var_os("WATCHDOG_USEC").is_some() {
        notify("WATCHDOG=1");
    }
}

pub fn notify_stopping() {
    notify("STOPPING=1");
}

/// The system unit shipped by the Debian package (`/lib/systemd/system/pinch.service`).
pub const SYSTEM_UNIT: &str = include_str!("../packaging/pinch.service");

/// Quotes one word for a unit file's command line or assignment: `%` is a
/// specifier and `$` a variable there, so both are doubled; words with
/// spaces, quotes or backslashes are double-quoted with C escapes.
fn unit_word(w: &str, exec: bool) -> String {
    let mut s = w.replace('%', "%%");
    if exec {
        s = s.replace('$', "$$");
    }
    if s.is_empty()
        || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\' || c == ';')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// The per-user unit (`systemctl --user`): the same gateway under the user's
/// own service manager. It keeps the sandbox settings that work without
/// privileges (seccomp filters, no new privileges); the mount-namespace ones
/// (ProtectSystem=, PrivateTmp=, ...) would need unprivileged user
/// namespaces, which many kernels disable, so they are left out.
pub fn user_unit(exe: &Path, config: Option<&Path>, home: &Path) -> String {
    let mut exec = vec![unit_word(&exe.to_string_lossy(), true)];
    if let Some(c) = config {
        exec.push("--config".into());
        exec.push(unit_word(&c.to_string_lossy(), true));
    }
    exec.push("gateway".into());
    exec.push("run".into());
    format!(
        "# systemd user unit for the pinch gateway, written by `pinch service install --user`.
# Runs `pinch gateway run` under your own service manager; state lives in
# PINCH_HOME. Keep it running without a login session: loginctl enable-linger

[Unit]
Description=pinch AI assistant gateway (user)
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
WatchdogSec=30s
ExecStart={exec}
Environment={env}
# Freed thread stacks go back to the kernel (otherwise pinch re-executes
# itself once at start to set this).
Environment=GLIBC_TUNABLES={tunables}
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s

# Sandbox settings that work in a user manager.
NoNewPrivileges=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
KeyringMode=private
UMask=0077
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallFilter=setrlimit prlimit64
SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self
SystemCallErrorNumber=EPERM

[Install]
WantedBy=default.target
",
        exec = exec.join(" "),
        env = unit_word(&format!("PINCH_HOME={}", home.display()), false),
        tunables = crate::util::NO_STACK_CACHE,
    )
}

/// Where `systemctl --user` looks for units: `$XDG_CONFIG_HOME/systemd/user`,
/// else `~/.config/systemd/user`.
fn user_unit_dir() -> Result<PathBuf, String> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("systemd/user"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or("HOME is not set; cannot find ~/.config/systemd/user")?;
    Ok(PathBuf::from(home).join(".config/systemd/user"))
}

fn have_systemctl() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("systemctl").is_file()))
        .unwrap_or(false)
}

fn systemctl_user(args: &[&str]) -> Result<(), String> {
    println!("$ systemctl --user {}", args.join(" "));
    let st = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!(
            "`systemctl --user {}` failed ({st})",
            args.join(" ")
        ))
    }
}

/// `pinch service ...`
pub fn cmd(
    p: &mut lexopt::Parser,
    config: Option<&Path>,
    home: &crate::home::Home,
) -> Result<i32, String> {
    use lexopt::prelude::*;
    const HELP: &str = "Usage: pinch service <install --user|--openrc [--no-start] | uninstall --user|--openrc | print-unit [--user|--openrc]>

install --user   write ~/.config/systemd/user/pinch.service for this binary and
                 PINCH_HOME, then `systemctl --user daemon-reload` and
                 `enable --now` (--no-start: only write and reload)
uninstall --user disable and stop the user service and remove its unit
print-unit       print the system unit (as the Debian package installs it);
                 with --user, the user unit `install --user` would write;
                 with --openrc, the OpenRC init script
install --openrc (root) write /etc/init.d/pinch and /etc/conf.d/pinch for this
                 binary, run as --run-as USER (default pinch) with PINCH_HOME
                 (default /var/lib/pinch), then rc-update add and start it;
                 chosen by itself where OpenRC runs (Alpine, OpenRC NAS).
                 --root DIR writes under DIR and runs nothing
uninstall --openrc stop, rc-update del, remove both files

System-wide installs come from the .deb package (pinch.service runs as the
`pinch` user with /etc/pinch/pinch.json); for API keys there, prefer systemd
credentials (LoadCredential=) over environment files.";
    let (mut user, mut no_start, mut openrc) = (false, false, false);
    let mut sub: Option<String> = None;
    let mut root: Option<PathBuf> = None;
    let mut run_as = String::from("pinch");
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("user") => user = true,
            Long("no-start") => no_start = true,
            Long("openrc") => openrc = true,
            Long("root") => root = Some(p.value().map_err(|e| e.to_string())?.into()),
            Long("run-as") => {
                run_as = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .into_string()
                    .map_err(|_| "--run-as: not UTF-8".to_string())?
            }
            Value(v) if sub.is_none() => sub = v.into_string().ok(),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let exe = || {
        std::env::current_exe()
            .and_then(|e| e.canonicalize())
            .map_err(|e| format!("cannot find the pinch binary: {e}"))
    };
    let config = match config {
        Some(c) => Some(std::path::absolute(c).map_err(|e| format!("{}: {e}", c.display()))?),
        None => None,
    };
    let home_root = std::path::absolute(&home.root).map_err(|e| e.to_string())?;
    if user && openrc {
        return Err(format!("--user and --openrc exclude each other\n\n{HELP}"));
    }
    // Without --user, OpenRC is used where it is the init system.
    let openrc = openrc
        || (!user
            && matches!(sub.as_deref(), Some("install" | "uninstall"))
            && crate::service_openrc::detected(Path::new("/")));
    if openrc {
        use crate::service_openrc as rc;
        return match sub.as_deref() {
            Some("print-unit") => {
                print!("{}", rc::INIT_SCRIPT);
                Ok(0)
            }
            Some("install") => {
                if config.is_some() {
                    return Err("--config is not passed to the OpenRC service: put the config at $PINCH_HOME/pinch.json".into());
                }
                // A system service keeps its state in /var/lib/pinch unless
                // PINCH_HOME says otherwise (not in root's home).
                let home = match std::env::var_os("PINCH_HOME").filter(|h| !h.is_empty()) {
                    Some(_) => home_root.clone(),
                    None => PathBuf::from(rc::DEFAULT_HOME),
                };
                rc::install(&rc::Install {
                    exe: exe()?,
                    home,
                    run_as,
                    root,
                    start: !no_start,
                })
            }
            Some("uninstall") => rc::uninstall(root.as_deref()),
            _ => {
                println!("{HELP}");
                Ok(2)
            }
        };
    }
    match (sub.as_deref(), user) {
        (Some("print-unit"), false) => {
            print!("{SYSTEM_UNIT}");
            Ok(0)
        }
        (Some("print-unit"), true) => {
            print!("{}", user_unit(&exe()?, config.as_deref(), &home_root));
            Ok(0)
        }
        (Some("install"), true) => {
            let unit = user_unit(&exe()?, config.as_deref(), &home_root);
            let dir = user_unit_dir()?;
            let path = dir.join("pinch.service");
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            if std::fs::read_to_string(&path).ok().as_deref() == Some(unit.as_str()) {
                println!("unchanged {}", path.display());
            } else {
                std::fs::write(&path, &unit)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                println!("wrote {}", path.display());
            }
            home.ensure()?;
            println!("PINCH_HOME is {}", home_root.display());
            if !have_systemctl() {
                println!("systemctl not found: start it with `systemctl --user enable --now pinch` where systemd runs");
                return Ok(0);
            }
            let done = systemctl_user(&["daemon-reload"]).and_then(|_| {
                if no_start {
                    println!("not started (--no-start); later: systemctl --user enable --now pinch");
                    Ok(())
                } else {
                    systemctl_user(&["enable", "--now", "pinch.service"])
                }
            });
            match done {
                Ok(()) => {
                    if !no_start {
                        println!("running: `systemctl --user status pinch`, logs: `journalctl --user -u pinch`");
                    }
                    println!("to keep it running after you log out: loginctl enable-linger $USER");
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("pinch: the unit is written, but {e}\n  is a user session with systemd running? (try: loginctl enable-linger $USER, then log in again)");
                    Ok(1)
                }
            }
        }
        (Some("uninstall"), true) => {
            let path = user_unit_dir()?.join("pinch.service");
            if have_systemctl() {
                if let Err(e) = systemctl_user(&["disable", "--now", "pinch.service"]) {
                    eprintln!("pinch: {e} (continuing)");
                }
            }
            match std::fs::remove_file(&path) {
                Ok(()) => println!("removed {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    println!("{} was not installed", path.display())
                }
                Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
            }
            if have_systemctl() {
                let _ = systemctl_user(&["daemon-reload"]);
            }
            println!("PINCH_HOME ({}) is kept", home_root.display());
            Ok(0)
        }
        (Some("install" | "uninstall"), false) => Err(format!(
            "only per-user (--user) and OpenRC (--openrc) installs are done here.\n  system-wide: install the pinch .deb package, or put `pinch service print-unit` into /etc/systemd/system/pinch.service (it expects a `pinch` user and /etc/pinch/pinch.json)\n\n{HELP}"
        )),
        _ => {
            println!("{HELP}");
            Ok(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_unit_has_the_key_directives() {
        let u = user_unit(
            Path::new("/opt/pinch bin/pinch"),
            Some(Path::new("/home/a/100%.json")),
            Path::new("/home/a/.pinch"),
        );
        for d in [
            "Type=notify\n",
            "NotifyAccess=main\n",
            "WatchdogSec=30s\n",
            "Restart=on-failure\n",
            "Environment=PINCH_HOME=/home/a/.pinch\n",
            "ExecStart=\"/opt/pinch bin/pinch\" --config /home/a/100%%.json gateway run\n",
            "NoNewPrivileges=yes\n",
            "SystemCallFilter=@system-service\n",
            "SystemCallFilter=setrlimit prlimit64\n",
            "SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self\n",
            "UMask=0077\n",
            "WantedBy=default.target\n",
        ] {
            assert!(u.contains(d), "missing {d:?} in:\n{u}");
        }
        // A user manager cannot switch users or own a StateDirectory elsewhere.
        for absent in [
            "User=",
            "StateDirectory=",
            "ProtectSystem=",
            "PrivateUsers=",
        ] {
            assert!(!u.contains(absent), "{absent} in user unit:\n{u}");
        }
        let plain = user_unit(Path::new("/usr/bin/pinch"), None, Path::new("/h/.pinch"));
        assert!(
            plain.contains("ExecStart=/usr/bin/pinch gateway run\n"),
            "{plain}"
        );
    }

    #[test]
    fn system_unit_has_the_key_directives() {
        for d in [
            "Type=notify\n",
            "NotifyAccess=main\n",
            "WatchdogSec=30s\n",
            "ExecStart=/usr/bin/pinch --config /etc/pinch/pinch.json gateway run\n",
            "Environment=PINCH_HOME=/var/lib/pinch\n",
            "User=pinch\n",
            "StateDirectory=pinch\n",
            "StateDirectoryMode=0700\n",
            "Restart=on-failure\n",
            "ProtectSystem=strict\n",
            "CapabilityBoundingSet=\n",
            "SystemCallFilter=setrlimit prlimit64\n",
            "SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self\n",
            "#LoadCredential=",
            "WantedBy=multi-user.target\n",
        ] {
            assert!(
                SYSTEM_UNIT.contains(d),
                "missing {d:?} in packaging/pinch.service"
            );
        }
        assert!(
            !SYSTEM_UNIT.contains("NoExecPaths"),
            "the exec tool runs programs from /usr"
        );
    }

    #[test]
    fn unit_words_are_escaped() {
        assert_eq!(unit_word("/a/b", true), "/a/b");
        assert_eq!(unit_word("a b", true), "\"a b\"");
        assert_eq!(unit_word("$x%", true), "$$x%%");
        assert_eq!(unit_word("$x", false), "$x");
        assert_eq!(unit_word("q\"\\", true), "\"q\\\"\\\\\"");
    }
}
