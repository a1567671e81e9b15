//! The doctor's probe against local fault servers on 127.0.0.1: refused,
//! reset, silent, untrusted TLS, trusted TLS via `caFile`, a proxy that
//! demands credentials, working CONNECT/SOCKS5 tunnels, and a name that
//! cannot resolve.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pinch::net::probe::{probe, Failure, ProbeReport, Step};
use pinch::net::{Decision, ProxyUrl};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Accept loop on a thread until dropped (or 30 s); one thread per connection.
fn serve(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handler = Arc::new(handler);
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let h = handler.clone();
                    thread::spawn(move || h(s));
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { port, stop }
}

fn read_head(s: &mut impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 16384 {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => break,
        }
    }
    buf
}

const DATE: &str = "Wed, 01 Jan 2025 00:00:00 GMT";

fn answer(s: &mut impl Write) {
    let resp = format!("HTTP/1.1 204 No Content\r\nDate: {DATE}\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(resp.as_bytes());
    let _ = s.flush();
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/net")
        .join(name)
}

fn tls_server(cert: &str, key: &str) -> Server {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(data(cert))
        .expect("cert file")
        .collect::<Result<_, _>>()
        .expect("cert pem");
    let key = PrivateKeyDer::from_pem_file(data(key)).expect("key file");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server cert");
    let config = Arc::new(config);
    serve(move |s| {
        let conn = match rustls::ServerConnection::new(config.clone()) {
            Ok(c) => c,
            Err(_) => return,
        };
        let mut tls = rustls::StreamOwned::new(conn, s);
        let head = read_head(&mut tls);
        if head.ends_with(b"\r\n\r\n") {
            answer(&mut tls);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    })
}

fn direct() -> Decision {
    Decision::Direct {
        why: "direct: test".into(),
    }
}

fn via(url: &str) -> Decision {
    Decision::Proxy {
        proxy: ProxyUrl::parse(url).expect("proxy url"),
        why: "via proxy (test)".into(),
    }
}

fn run(url: &str, d: &Decision, ca: Option<&Path>, ms: u64) -> ProbeReport {
    let r = probe(url, d, ca, Duration::from_millis(ms));
    eprintln!("{}", r.render(d));
    r
}

fn failed_step(r: &ProbeReport) -> Option<Step> {
    r.steps.iter().find(|s| !s.ok).map(|s| s.step)
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn nobody_listening_is_refused() {
    let port = closed_port();
    let r = run(&format!("http://127.0.0.1:{port}/"), &direct(), None, 2000);
    assert_eq!(r.failure, Some(Failure::Refused));
    assert_eq!(r.failure.as_ref().map(|f| f.curl_code()), Some(7));
    assert_eq!(failed_step(&r), Some(Step::Connect));
    assert!(r.steps[0].ok && r.steps[0].step == Step::Dns);
}

#[test]
fn reset_after_connect() {
    let srv = serve(|mut s| {
        let _ = read_head(&mut s);
        // SO_LINGER 0: close sends RST instead of FIN
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        use std::os::unix::io::AsRawFd;
        // SAFETY: valid fd owned by `s`, pointer and size describe `linger`
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        drop(s);
    });
    let r = run(
        &format!("http://127.0.0.1:{}/", srv.port),
        &direct(),
        None,
        2000,
    );
    assert_eq!(r.failure, Some(Failure::ResetAfterConnect));
    assert_eq!(r.failure.as_ref().map(|f| f.curl_code()), Some(56));
    assert_eq!(failed_step(&r), Some(Step::Http));
}

#[test]
fn silent_server_times_out() {
    let srv = serve(|s| {
        thread::sleep(Duration::from_millis(1500));
        drop(s);
    });
    let start = Instant::now();
    let r = run(
        &format!("http://127.0.0.1:{}/", srv.port),
        &direct(),
        None,
        500,
    );
    assert_eq!(r.failure, Some(Failure::Timeout));
    assert_eq!(r.failure.as_ref().map(|f| f.curl_code()), Some(28));
    assert_eq!(failed_step(&r), Some(Step::Http));
    assert!(start.elapsed() < Duration::from_millis(1400));
}

#[test]
fn self_signed_certificate_is_untrusted() {
    let srv = tls_server("selfsigned.crt", "selfsigned.key");
    let r = run(
        &format!("https://localhost:{}/", srv.port),
        &direct(),
        None,
        2000,
    );
    assert!(
        matches!(r.failure, Some(Failure::CertUntrusted { .. })),
        "{:?}",
        r.failure
    );
    assert_eq!(r.failure.as_ref().map(|f| f.curl_code()), Some(60));
    assert_eq!(failed_step(&r), Some(Step::Tls));
    let hint = r
        .failure
        .as_ref()
        .map(|f| f.hint(&direct()))
        .unwrap_or_default();
    assert!(hint.contains("caFile"), "{hint}");
}

#[test]
fn ca_file_makes_the_leaf_trusted() {
    let srv = tls_server("leaf.crt", "leaf.key");
    let ca = data("ca.crt");
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/health", srv.port);
        let r = run(&url, &direct(), Some(&ca), 2000);
        assert_eq!(r.failure, None, "{host}");
        let steps: Vec<Step> = r.steps.iter().map(|s| s.step).collect();
        assert_eq!(steps, vec![Step::Dns, Step::Connect, Step::Tls, Step::Http]);
        assert_eq!(r.http_date.as_deref(), Some(DATE));
        assert!(r.steps[3].detail.contains("204"), "{:?}", r.steps[3]);
    }
    // the same server without caFile is untrusted
    let r = run(
        &format!("https://localhost:{}/", srv.port),
        &direct(),
        None,
        2000,
    );
    assert!(matches!(r.failure, Some(Failure::CertUntrusted { .. })));
}

#[test]
fn plain_http_port_spoken_to_with_tls_is_a_tls_failure() {
    let srv = serve(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    });
    let r = run(
        &format!("https://127.0.0.1:{}/", srv.port),
        &direct(),
        None,
        2000,
    );
    assert!(
        matches!(r.failure, Some(Failure::Tls { .. })),
        "{:?}",
        r.failure
    );
    assert_eq!(r.failure.as_ref().map(|f| f.curl_code()), Some(35));
}

#[test]
fn proxy_demanding_credentials() {
    let srv = serve(|mut s| {
        let _ = read_head(&mut s);
        let _ = s.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
        );
    });
    // the target name is never resolved locally: the proxy would do it
    let d = via(&format!("http://127.0.0.1:{}", srv.port));
    let r = run("https://api.example.invalid/", &d, None, 2000);
    assert_eq!(r.failure, Some(Failure::ProxyAuthRequired));
    assert_eq!(failed_step(&r), Some(Step::ProxyHandshake));
    let hint = r.failure.as_ref().map(|f| f.hint(&d)).unwrap_or_default();
    assert!(hint.contains("user:password@"), "{hint}");

    let with_creds = via(&format!("http://u:topsecret@127.0.0.1:{}", srv.port));
    let r = run("https://api.example.invalid/", &with_creds, None, 2000);
    assert_eq!(r.failure, Some(Failure::ProxyAuthRequired));
    let text = r.render(&with_creds);
    assert!(!text.contains("topsecret"), "{text}");
    assert!(text.contains("rejected the credentials"), "{text}");
}

#[test]
fn proxy_refusing_the_tunnel() {
    let srv = serve(|mut s| {
        let _ = read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    });
    let d = via(&format!("http://127.0.0.1:{}", srv.port));
    let r = run("https://blocked.example.invalid/", &d, None, 2000);
    assert!(
        matches!(r.failure, Some(Failure::ProxyRefused { .. })),
        "{:?}",
        r.failure
    );
}

#[test]
fn dead_proxy_is_refused_with_a_proxy_hint() {
    let port = closed_port();
    let d = via(&format!("http://127.0.0.1:{port}"));
    let r = run("https://api.example.invalid/", &d, None, 2000);
    assert_eq!(r.failure, Some(Failure::Refused));
    let hint = r.failure.as_ref().map(|f| f.hint(&d)).unwrap_or_default();
    assert!(hint.contains(&format!("proxy 127.0.0.1:{port}")), "{hint}");
}

/// A CONNECT proxy that checks Basic credentials and a SOCKS5 proxy, both
/// tunnelling to the local TLS origin: the probe passes every step.
#[test]
fn full_probe_through_connect_and_socks_proxies() {
    let origin = tls_server("leaf.crt", "leaf.key");
    let origin_port = origin.port;
    let connect = serve(move |mut s| {
        let head = String::from_utf8_lossy(&read_head(&mut s)).into_owned();
        // base64("u:p")
        if !head.contains("Proxy-Authorization: Basic dTpw\r\n")
            || !head.starts_with(&format!("CONNECT localhost:{origin_port} "))
        {
            let _ = s.write_all(b"HTTP/1.1 407 No\r\n\r\n");
            return;
        }
        if let Ok(up) = TcpStream::connect(("127.0.0.1", origin_port)) {
            let _ = s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            splice(s, up);
        }
    });
    let socks = serve(move |mut s| {
        let mut g = [0u8; 3];
        if s.read_exact(&mut g).is_err() || g != [5, 1, 0] {
            return;
        }
        let _ = s.write_all(&[5, 0]);
        let mut req = [0u8; 5];
        if s.read_exact(&mut req).is_err() {
            return;
        }
        // socks5h sends the name, socks5 the locally resolved IPv4 address
        let (len, want): (usize, &[u8]) = match req[3] {
            3 => (usize::from(req[4]) + 2, b"localhost"),
            1 => (3 + 2, &[0, 0, 1]), // 127 was req[4]
            _ => return,
        };
        let mut rest = vec![0u8; len];
        if s.read_exact(&mut rest).is_err() || !rest.starts_with(want) {
            return;
        }
        if let Ok(up) = TcpStream::connect(("127.0.0.1", origin_port)) {
            let _ = s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1]);
            splice(s, up);
        }
    });
    let ca = data("ca.crt");
    let url = format!("https://localhost:{origin_port}/");
    for d in [
        via(&format!("http://u:p@127.0.0.1:{}", connect.port)),
        via(&format!("socks5h://127.0.0.1:{}", socks.port)),
        via(&format!("socks5://127.0.0.1:{}", socks.port)),
    ] {
        let r = run(&url, &d, Some(&ca), 3000);
        assert_eq!(r.failure, None);
        let steps: Vec<Step> = r.steps.iter().map(|s| s.step).collect();
        assert_eq!(
            steps,
            vec![
                Step::Dns,
                Step::Connect,
                Step::ProxyHandshake,
                Step::Tls,
                Step::Http
            ]
        );
        let dns = &r.steps[0].detail;
        match d.proxy().map(|p| p.scheme) {
            Some(pinch::net::ProxyScheme::Socks5) => {
                assert!(
                    dns.contains("localhost -> 127.0.0.1 (socks5 sends the IP)"),
                    "{dns}"
                )
            }
            _ => assert!(dns.contains("the proxy resolves localhost"), "{dns}"),
        }
        assert_eq!(r.http_date.as_deref(), Some(DATE));
    }
}

fn splice(a: TcpStream, b: TcpStream) {
    let _ = a.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = b.set_read_timeout(Some(Duration::from_secs(5)));
    let (mut a2, mut b2) = match (a.try_clone(), b.try_clone()) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return,
    };
    let (mut a1, mut b1) = (a, b);
    let t = thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut b1, &mut a1);
    let _ = a1.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

#[test]
fn unresolvable_name_is_dns() {
    let r = run("http://no-such-host.invalid/", &direct(), None, 5000);
    assert_eq!(r.failure, Some(Failure::Dns));
    assert_eq!(r.failure.as_ref().map(|f| f.curl_code()), Some(6));
    assert_eq!(failed_step(&r), Some(Step::Dns));
    assert_eq!(r.steps.len(), 1);
}
