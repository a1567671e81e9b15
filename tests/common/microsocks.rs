//! A real SOCKS5 proxy for route tests: Debian's microsocks (installed by
//! `.ci/run`) on an ephemeral loopback port, demanding a user name and
//! password. Stopped on drop.

use std::time::{Duration, Instant};

pub struct Microsocks {
    pub port: u16,
    child: std::process::Child,
}

impl Microsocks {
    /// Starts microsocks on 127.0.0.1 requiring `user`/`password`, or prints
    /// "SKIPPED: ..." and returns `None` when it is not installed. Waits
    /// (with a deadline) until it accepts connections.
    pub fn start(user: &str, password: &str) -> Option<Microsocks> {
        let Some(bin) = ["/usr/bin/microsocks", "/usr/sbin/microsocks"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            eprintln!(
                "SKIPPED: microsocks is not installed (apt-get install microsocks; .ci/run does)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new(bin)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-u",
                user,
                "-P",
                password,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start microsocks");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "microsocks did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Microsocks { port, child })
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
