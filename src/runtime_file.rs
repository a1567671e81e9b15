//! The gateway's runtime file, `$PINCH_HOME/run/gateway.json`: where the
//! gateway of this home listens (`address`), its `pid`, `startedMs` and
//! `version`. The gateway writes it atomically (0600, folder 0700) once it
//! is ready and removes it when it exits cleanly; the CLI reads it to find
//! the gateway of its own home instead of trusting whatever answers on a
//! port. A file whose process is gone (kill -9, power loss) or whose
//! address no longer answers is stale: ignored, and said so.

use crate::home::Home;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// What the runtime file says about the gateway of a home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRecord {
    /// Where a local client connects (loopback when the gateway listens on
    /// every address).
    pub address: SocketAddr,
    pub pid: u32,
    pub started_ms: u64,
    pub version: String,
}

/// The outcome of looking for the gateway of a home.
#[derive(Debug)]
pub enum Lookup {
    /// No runtime file: no gateway of this home is running (or one from
    /// before runtime files).
    Absent,
    /// The process is alive and its address answers.
    Running(GatewayRecord),
    /// A file that cannot be trusted; `why` says what is wrong with it.
    Stale { why: String },
}

/// `$PINCH_HOME/run/gateway.json`.
pub fn path(home: &Home) -> PathBuf {
    home.root.join("run").join("gateway.json")
}

/// The address a local client uses for a listener on `listen`.
pub fn client_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The file's JSON text.
pub fn encode(record: &GatewayRecord) -> String {
    json!({
        "address": record.address.to_string(),
        "pid": record.pid,
        "startedMs": record.started_ms,
        "version": record.version,
    })
    .to_string()
}

/// Parses the file's text; every field is checked.
pub fn decode(text: &str) -> Result<GatewayRecord, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let address = v["address"]
        .as_str()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .ok_or("no valid \"address\"")?;
    let pid = v["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0 && i32::try_from(*p).is_ok())
        .ok_or("no valid \"pid\"")?;
    Ok(GatewayRecord {
        address,
        pid,
        started_ms: v["startedMs"].as_u64().unwrap_or(0),
        version: v["version"].as_str().unwrap_or("").to_string(),
    })
}

/// The published file; removed when dropped (the gateway's clean exit),
/// if it still names this process.
pub struct Published {
    path: PathBuf,
    pid: u32,
}

/// Writes the runtime file for a gateway listening on `listen`.
pub fn publish(home: &Home, listen: SocketAddr) -> Result<Published, String> {
    use std::os::unix::fs::PermissionsExt;
    let file = path(home);
    let dir = home.root.join("run");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot set permissions on {}: {e}", dir.display()))?;
    let record = GatewayRecord {
        address: client_address(listen),
        pid: std::process::id(),
        started_ms: crate::util::now_ms(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    // Not synced: after a power loss the process it names is gone anyway,
    // and a stale or unreadable file is reported as such by `lookup`.
    crate::home::write_private_volatile(&file, encode(&record).as_bytes())?;
    Ok(Published {
        path: file,
        pid: record.pid,
    })
}

impl Drop for Published {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| decode(&t).ok())
            .is_some_and(|r| r.pid == self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether process `pid` exists (signal 0: EPERM means it does, owned by
/// another user).
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Looks for the gateway of `home`: the runtime file, its process alive
/// and its address answering within `timeout`.
pub fn lookup(home: &Home, timeout: Duration) -> Lookup {
    let file = path(home);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::Absent,
        Err(e) => {
            return Lookup::Stale {
                why: format!("cannot read {}: {e}", file.display()),
            }
        }
    };
    let record = match decode(&text) {
        Ok(r) => r,
        Err(e) => {
            return Lookup::Stale {
                why: format!("ignoring {}: {e}", file.display()),
            }
        }
    };
    if !pid_alive(record.pid) {
        return Lookup::Stale {
            why: format!(
                "ignoring {}: its gateway (pid {}) is not running; it did not exit cleanly, and the file is replaced when a gateway starts",
                file.display(),
                record.pid
            ),
        };
    }
    if TcpStream::connect_timeout(&record.address, timeout).is_err() {
        return Lookup::Stale {
            why: format!(
                "ignoring {}: pid {} runs but nothing answers at {}",
                file.display(),
                record.pid,
                record.address
            ),
        };
    }
    Lookup::Running(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_bad_files_are_errors() {
        let r = GatewayRecord {
            address: "127.0.0.1:4242".parse().expect("addr"),
            pid: 77,
            started_ms: 5,
            version: "1.2.3".into(),
        };
        assert_eq!(decode(&encode(&r)), Ok(r));
        assert!(decode("").is_err());
        assert!(decode("[]").is_err());
        assert!(decode(r#"{"address": "nowhere", "pid": 1}"#).is_err());
        assert!(decode(r#"{"address": "127.0.0.1:1", "pid": 0}"#).is_err());
        assert!(decode(r#"{"address": "127.0.0.1:1", "pid": 4294967295}"#).is_err());
        assert!(decode(r#"{"address": "127.0.0.1:1", "pid": -3}"#).is_err());
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() {
        let a = client_address("0.0.0.0:9".parse().expect("addr"));
        assert_eq!(a, "127.0.0.1:9".parse::<SocketAddr>().expect("addr"));
        let a = client_address("[::]:9".parse().expect("addr"));
        assert_eq!(a, "[::1]:9".parse::<SocketAddr>().expect("addr"));
        let a = client_address("192.0.2.1:9".parse().expect("addr"));
        assert_eq!(a, "192.0.2.1:9".parse::<SocketAddr>().expect("addr"));
    }

    #[test]
    fn lookup_tells_absent_running_and_stale_apart() {
        let root = std::env::temp_dir().join(format!("pinch-runtime-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("mkdir");
        let home = Home { root: root.clone() };
        assert!(matches!(
            lookup(&home, Duration::from_millis(200)),
            Lookup::Absent
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let listen = listener.local_addr().expect("addr");
        let published = publish(&home, listen).expect("publish");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(&home))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        match lookup(&home, Duration::from_millis(500)) {
            Lookup::Running(r) => {
                assert_eq!(r.address, listen);
                assert_eq!(r.pid, std::process::id());
            }
            other => panic!("{other:?}"),
        }
        // Nothing answers any more: stale.
        drop(listener);
        assert!(matches!(
            lookup(&home, Duration::from_millis(200)),
            Lookup::Stale { .. }
        ));
        drop(published);
        assert!(!path(&home).exists(), "removed on a clean exit");
        // A process that is gone: stale, and said so.
        let dead = GatewayRecord {
            address: listen,
            pid: i32::MAX as u32,
            started_ms: 0,
            version: String::new(),
        };
        crate::home::write_private(&path(&home), encode(&dead).as_bytes()).expect("write");
        match lookup(&home, Duration::from_millis(200)) {
            Lookup::Stale { why } => assert!(why.contains("is not running"), "{why}"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
