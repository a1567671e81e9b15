//! Happy Eyeballs (RFC 8305, simplified) for every outbound TCP connection:
//! a host that advertises IPv6 but cannot route it must not stall each call
//! for the whole connect timeout.
//!
//! The resolved addresses are interleaved by family (the resolver's first
//! family first, as RFC 6724 sorted them), the first attempt starts at once,
//! and each next one [`ATTEMPT_DELAY_MS`] after the previous unless that one
//! connected; a failed attempt lets the next start immediately. Earlier
//! attempts keep running; the first to connect wins and the others are
//! closed. The whole race ends at one deadline.
//!
//! [`Race`] is the sans-IO schedule (addresses and the time in, which
//! address to start or how long to wait out); [`race`] is the shell: one
//! short-lived thread per attempt (at most [`MAX_ATTEMPTS`], each ending by
//! the deadline), none when there is a single address. [`connect`] races
//! TCP connects; `socks5` races whole SOCKS5 tunnels the same way.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delay before the next attempt while the previous one is still pending
/// (RFC 8305's recommended "Connection Attempt Delay").
pub const ATTEMPT_DELAY_MS: u64 = 250;
/// Addresses tried at most, and so the most threads one connect uses.
pub const MAX_ATTEMPTS: usize = 6;

/// The addresses in attempt order: families alternate, starting with the
/// family of the first address; order within a family is kept.
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut second): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(addrs.len().min(MAX_ATTEMPTS));
    first.reverse();
    second.reverse();
    while out.len() < MAX_ATTEMPTS && !(first.is_empty() && second.is_empty()) {
        out.extend(first.pop());
        if out.len() < MAX_ATTEMPTS {
            out.extend(second.pop());
        }
    }
    out
}

/// What the shell does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Start an attempt to this address now.
    Start(SocketAddr),
    /// Wait for an attempt's outcome until this time (ms).
    WaitUntil(u64),
    /// Every attempt failed, or the deadline passed.
    GiveUp,
}

/// The schedule of one race, fed the time in milliseconds.
#[derive(Debug)]
pub struct Race {
    order: Vec<SocketAddr>,
    started: usize,
    pending: usize,
    next_start_ms: u64,
    deadline_ms: u64,
}

impl Race {
    pub fn new(addrs: &[SocketAddr], now_ms: u64, timeout_ms: u64) -> Race {
        Race {
            order: interleave(addrs),
            started: 0,
            pending: 0,
            next_start_ms: now_ms,
            deadline_ms: now_ms.saturating_add(timeout_ms),
        }
    }

    /// The deadline of the whole race.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    pub fn next(&mut self, now_ms: u64) -> Next {
        if now_ms >= self.deadline_ms {
            return Next::GiveUp;
        }
        let more = self.started < self.order.len();
        if more && now_ms >= self.next_start_ms {
            let addr = self.order[self.started];
            self.started += 1;
            self.pending += 1;
            self.next_start_ms = now_ms.saturating_add(ATTEMPT_DELAY_MS);
            return Next::Start(addr);
        }
        if self.pending == 0 {
            return Next::GiveUp;
        }
        Next::WaitUntil(if more {
            self.next_start_ms.min(self.deadline_ms)
        } else {
            self.deadline_ms
        })
    }

    /// An attempt failed: the next one may start at once.
    pub fn failed(&mut self, now_ms: u64) {
        self.pending = self.pending.saturating_sub(1);
        self.next_start_ms = self.next_start_ms.min(now_ms);
    }
}

/// Connects to the first of `addrs` that answers, racing them as above,
/// within `timeout` in all. The error is the last attempt's, or a timeout.
pub fn connect(addrs: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    race(addrs, timeout, |addr, left| {
        TcpStream::connect_timeout(&addr, left)
    })
}

/// Runs `attempt` for the addresses on the schedule above and returns the
/// first success; `attempt` gets its address and the time left, and must
/// end by then. A success that comes after the winner is dropped (closed)
/// on its own thread.
pub fn race<T: Send + 'static>(
    addrs: &[SocketAddr],
    timeout: Duration,
    attempt: impl Fn(SocketAddr, Duration) -> io::Result<T> + Send + Sync + 'static,
) -> io::Result<T> {
    if let [only] = addrs {
        return attempt(*only, timeout);
    }
    let attempt = Arc::new(attempt);
    let start = Instant::now();
    let elapsed_ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let mut race = Race::new(addrs, 0, timeout_ms);
    // Room for every attempt's answer, so no attempt thread ever blocks.
    let (tx, rx) = sync_channel::<io::Result<T>>(MAX_ATTEMPTS);
    let mut last_error: Option<io::Error> = None;
    loop {
        let now = elapsed_ms();
        match race.next(now) {
            Next::Start(addr) => {
                let left = Duration::from_millis(race.deadline_ms().saturating_sub(now).max(1));
                let (tx, attempt) = (tx.clone(), attempt.clone());
                let spawned = std::thread::Builder::new()
                    .name("connect".into())
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let _ = tx.send(attempt(addr, left));
                    });
                if let Err(e) = spawned {
                    last_error = Some(e);
                    race.failed(now);
                }
            }
            Next::WaitUntil(until) => {
                let wait = Duration::from_millis(until.saturating_sub(now).max(1));
                match rx.recv_timeout(wait) {
                    Ok(Ok(won)) => return Ok(won),
                    Ok(Err(e)) => {
                        last_error = Some(e);
                        race.failed(elapsed_ms());
                    }
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
                }
            }
            Next::GiveUp => {
                return Err(last_error.unwrap_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no address answered within {} ms", timeout.as_millis()),
                    )
                }))
            }
        }
    }
}

/// "IPv4" or "IPv6" for `winner`, and when `addrs` had both families, that
/// the other one was raced: what the doctor reports.
pub fn describe_winner(winner: SocketAddr, addrs: &[SocketAddr]) -> String {
    let won = if winner.is_ipv6() { "IPv6" } else { "IPv4" };
    let raced = interleave(addrs);
    if raced
        .iter()
        .any(|address| address.is_ipv6() != winner.is_ipv6())
    {
        format!("{won} won, IPv6 and IPv4 raced")
    } else if raced.len() > 1 {
        format!("{won}, {} addresses raced", raced.len())
    } else {
        won.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    #[test]
    fn families_alternate_from_the_resolvers_first() {
        let list = [
            addr("[2001:db8::1]:443"),
            addr("[2001:db8::2]:443"),
            addr("[2001:db8::3]:443"),
            addr("192.0.2.1:443"),
        ];
        assert_eq!(interleave(&list), [list[0], list[3], list[1], list[2]]);
        let v4_first = [list[3], list[0], list[1]];
        assert_eq!(interleave(&v4_first), [list[3], list[0], list[1]]);
        let many: Vec<SocketAddr> = (1..=9).map(|i| addr(&format!("192.0.2.{i}:80"))).collect();
        assert_eq!(interleave(&many).len(), MAX_ATTEMPTS);
        assert!(interleave(&[]).is_empty());
    }

    #[test]
    fn the_winner_is_described_by_family() {
        let (v6, v4) = (addr("[2001:db8::1]:443"), addr("192.0.2.1:443"));
        assert_eq!(
            describe_winner(v6, &[v6, v4]),
            "IPv6 won, IPv6 and IPv4 raced"
        );
        assert_eq!(
            describe_winner(v4, &[v6, v4]),
            "IPv4 won, IPv6 and IPv4 raced"
        );
        let v4b = addr("192.0.2.2:443");
        assert_eq!(describe_winner(v4b, &[v4, v4b]), "IPv4, 2 addresses raced");
        assert_eq!(describe_winner(v4, &[v4]), "IPv4");
    }

    #[test]
    fn a_silent_ipv6_address_delays_ipv4_by_250_ms_only() {
        let (v6, v4) = (addr("[2001:db8::1]:443"), addr("192.0.2.1:443"));
        let mut race = Race::new(&[v6, v4], 1000, 10_000);
        assert_eq!(race.next(1000), Next::Start(v6));
        assert_eq!(race.next(1000), Next::WaitUntil(1250));
        assert_eq!(race.next(1100), Next::WaitUntil(1250));
        assert_eq!(race.next(1250), Next::Start(v4), "IPv6 still silent");
        // both pending, nothing more to start: wait for an answer
        assert_eq!(race.next(1250), Next::WaitUntil(11_000));
        race.failed(1300);
        assert_eq!(race.next(1300), Next::WaitUntil(11_000));
        race.failed(1400);
        assert_eq!(race.next(1400), Next::GiveUp, "both failed");
    }

    #[test]
    fn a_failure_starts_the_next_attempt_at_once_and_the_deadline_ends_all() {
        let list = [
            addr("[2001:db8::1]:443"),
            addr("192.0.2.1:443"),
            addr("[2001:db8::2]:443"),
        ];
        let mut race = Race::new(&list, 0, 600);
        assert_eq!(race.next(0), Next::Start(list[0]));
        race.failed(20);
        assert_eq!(race.next(20), Next::Start(list[1]), "refused: no delay");
        assert_eq!(race.next(30), Next::WaitUntil(270));
        assert_eq!(race.next(270), Next::Start(list[2]));
        assert_eq!(race.next(400), Next::WaitUntil(600));
        assert_eq!(race.next(600), Next::GiveUp, "deadline");
        assert_eq!(Race::new(&[], 0, 600).next(0), Next::GiveUp);
    }

    /// A loopback listener whose accept queue is full: the kernel drops
    /// further SYNs, so a connect to it hangs like one to a blackholed
    /// address. None when the queue cannot be filled here.
    fn silent_listener() -> Option<(TcpListener, Vec<TcpStream>, SocketAddr)> {
        use std::os::unix::io::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").ok()?;
        // SAFETY: listen(2) on a socket this function owns.
        if unsafe { libc::listen(listener.as_raw_fd(), 0) } != 0 {
            return None;
        }
        let addr = listener.local_addr().ok()?;
        let mut held = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => held.push(s),
                Err(_) => return Some((listener, held, addr)),
            }
        }
        None
    }

    #[test]
    fn a_silent_address_does_not_hold_up_the_next_one() {
        let Some((_silent, _held, silent)) = silent_listener() else {
            println!("SKIPPED: the loopback accept queue could not be filled on this kernel");
            return;
        };
        let open = TcpListener::bind("127.0.0.1:0").expect("bind");
        let open_addr = open.local_addr().expect("addr");
        // One after the other, the silent address would use up the whole
        // budget; raced, the open one starts 250 ms in and wins.
        let stream = connect(&[silent, open_addr], Duration::from_secs(3)).expect("connected");
        assert_eq!(stream.peer_addr().expect("peer"), open_addr);
    }

    #[test]
    fn a_closed_ipv6_port_falls_through_to_ipv4_on_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // ::1 on the same port: closed (or no IPv6 at all); either way it fails.
        let list = [
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ];
        let started = Instant::now();
        let stream = connect(&list, Duration::from_secs(5)).expect("connected");
        assert_eq!(stream.peer_addr().expect("peer"), list[1]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let gone = closed.local_addr().expect("addr");
        drop(closed);
        let err = connect(&[gone, gone], Duration::from_secs(2)).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
