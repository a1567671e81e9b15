//! The probe's pure parts, byte by byte: error classification, request
//! bytes (CONNECT), response heads, and hints built from a report.

use super::response::find_head_end;
use super::*;
use io::ErrorKind as K;

fn proxy(text: &str) -> ProxyUrl {
    match ProxyUrl::parse(text) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn io_classification() {
    assert_eq!(classify_io(Step::Dns, K::Other, "x"), Failure::Dns);
    assert_eq!(classify_io(Step::Dns, K::TimedOut, "x"), Failure::Timeout);
    assert_eq!(
        classify_io(Step::Connect, K::ConnectionRefused, "x"),
        Failure::Refused
    );
    assert_eq!(
        classify_io(Step::Connect, K::TimedOut, "x"),
        Failure::Timeout
    );
    assert_eq!(
        classify_io(Step::Connect, K::ConnectionReset, "x"),
        Failure::Refused
    );
    for step in [Step::ProxyHandshake, Step::Tls, Step::Http] {
        assert_eq!(classify_io(step, K::WouldBlock, "x"), Failure::Timeout);
        assert_eq!(classify_io(step, K::TimedOut, "x"), Failure::Timeout);
        for k in [
            K::ConnectionReset,
            K::ConnectionAborted,
            K::UnexpectedEof,
            K::BrokenPipe,
        ] {
            assert_eq!(
                classify_io(step, k, "x"),
                Failure::ResetAfterConnect,
                "{step} {k:?}"
            );
        }
    }
    match classify_io(Step::Connect, K::PermissionDenied, "denied") {
        Failure::Other(m) => assert!(m.contains("denied")),
        f => panic!("{f:?}"),
    }
}

#[test]
fn tls_classification() {
    let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    assert!(matches!(
        classify_tls(&untrusted),
        Failure::CertUntrusted { .. }
    ));
    assert_eq!(classify_tls(&untrusted).curl_code(), 60);
    let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
    assert_eq!(classify_tls(&expired).curl_code(), 60);
    let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
    assert!(matches!(classify_tls(&alert), Failure::Tls { .. }));
    assert_eq!(classify_tls(&alert).curl_code(), 35);
}

#[test]
fn curl_codes() {
    assert_eq!(Failure::Dns.curl_code(), 6);
    assert_eq!(Failure::Refused.curl_code(), 7);
    assert_eq!(Failure::Timeout.curl_code(), 28);
    assert_eq!(Failure::ResetAfterConnect.curl_code(), 56);
    assert_eq!(Failure::ProxyAuthRequired.curl_code(), 56);
    assert_eq!(Failure::HttpStatus(503).curl_code(), 22);
}

#[test]
fn connect_status_classification() {
    assert_eq!(classify_connect_status(200, "h:443"), Ok(()));
    assert_eq!(
        classify_connect_status(407, "h:443"),
        Err(Failure::ProxyAuthRequired)
    );
    match classify_connect_status(403, "h:443") {
        Err(Failure::ProxyRefused { detail }) => assert!(detail.contains("403")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn response_head_parsing() {
    let head =
        b"HTTP/1.1 204 No Content\r\nServer: x\r\ndate: Tue, 01 Jul 2025 10:00:00 GMT\r\n\r\n";
    assert_eq!(
        parse_response_head(head),
        Ok((204, Some("Tue, 01 Jul 2025 10:00:00 GMT".to_string())))
    );
    assert_eq!(
        parse_response_head(b"HTTP/1.0 200\r\n\r\n"),
        Ok((200, None))
    );
    assert!(parse_response_head(b"SSH-2.0-OpenSSH\r\n").is_err());
    assert!(parse_response_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
    assert_eq!(find_head_end(b"a\r\n\r\nbody"), Some(5));
}

#[test]
fn base64_vectors() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foob"), "Zm9vYg==");
    assert_eq!(base64(b"fooba"), "Zm9vYmE=");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(b"user:p\xffss"), "dXNlcjpw/3Nz");
}

#[test]
fn connect_request_bytes() {
    let plain = connect_request("api.example.com:443", &proxy("http://10.0.0.1:3128"));
    assert_eq!(
        plain,
        "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\nUser-Agent: pinch-doctor\r\n\r\n"
    );
    let auth = connect_request("h:443", &proxy("http://Aladdin:open%20sesame@p:1"));
    assert!(auth.contains("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
}

#[test]
fn hints_depend_on_route_and_hide_secrets() {
    let direct = Decision::Direct {
        why: "direct".into(),
    };
    let p = proxy("http://alice:hunter2@10.0.0.1:3128");
    let via = Decision::Proxy {
        proxy: p.clone(),
        why: "via proxy".into(),
    };
    let all = [
        Failure::Dns,
        Failure::Refused,
        Failure::Timeout,
        Failure::ResetAfterConnect,
        Failure::Tls { detail: "x".into() },
        Failure::CertUntrusted { detail: "x".into() },
        Failure::ProxyAuthRequired,
        Failure::ProxyRefused { detail: "x".into() },
        Failure::HttpStatus(502),
        Failure::Other("x".into()),
    ];
    for f in &all {
        for d in [&direct, &via] {
            let h = f.hint(d);
            assert!(!h.is_empty());
            assert!(!h.contains('\n'));
            assert!(!h.contains("hunter2"), "{h}");
        }
    }
    assert!(Failure::Refused.hint(&via).contains("10.0.0.1:3128"));
    assert!(!Failure::Refused.hint(&direct).contains("10.0.0.1"));
    assert!(Failure::CertUntrusted { detail: "x".into() }
        .hint(&direct)
        .contains("caFile"));
    assert!(Failure::ProxyAuthRequired.hint(&via).contains("rejected"));
    let no_creds = Decision::Proxy {
        proxy: proxy("http://10.0.0.1:3128"),
        why: "via".into(),
    };
    assert!(Failure::ProxyAuthRequired
        .hint(&no_creds)
        .contains("user:password@"));
    let socks = Decision::Proxy {
        proxy: proxy("socks5://10.0.0.1:1080"),
        why: "via".into(),
    };
    assert!(Failure::Dns.hint(&socks).contains("socks5h"));
}

#[test]
fn bad_url_is_reported_without_io() {
    let d = Decision::Direct {
        why: "direct".into(),
    };
    let r = probe("gopher://x", &d, None, Duration::from_millis(10));
    assert!(r.steps.is_empty());
    assert!(matches!(r.failure, Some(Failure::Other(_))));
    assert!(r.render(&d).contains("hint:"));
}

#[test]
fn the_connect_step_races_and_names_the_family_that_won() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // ::1 on the same port: closed (or no IPv6 here); either way it fails.
    let addrs = [
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
        SocketAddr::from(([127, 0, 0, 1], port)),
    ];
    let stream = match connect_any(&addrs, Duration::from_secs(5)) {
        Ok(s) => s,
        Err((f, d)) => panic!("{f}: {d}"),
    };
    let peer = stream.peer_addr().expect("peer");
    assert_eq!(peer, addrs[1]);
    assert_eq!(
        eyeballs::describe_winner(peer, &addrs),
        "IPv4 won, IPv6 and IPv4 raced"
    );
    drop(listener);
    match connect_any(&addrs, Duration::from_secs(2)) {
        Err((Failure::Refused, detail)) => {
            assert!(
                detail.starts_with(&format!("[::1]:{port}, 127.0.0.1:{port}: ")),
                "{detail}"
            )
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// A SOCKS5 proxy on loopback for `answers.len()` connections, one thread:
/// each answers the greeting, reads a CONNECT and replies with the next
/// code (0: success, then the stream is dropped).
fn scripted_socks(answers: Vec<u8>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for code in answers {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut greeting = [0u8; 3];
            let mut request = [0u8; 4];
            if s.read_exact(&mut greeting).is_err()
                || s.write_all(&[5, 0]).is_err()
                || s.read_exact(&mut request).is_err()
            {
                return;
            }
            let mut rest = vec![0u8; if request[3] == 4 { 18 } else { 6 }];
            let _ = s.read_exact(&mut rest);
            let _ = s.write_all(&[5, code, 0, 1, 127, 0, 0, 1, 0, 1]);
        }
    });
    addr
}

#[test]
fn the_socks5_step_races_the_targets_addresses() {
    let proxy_addr = scripted_socks(vec![4, 0]);
    let p = proxy(&format!("socks5://{proxy_addr}"));
    let target = match parse_request_url("http://origin.test:8080/") {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let targets = [
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 8080)),
        SocketAddr::from(([127, 0, 0, 1], 8080)),
    ];
    let tcp = TcpStream::connect(proxy_addr).expect("connect");
    match socks5::connect(tcp, &p, &target, &targets, Duration::from_secs(5)) {
        Ok((_, detail)) => assert_eq!(
            detail,
            "SOCKS5 CONNECT 127.0.0.1:8080 succeeded (IPv4 won, IPv6 and IPv4 raced)"
        ),
        Err((f, d)) => panic!("{f}: {d}"),
    }
    // One address refused by the proxy: the failure is the proxy's answer.
    let proxy_addr = scripted_socks(vec![2]);
    let p = proxy(&format!("socks5://{proxy_addr}"));
    let tcp = TcpStream::connect(proxy_addr).expect("connect");
    match socks5::connect(tcp, &p, &target, &targets[1..], Duration::from_secs(5)) {
        Err((Failure::ProxyRefused { detail }, _)) => {
            assert!(detail.contains("not allowed by ruleset"), "{detail}")
        }
        other => panic!("{:?}", other.map(|(_, d)| d)),
    }
}
