//! A real SOCKS5 proxy for route tests: Debian's microsocks (installed by
//! `.ci/run`) on an ephemeral loopback port, demanding a user name and
//! password. Stopped on drop.

pub struct Microsocks {
    pub port: u16,
    child: std::process::Child,
}

impl Microsocks {
    /// Starts microsocks on 127.0.0.1 requiring `user`/`password`, or prints
    /// "SKIPPED: ..." and returns `None` when it is not installed. Waits
    /// (with a deadline) until it accepts connections.
    pub fn start(user: &str, password: &str) -> Option<Microsocks> {
        let bin = super::installed("microsocks", "microsocks")?;
        let port = super::free_port();
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
        super::wait_listening(port, "microsocks");
        Some(Microsocks { port, child })
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
