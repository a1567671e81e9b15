//! SOCKS5 routes race addresses (Happy Eyeballs), on loopback only: the
//! proxy's name resolves to a silent address first, and for `socks5://`
//! the target's name resolves to an address the proxy cannot reach first.
//! Tried one after another, the first address would use up the whole
//! connect budget and the call would fail; raced, it succeeds. Names are
//! resolved by a resolver given to the ureq agent, so nothing leaves
//! 127.0.0.1. The same against a real SOCKS5 server (Debian's microsocks,
//! which `.ci/run` installs; skipped, saying so, where it is absent). Then
//! Slack (Web API and Socket Mode) and Discord (REST and Gateway) end to end
//! through SOCKS5 routes.

mod common;
#[path = "common/discord_fake.rs"]
mod discord_fake;

use common::microsocks::Microsocks;
use common::slack_fake::{FakeSlack, APP_TOKEN, BOT_TOKEN};
use common::socks_fake::FakeSocks;
use common::*;
use discord_fake::{FakeDiscord, TOKEN};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use pinch::net::{agent_config, resolve, EnvProxy, NetworkConfig, Timeouts};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Fixed answers for names; IP literals resolve to themselves.
#[derive(Debug)]
struct Names(Vec<(String, Vec<SocketAddr>)>);

impl Resolver for Names {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mut out = self.empty();
        if let Ok(ip) = bare.parse::<IpAddr>() {
            out.push(SocketAddr::new(ip, uri.port_u16().unwrap_or(80)));
            return Ok(out);
        }
        let (_, list) = self
            .0
            .iter()
            .find(|(name, _)| name == bare)
            .ok_or(ureq::Error::HostNotFound)?;
        for address in list {
            out.push(*address);
        }
        Ok(out)
    }
}

/// A loopback listener whose accept queue is full: the kernel drops
/// further SYNs, so a connect to it hangs like one to a blackholed address.
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

/// An HTTP origin on 127.0.0.1 answering `200 ok` to every request.
fn origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    addr
}

/// GET `url` along `proxy` with `names`, within a 2 s connect budget.
fn get(proxy: &str, url: &str, names: Names) -> Result<String, String> {
    let network = NetworkConfig {
        proxy: Some(proxy.to_string()),
        no_proxy: None,
        ca_file: None,
    };
    let route = resolve(&[("network", &network)], &EnvProxy::default())?;
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        recv_response: Duration::from_secs(5),
        per_read: Some(Duration::from_secs(5)),
    };
    let (config, _) = agent_config(&route, url, &timeouts, 0)?;
    let agent = ureq::Agent::with_parts(config, pinch::net::ureq_connector::connector(), names);
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())
}

#[test]
fn the_proxy_is_reached_past_a_silent_first_address() {
    let Some((_silent, _held, silent)) = silent_listener() else {
        println!("SKIPPED: the loopback accept queue could not be filled on this kernel");
        return;
    };
    let web = origin();
    let socks = FakeSocks::start();
    for scheme in ["socks5h", "socks5"] {
        let names = Names(vec![("proxy.test".into(), vec![silent, socks.addr])]);
        let body = get(
            &format!("{scheme}://proxy.test:{}", socks.addr.port()),
            &format!("http://127.0.0.1:{}/", web.port()),
            names,
        );
        assert_eq!(body.as_deref(), Ok("ok"), "{scheme}");
    }
    let port = web.port();
    assert_eq!(
        socks.log(),
        [
            format!("ip 127.0.0.1:{port}"),
            format!("ip 127.0.0.1:{port}")
        ]
    );
}

#[test]
fn socks5_races_the_targets_addresses_through_the_proxy() {
    let web = origin();
    let socks = FakeSocks::start();
    let port = web.port();
    let loopback = SocketAddr::from(([127, 0, 0, 1], port));
    // The proxy holds a CONNECT to the documentation address silent (its
    // IPv6 route is a black hole), and refuses one to ::1 (nothing listens
    // there): either way the IPv4 address gets through in the budget.
    let unroutable: SocketAddr = format!("[2001:db8::1]:{port}").parse().expect("address");
    let closed: SocketAddr = format!("[::1]:{port}").parse().expect("address");
    for first in [unroutable, closed] {
        let names = Names(vec![("origin.test".into(), vec![first, loopback])]);
        let body = get(
            &format!("socks5://127.0.0.1:{}", socks.addr.port()),
            &format!("http://origin.test:{port}/"),
            names,
        );
        assert_eq!(body.as_deref(), Ok("ok"), "first {first}");
    }
    assert_eq!(
        socks.log(),
        [
            format!("ip {unroutable}"),
            format!("ip {loopback}"),
            format!("ip {closed}"),
            format!("ip {loopback}"),
        ]
    );
    // socks5h leaves the name to the proxy: one CONNECT, by name.
    let body = get(
        &format!("socks5h://127.0.0.1:{}", socks.addr.port()),
        &format!("http://origin.test:{port}/"),
        Names(Vec::new()),
    );
    assert_eq!(body.as_deref(), Ok("ok"));
    assert_eq!(
        socks.log().last(),
        Some(&format!("name origin.test:{port}"))
    );
}

#[test]
fn a_real_socks5_server_is_raced_to_and_through() {
    let Some(proxy) = Microsocks::start("pinch", "s3cret") else {
        return;
    };
    let Some((_silent, _held, silent)) = silent_listener() else {
        println!("SKIPPED: the loopback accept queue could not be filled on this kernel");
        return;
    };
    let web = origin();
    let port = web.port();
    let names = || {
        Names(vec![
            (
                "proxy.test".into(),
                vec![silent, SocketAddr::from(([127, 0, 0, 1], proxy.port))],
            ),
            // ::1 on the origin's port is closed (or absent): the server
            // answers the CONNECT with an error and the IPv4 address follows.
            (
                "origin.test".into(),
                vec![
                    format!("[::1]:{port}").parse().expect("address"),
                    SocketAddr::from(([127, 0, 0, 1], port)),
                ],
            ),
        ])
    };
    let good = format!("pinch:s3cret@proxy.test:{}", proxy.port);
    let cases = [
        (
            format!("socks5://{good}"),
            format!("http://origin.test:{port}/"),
        ),
        (
            format!("socks5h://{good}"),
            format!("http://localhost:{port}/"),
        ),
    ];
    for (route, url) in cases {
        assert_eq!(get(&route, &url, names()).as_deref(), Ok("ok"), "{route}");
    }
    let refused = get(
        &format!("socks5h://pinch:wrong@proxy.test:{}", proxy.port),
        &format!("http://localhost:{port}/"),
        names(),
    );
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("rejected the user name/password")),
        "a wrong password must fail: {refused:?}"
    );
}

#[test]
fn slack_web_api_and_socket_mode_go_through_a_socks5_route() {
    let home = TempHome::new("slack-socks");
    let (llm, slack, socks) = (FakeLlm::openai(), FakeSlack::start(), FakeSocks::start());
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"slack": {{"appToken": "{APP_TOKEN}", "botToken": "{BOT_TOKEN}", "apiRoot": "{}", "network": {{"proxy": "socks5h://127.0.0.1:{}"}}, "dmPolicy": "allowlist", "allowFrom": ["U0ANN"]}}}}"#,
            slack.api_root(),
            socks.addr.port()
        ),
    ));
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "hello through socks");
    slack.wait_ack(&env, 10);
    let posted = slack.wait_posted(1, 15);
    assert_eq!(posted[0].text, "Hello from fake: hello through socks");
    let log = socks.log();
    for (what, address) in [("Web API", slack.api_addr), ("Socket Mode", slack.ws_addr)] {
        assert!(
            log.contains(&format!("ip {address}")),
            "{what} must go through the proxy: {log:?}"
        );
    }
}

#[test]
fn discord_rest_and_gateway_go_through_a_socks5_route() {
    let home = TempHome::new("discord-socks");
    let (llm, discord, socks) = (FakeLlm::openai(), FakeDiscord::start(), FakeSocks::start());
    let user = "2200000000000000002";
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"discord": {{"token": "{TOKEN}", "apiRoot": "{}", "network": {{"proxy": "socks5://127.0.0.1:{}"}}, "dmPolicy": "allowlist", "allowFrom": ["{user}"]}}}}"#,
            discord.api_root(),
            socks.addr.port()
        ),
    ));
    let gw = Gateway::start(&home, &[]);
    assert!(
        discord.wait(15, |s| s.identifies.len() == 1),
        "identify through the proxy; log:\n{}",
        gw.log()
    );
    discord.dm("1300000000000000200", user, "hello through socks");
    let posted = discord.wait_posted(1, 20);
    assert_eq!(
        posted[0].1["content"],
        "Hello from fake: hello through socks"
    );
    let log = socks.log();
    for (what, address) in [
        ("REST", discord.rest_addr),
        ("Gateway", discord.gateway_addr),
    ] {
        assert!(
            log.contains(&format!("ip {address}")),
            "{what} must go through the proxy: {log:?}"
        );
    }
}
