//! A SOCKS5 proxy (RFC 1928, no authentication) on 127.0.0.1 for tests.
//! It logs each CONNECT as `name host:port` or `ip addr:port` and relays to
//! loopback targets only: a loopback address is connected as given (reply
//! 5 when refused); a name is connected on 127.0.0.1; any other address is
//! never connected to: the proxy holds the client silent, like a proxy
//! whose own route to that family is a black hole.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub struct FakeSocks {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeSocks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl FakeSocks {
    pub fn start() -> FakeSocks {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                        let (log, stop) = (log2.clone(), stop2.clone());
                        thread::spawn(move || serve(s, &log, &stop));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeSocks { addr, log, stop }
    }

    /// The CONNECT requests so far, in order.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }
}

fn serve(mut s: TcpStream, log: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let mut hdr = [0u8; 2];
    if s.read_exact(&mut hdr).is_err() || hdr[0] != 5 {
        return;
    }
    let mut methods = vec![0u8; usize::from(hdr[1])];
    if s.read_exact(&mut methods).is_err() || !methods.contains(&0) {
        return;
    }
    let _ = s.write_all(&[5, 0]);
    let mut req = [0u8; 4];
    if s.read_exact(&mut req).is_err() || req[1] != 1 {
        return;
    }
    let target: Result<IpAddr, String> = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            let _ = s.read_exact(&mut a);
            Ok(IpAddr::V4(Ipv4Addr::from(a)))
        }
        4 => {
            let mut a = [0u8; 16];
            let _ = s.read_exact(&mut a);
            Ok(IpAddr::V6(Ipv6Addr::from(a)))
        }
        3 => {
            let mut l = [0u8; 1];
            let _ = s.read_exact(&mut l);
            let mut n = vec![0u8; usize::from(l[0])];
            let _ = s.read_exact(&mut n);
            Err(String::from_utf8_lossy(&n).into_owned())
        }
        _ => return,
    };
    let mut p = [0u8; 2];
    if s.read_exact(&mut p).is_err() {
        return;
    }
    let port = u16::from_be_bytes(p);
    let upstream = match &target {
        Ok(ip) => {
            let address = SocketAddr::new(*ip, port);
            log.lock().expect("log").push(format!("ip {address}"));
            if !ip.is_loopback() {
                // Silent until the client gives up or the test ends.
                let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                let mut byte = [0u8; 1];
                while !stop.load(Ordering::SeqCst) {
                    match s.read(&mut byte) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return,
                    }
                }
                return;
            }
            TcpStream::connect_timeout(&address, Duration::from_secs(2))
        }
        Err(name) => {
            log.lock().expect("log").push(format!("name {name}:{port}"));
            TcpStream::connect(("127.0.0.1", port))
        }
    };
    match upstream {
        Ok(up) => {
            let _ = s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1]);
            let _ = s.set_read_timeout(None);
            relay(s, up);
        }
        Err(_) => {
            let _ = s.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
        }
    }
}

fn relay(a: TcpStream, b: TcpStream) {
    let (mut a_read, mut b_write) = match (a.try_clone(), b.try_clone()) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return,
    };
    let (mut b_read, mut a_write) = (b, a);
    let t = thread::spawn(move || {
        let _ = std::io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut b_read, &mut a_write);
    let _ = a_write.shutdown(Shutdown::Write);
    let _ = t.join();
}
