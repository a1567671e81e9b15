//! End-to-end routing: ureq agents built by `pinch::net::agent_for` against
//! a local HTTP origin, a local HTTP CONNECT proxy and a local SOCKS5 proxy,
//! all on 127.0.0.1 and written here. The proxies only ever connect to the
//! local origin.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pinch::net::{agent_for, resolve, Decision, EnvProxy, NetworkConfig, Route, Timeouts};

type Log = Arc<Mutex<Vec<String>>>;

/// A listener whose accept loop runs on a thread until dropped (or 30 s).
struct Server {
    port: u16,
    log: Log,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(handler: impl Fn(TcpStream, Log) + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (log2, stop2) = (log.clone(), stop.clone());
    let handler = Arc::new(handler);
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let (h, l) = (handler.clone(), log2.clone());
                    thread::spawn(move || h(s, l));
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { port, log, stop }
}

fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 16384 {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn origin() -> Server {
    serve(|mut s, log| {
        let head = read_head(&mut s);
        let line = head.lines().next().unwrap_or_default().to_string();
        log.lock().expect("log").push(line);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    })
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a_read, mut b_write) = match (a.try_clone(), b.try_clone()) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return,
    };
    let (mut b_read, mut a_write) = (b, a);
    let t = thread::spawn(move || {
        let _ = io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut b_read, &mut a_write);
    let _ = a_write.shutdown(Shutdown::Write);
    let _ = t.join();
}

/// Only local targets: the fixture proxies never leave this machine.
fn local_upstream(host: &str, port: u16) -> Option<TcpStream> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let local = h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if !local {
        return None;
    }
    TcpStream::connect(("127.0.0.1", port)).ok()
}

/// HTTP CONNECT proxy; logs CONNECT targets; with `auth` set, demands
/// `Proxy-Authorization: Basic <auth>` and answers 407 otherwise.
fn connect_proxy(auth: Option<&'static str>) -> Server {
    serve(move |mut s, log| {
        let head = read_head(&mut s);
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default();
        let target = first
            .strip_prefix("CONNECT ")
            .and_then(|r| r.split(' ').next())
            .unwrap_or_default()
            .to_string();
        log.lock().expect("log").push(target.clone());
        if let Some(expected) = auth {
            let got = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                if k.eq_ignore_ascii_case("proxy-authorization") {
                    Some(v.trim().to_string())
                } else {
                    None
                }
            });
            if got.as_deref() != Some(&format!("Basic {expected}")) {
                let _ = s.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n");
                return;
            }
        }
        let (host, port) = match target.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse::<u16>().unwrap_or(0)),
            None => return,
        };
        match local_upstream(&host, port) {
            Some(up) => {
                let _ = s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let _ = s.set_read_timeout(None);
                pipe(s, up);
            }
            None => {
                let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            }
        }
    })
}

/// SOCKS5 proxy; logs "name host:port" or "ip addr:port" for each CONNECT.
fn socks_proxy(auth: Option<(&'static str, &'static str)>) -> Server {
    serve(move |mut s, log| {
        let mut hdr = [0u8; 2];
        if s.read_exact(&mut hdr).is_err() || hdr[0] != 5 {
            return;
        }
        let mut methods = vec![0u8; usize::from(hdr[1])];
        if s.read_exact(&mut methods).is_err() {
            return;
        }
        match auth {
            None => {
                let _ = s.write_all(&[5, 0]);
            }
            Some((user, pass)) => {
                if !methods.contains(&2) {
                    let _ = s.write_all(&[5, 0xff]);
                    return;
                }
                let _ = s.write_all(&[5, 2]);
                let mut v = [0u8; 2];
                if s.read_exact(&mut v).is_err() {
                    return;
                }
                let mut u = vec![0u8; usize::from(v[1])];
                let mut plen = [0u8; 1];
                if s.read_exact(&mut u).is_err() || s.read_exact(&mut plen).is_err() {
                    return;
                }
                let mut p = vec![0u8; usize::from(plen[0])];
                if s.read_exact(&mut p).is_err() {
                    return;
                }
                let ok = u == user.as_bytes() && p == pass.as_bytes();
                if !ok {
                    // log before answering: the client returns as soon as it reads
                    log.lock().expect("log").push("auth rejected".into());
                }
                let _ = s.write_all(&[1, if ok { 0 } else { 1 }]);
                if !ok {
                    return;
                }
            }
        }
        let mut req = [0u8; 4];
        if s.read_exact(&mut req).is_err() {
            return;
        }
        let (entry, host) = match req[3] {
            1 => {
                let mut a = [0u8; 4];
                let _ = s.read_exact(&mut a);
                let ip = std::net::Ipv4Addr::from(a);
                ("ip", ip.to_string())
            }
            4 => {
                let mut a = [0u8; 16];
                let _ = s.read_exact(&mut a);
                let ip = std::net::Ipv6Addr::from(a);
                ("ip", format!("[{ip}]"))
            }
            3 => {
                let mut l = [0u8; 1];
                let _ = s.read_exact(&mut l);
                let mut n = vec![0u8; usize::from(l[0])];
                let _ = s.read_exact(&mut n);
                ("name", String::from_utf8_lossy(&n).into_owned())
            }
            _ => return,
        };
        let mut p = [0u8; 2];
        if s.read_exact(&mut p).is_err() {
            return;
        }
        let port = u16::from_be_bytes(p);
        log.lock()
            .expect("log")
            .push(format!("{entry} {host}:{port}"));
        match local_upstream(&host, port) {
            Some(up) => {
                let _ = s.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
                let _ = s.set_read_timeout(None);
                pipe(s, up);
            }
            None => {
                let _ = s.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
            }
        }
    })
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn net(proxy: Option<&str>, no_proxy: &[&str]) -> NetworkConfig {
    NetworkConfig {
        proxy: proxy.map(|s| s.to_string()),
        no_proxy: if no_proxy.is_empty() {
            None
        } else {
            Some(no_proxy.iter().map(|s| s.to_string()).collect())
        },
        ca_file: None,
    }
}

fn route(layers: &[(&str, &NetworkConfig)]) -> Route {
    resolve(layers, &EnvProxy::default()).expect("resolve")
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        recv_response: Duration::from_secs(5),
        per_read: Some(Duration::from_secs(5)),
    }
}

fn get(route: &Route, url: &str) -> Result<(u16, String), String> {
    let agent = agent_for(route, url, &timeouts())?;
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

fn logged(s: &Server) -> Vec<String> {
    s.log.lock().expect("log").clone()
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/net")
        .join(name)
}

#[test]
fn provider_a_goes_through_the_proxy_provider_b_direct_via_no_proxy() {
    let web = origin();
    let proxy = connect_proxy(None);
    let global = net(None, &["127.0.0.1"]);
    let provider_a = net(Some(&format!("http://127.0.0.1:{}", proxy.port)), &[]);
    let provider_b = net(None, &[]);
    let layers_a = [
        ("network", &global),
        ("models.providers.a.network", &provider_a),
    ];
    let route_a = route(&layers_a);
    let route_b = route(&[
        ("network", &global),
        ("models.providers.b.network", &provider_b),
    ]);

    let url_a = format!("http://localhost:{}/a", web.port);
    let url_b = format!("http://127.0.0.1:{}/b", web.port);
    match route_a.decide(&url_a).expect("decide a") {
        Decision::Proxy { why, .. } => assert_eq!(
            why,
            format!(
                "via proxy 127.0.0.1:{} (set at models.providers.a.network)",
                proxy.port
            )
        ),
        d => panic!("A should be proxied: {d:?}"),
    }
    assert_eq!(
        route_b.decide(&url_b).expect("decide b").why(),
        "direct: matched noProxy 127.0.0.1"
    );

    assert_eq!(get(&route_a, &url_a), Ok((200, "ok".to_string())));
    assert_eq!(get(&route_b, &url_b), Ok((200, "ok".to_string())));
    // A's noProxy (inherited from network) also says 127.0.0.1 is direct
    let url_a_direct = format!("http://127.0.0.1:{}/a2", web.port);
    assert_eq!(get(&route_a, &url_a_direct), Ok((200, "ok".to_string())));

    // the proxy saw A's CONNECT only (ureq tunnels http:// targets too)
    assert_eq!(logged(&proxy), vec![format!("localhost:{}", web.port)]);
    let reqs = logged(&web);
    for path in ["/a ", "/b ", "/a2 "] {
        assert!(
            reqs.iter().any(|r| r.contains(path)),
            "{path} missing in {reqs:?}"
        );
    }
}

#[test]
fn proxy_credentials_are_sent_and_a_407_is_an_error() {
    let web = origin();
    // base64("alice:s3cr3t")
    let proxy = connect_proxy(Some("YWxpY2U6czNjcjN0"));
    let url = format!("http://localhost:{}/auth", web.port);

    let with = route(&[(
        "network",
        &net(
            Some(&format!("http://alice:s3cr3t@127.0.0.1:{}", proxy.port)),
            &[],
        ),
    )]);
    assert_eq!(get(&with, &url), Ok((200, "ok".to_string())));

    let wrong = route(&[(
        "network",
        &net(
            Some(&format!("http://alice:wrong-pw@127.0.0.1:{}", proxy.port)),
            &[],
        ),
    )]);
    match get(&wrong, &url) {
        Err(e) => assert!(!e.contains("wrong-pw"), "password leaked: {e}"),
        Ok(r) => panic!("a 407 from the proxy must be an error, got {r:?}"),
    }
    let without = route(&[(
        "network",
        &net(Some(&format!("http://127.0.0.1:{}", proxy.port)), &[]),
    )]);
    assert!(get(&without, &url).is_err());
    assert_eq!(logged(&proxy).len(), 3);
    assert_eq!(
        logged(&web).len(),
        1,
        "only the authenticated request reaches the origin"
    );
}

#[test]
fn socks5_sends_an_ip_and_socks5h_sends_the_name() {
    let web = origin();
    let socks = socks_proxy(None);
    let url = format!("http://localhost:{}/s", web.port);

    let s5 = route(&[(
        "network",
        &net(Some(&format!("socks5://127.0.0.1:{}", socks.port)), &[]),
    )]);
    assert_eq!(get(&s5, &url), Ok((200, "ok".to_string())));
    let s5h = route(&[(
        "network",
        &net(Some(&format!("socks5h://127.0.0.1:{}", socks.port)), &[]),
    )]);
    assert_eq!(get(&s5h, &url), Ok((200, "ok".to_string())));

    let log = logged(&socks);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].starts_with("ip "),
        "socks5 must send an address: {log:?}"
    );
    assert!(log[0].ends_with(&format!(":{}", web.port)));
    assert_eq!(log[1], format!("name localhost:{}", web.port));
}

#[test]
fn socks5h_with_username_and_password() {
    let web = origin();
    let socks = socks_proxy(Some(("bob", "pa:ss@word")));
    let url = format!("http://localhost:{}/sa", web.port);
    let good = route(&[(
        "network",
        &net(
            Some(&format!(
                "socks5h://bob:pa%3Ass%40word@127.0.0.1:{}",
                socks.port
            )),
            &[],
        ),
    )]);
    assert_eq!(get(&good, &url), Ok((200, "ok".to_string())));
    let bad = route(&[(
        "network",
        &net(
            Some(&format!("socks5h://bob:nope@127.0.0.1:{}", socks.port)),
            &[],
        ),
    )]);
    assert!(get(&bad, &url).is_err());
    assert_eq!(
        logged(&socks),
        vec![
            format!("name localhost:{}", web.port),
            "auth rejected".to_string()
        ]
    );
}

#[test]
fn a_refusing_proxy_is_an_error_not_a_silent_direct_connection() {
    let web = origin();
    let dead = closed_port();
    for scheme in ["http", "socks5", "socks5h"] {
        let r = route(&[(
            "network",
            &net(Some(&format!("{scheme}://127.0.0.1:{dead}")), &[]),
        )]);
        let url = format!("http://127.0.0.1:{}/never", web.port);
        assert!(get(&r, &url).is_err(), "{scheme} proxy down must fail");
    }
    thread::sleep(Duration::from_millis(50));
    assert!(
        logged(&web).is_empty(),
        "the origin must not be reached directly"
    );
}

#[test]
fn env_route_uses_the_injected_environment() {
    let web = origin();
    let proxy = connect_proxy(None);
    let env = EnvProxy {
        http: Some(format!("127.0.0.1:{}", proxy.port)),
        https: None,
        all: None,
        no_proxy: Some("example.invalid".into()),
    };
    let r = resolve(&[("network", &NetworkConfig::default())], &env).expect("resolve");
    let url = format!("http://localhost:{}/env", web.port);
    assert!(r.decide(&url).expect("decide").why().contains("http_proxy"));
    assert_eq!(get(&r, &url), Ok((200, "ok".to_string())));
    assert_eq!(logged(&proxy), vec![format!("localhost:{}", web.port)]);
    // "direct" overrides the environment
    let d = resolve(&[("network", &net(Some("direct"), &[]))], &env).expect("resolve");
    assert_eq!(
        get(&d, &format!("http://localhost:{}/d", web.port)),
        Ok((200, "ok".to_string()))
    );
    assert_eq!(logged(&proxy).len(), 1);
}

/// HTTPS origin with a certificate from the test CA, reached through the
/// CONNECT proxy: works with `caFile`, fails without.
#[test]
fn ca_file_is_trusted_in_addition_to_the_mozilla_roots() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(data("leaf.crt"))
        .expect("leaf.crt")
        .collect::<Result<_, _>>()
        .expect("leaf pem");
    let key = PrivateKeyDer::from_pem_file(data("leaf.key")).expect("leaf.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server cert");
    let config = Arc::new(config);
    let tls_origin = serve(move |s, log| {
        let conn = match rustls::ServerConnection::new(config.clone()) {
            Ok(c) => c,
            Err(_) => return,
        };
        let mut tls = rustls::StreamOwned::new(conn, s);
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") && buf.len() < 16384 {
            match tls.read(&mut b) {
                Ok(1) => buf.push(b[0]),
                _ => return,
            }
        }
        log.lock().expect("log").push("tls request".into());
        let _ =
            tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntls");
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    let proxy = connect_proxy(None);
    let url = format!("https://localhost:{}/", tls_origin.port);
    let mut with_ca = net(Some(&format!("http://127.0.0.1:{}", proxy.port)), &[]);
    with_ca.ca_file = Some(data("ca.crt").to_string_lossy().into_owned());
    let r = route(&[("network", &with_ca)]);
    assert_eq!(get(&r, &url), Ok((200, "tls".to_string())));

    let without = route(&[(
        "network",
        &net(Some(&format!("http://127.0.0.1:{}", proxy.port)), &[]),
    )]);
    assert!(
        get(&without, &url).is_err(),
        "the test CA is not a Mozilla root"
    );
    assert_eq!(logged(&tls_origin).len(), 1);
}
