//! A real HTTP proxy for route tests: Debian's tinyproxy (installed by
//! `.ci/run`) on an ephemeral loopback port, logging every CONNECT to a file
//! in the test's home. Stopped on drop.

use super::TempHome;
use std::path::PathBuf;

pub struct Tinyproxy {
    pub port: u16,
    pub log: PathBuf,
    child: std::process::Child,
}

impl Tinyproxy {
    /// Starts tinyproxy, or prints "SKIPPED: ..." and returns `None` when it
    /// is not installed. Waits (with a deadline) until it accepts connections.
    pub fn start(home: &TempHome) -> Option<Tinyproxy> {
        let bin = super::installed("tinyproxy", "tinyproxy")?;
        let port = super::free_port();
        let log = home.path.join("tinyproxy.log");
        let conf = home.path.join("tinyproxy.conf");
        std::fs::write(&conf, format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 20\nAllow 127.0.0.1\n", log.display())).expect("conf");
        let child = std::process::Command::new(bin)
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tinyproxy");
        super::wait_listening(port, "tinyproxy");
        Some(Tinyproxy { port, log, child })
    }

    /// Stops the proxy and returns its log (every CONNECT it handled).
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
