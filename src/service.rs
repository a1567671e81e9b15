//! systemd integration without libsystemd: `READY=1` and watchdog pings are
//! datagrams to `$NOTIFY_SOCKET` (a path, or an abstract socket when it starts
//! with `@`). Both are no-ops when not started by systemd.

use std::os::unix::net::UnixDatagram;

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
