//! The gateway service: `pinch gateway run`.
//!
//! Threads, all bounded: one accept thread, at most `gateway.maxConnections`
//! connection threads (HTTP and WebSocket), `agents.defaults.maxConcurrent`
//! agent workers, and the reactor — a tokio current-thread runtime that alone
//! owns sessions, runs and the store. Edges talk to the reactor through one
//! bounded channel (`ToReactor`); the reactor answers through each client's
//! bounded `Outbox`.

pub mod auth;
pub mod http;
pub mod origin;
pub mod outbox;
pub mod proactive_http;
pub mod protocol;
pub mod reactor;
pub mod router;
pub mod shutdown;
pub mod storage;
pub mod ws;

use crate::atomic64::AtomicU64;
use crate::config::{self, Loaded};
use crate::home::Home;
use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Messages from the edges (connections, agent workers) to the reactor.
pub enum ToReactor {
    /// A client that receives frames: a WebSocket, or an HTTP chat stream.
    Open {
        conn: u64,
        outbox: outbox::Outbox,
    },
    Closed {
        conn: u64,
    },
    /// A request whose response and events go to the client's outbox.
    Call {
        conn: u64,
        id: String,
        method: String,
        params: Value,
    },
    /// A one-shot request answered on `reply` (plain HTTP endpoints).
    Query {
        method: String,
        params: Value,
        reply: std::sync::mpsc::SyncSender<Result<Value, crate::api_error::ApiError>>,
    },
    /// Progress of an agent run, from a worker.
    Run(crate::agent::RunUpdate),
    /// News from a channel adapter's threads.
    Adapter {
        channel: String,
        event: crate::channel::adapter::AdapterEvent,
    },
}

/// What the edge threads share. Everything mutable here is atomic or locked
/// and small; gateway state proper lives in the reactor.
pub struct Shared {
    pub to_reactor: tokio::sync::mpsc::Sender<ToReactor>,
    pub auth: auth::Auth,
    pub max_body: usize,
    pub max_conns: usize,
    pub run_timeout_s: u64,
    pub ready: AtomicBool,
    pub shutting_down: AtomicBool,
    pub next_conn: AtomicU64,
    /// Connection threads running.
    pub active: AtomicUsize,
    /// Of those, the ones not yet proven: still sending their request head,
    /// or a WebSocket that has not authenticated. They may take all slots
    /// but the reserve (`http::reserve_for`).
    pub unproven: AtomicUsize,
    /// The `Host`/`Origin` rules for browser requests.
    pub origin: origin::Policy,
}

/// Capacity of the channel into the reactor.
const REACTOR_QUEUE: usize = 1024;

pub struct RunOptions {
    pub port: Option<u16>,
    pub bind: Option<String>,
}

/// Shortest gateway token accepted for a bind beyond loopback.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Checks the exposure rule: anything but loopback needs a token of at
/// least `MIN_TOKEN_CHARS` non-blank characters.
pub fn check_exposure(bind: &str, ip: std::net::IpAddr, token: Option<&str>) -> Result<(), String> {
    if ip.is_loopback() {
        return Ok(());
    }
    let strength = token
        .map(|t| t.chars().filter(|c| !c.is_whitespace()).count())
        .unwrap_or(0);
    if strength == 0 {
        return Err(format!(
            "refusing to listen on {ip} (gateway.bind = {bind:?}) without gateway.auth.token: anyone on the network could use your assistant and its API keys.\n  fix: set a long random token, e.g. `pinch config set gateway.auth.token '$PINCH_GATEWAY_TOKEN'` and put PINCH_GATEWAY_TOKEN=<random> in $PINCH_HOME/.env, or keep gateway.bind = \"loopback\""
        ));
    }
    if strength < MIN_TOKEN_CHARS {
        return Err(format!(
            "refusing to listen on {ip} (gateway.bind = {bind:?}): gateway.auth.token has {strength} non-blank characters, fewer than {MIN_TOKEN_CHARS}; anyone on the network could guess it.\n  fix: use a long random token (e.g. `head -c 24 /dev/urandom | base64`), or keep gateway.bind = \"loopback\""
        ));
    }
    Ok(())
}

pub fn run(home: &Home, loaded: Loaded, opts: RunOptions) -> Result<(), String> {
    let mut cfg = loaded.cfg;
    if let Some(b) = opts.bind {
        cfg.gateway.bind = b;
    }
    if let Some(p) = opts.port {
        cfg.gateway.port = p;
    }
    let ip = config::parse_bind(&cfg.gateway.bind).ok_or_else(|| {
        format!(
            "gateway.bind {:?} is not loopback, lan or an IP address",
            cfg.gateway.bind
        )
    })?;
    check_exposure(&cfg.gateway.bind, ip, cfg.gateway.auth.token.as_deref())?;
    crate::channel::registry::check_config(&cfg)?;
    crate::util::tune_malloc();
    crate::sandbox::harden_gateway();
    home.ensure()?;
    let store = crate::store::Store::open(&home.state())?;
    crate::workspace::ensure(&workspace_dir(home, &cfg))?;
    let listener = TcpListener::bind(SocketAddr::new(ip, cfg.gateway.port)).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another gateway already running? try `pinch status`)"
        } else {
            ""
        };
        format!("cannot listen on {ip}:{}: {e}{hint}", cfg.gateway.port)
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let (tx, mut rx) = tokio::sync::mpsc::channel(REACTOR_QUEUE);
    let shared = Arc::new(Shared {
        to_reactor: tx.clone(),
        auth: auth::Auth::new(cfg.gateway.auth.token.clone()),
        max_body: cfg.gateway.max_body_bytes,
        max_conns: cfg.gateway.max_connections,
        run_timeout_s: cfg.agents.defaults.timeout_seconds,
        ready: AtomicBool::new(false),
        shutting_down: AtomicBool::new(false),
        next_conn: AtomicU64::new(1),
        active: AtomicUsize::new(0),
        unproven: AtomicUsize::new(0),
        origin: origin::Policy::new(ip, &cfg.gateway.allowed_origins, &cfg.gateway.allowed_hosts),
    });
    let cfg = Arc::new(cfg);
    let workspace = workspace_dir(home, &cfg);
    let pool = crate::agent::Pool::start(cfg.clone(), workspace, agent_sink(tx.clone()))?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the reactor: {e}"))?;
    let mut accept = None;
    let served = rt.block_on(async {
        // Register signal handlers before announcing readiness, so a
        // supervisor's early SIGTERM is never lost.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| (e.to_string(), None))?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| (e.to_string(), None))?;
        let sh = shared.clone();
        let handle = std::thread::Builder::new()
            .name("accept".into())
            .stack_size(128 * 1024)
            .spawn(move || router::accept_loop(listener, sh))
            .map_err(|e| (format!("cannot start the accept thread: {e}"), None))?;
        accept = Some(shutdown::NamedThread {
            name: "accept".into(),
            handle,
        });
        let mut reactor = reactor::Reactor::new(cfg.clone(), store, pool);
        if let Err(e) = reactor.start_channels(tx.clone()) {
            return Err((e, Some(reactor)));
        }
        shared.ready.store(true, Ordering::SeqCst);
        // The CLI finds this home's gateway here; removed on a clean exit.
        let _runtime_file = crate::runtime_file::publish(home, addr)
            .map_err(|e| log::warn!("{e}; the CLI will not find this gateway without --url"));
        log::info!("listening on {addr}");
        // Start-up garbage (config text, parse trees) is freed by now; give
        // its pages back. (Start-up code pages go a few seconds later, when
        // the reactor sees a quiet moment.)
        crate::util::release_free_memory();
        crate::service::notify_ready();
        // After readiness: its first probe is not start-up work. The reactor,
        // which answers `status.localModels`, starts serving only below.
        if let Err(e) = crate::local_llm::start_monitor(&cfg) {
            log::warn!("{e}; status.localModels stays empty");
        }
        let stop = async {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        };
        let why = reactor.run(&mut rx, stop).await;
        log::info!("shutting down ({why})");
        Ok(reactor)
    });
    drop(rt);
    drop(tx);
    let (result, reactor) = match served {
        Ok(reactor) => (Ok(()), Some(reactor)),
        Err((e, reactor)) => (Err(e), reactor),
    };
    stop_and_join(&shared, addr, accept, reactor, rx);
    result
}

/// The shutdown order (see `shutdown.rs`): STOPPING to systemd, no new
/// connections, runs stopped (clients' runs checkpointed) and adapters
/// told to stop, then every thread joined within `shutdown::GRACE`, then
/// the store closed.
fn stop_and_join(
    shared: &Shared,
    addr: SocketAddr,
    accept: Option<shutdown::NamedThread>,
    reactor: Option<reactor::Reactor>,
    mut rx: tokio::sync::mpsc::Receiver<ToReactor>,
) {
    crate::service::notify_stopping();
    let start = std::time::Instant::now();
    let deadline = start + shutdown::GRACE;
    shared.shutting_down.store(true, Ordering::SeqCst);
    shared.ready.store(false, Ordering::SeqCst);
    // Wake the accept thread so it sees the flag and exits.
    let _ = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(100));
    let mut threads: Vec<shutdown::NamedThread> = accept.into_iter().collect();
    let mut reactor = reactor;
    let adapters = crate::channel::adapter::take_threads();
    if let Some(reactor) = &mut reactor {
        threads.extend(reactor.begin_shutdown());
        reactor.checkpoint_client_runs(&mut rx, start + reactor::CHECKPOINT_WAIT);
        reactor.settle_adapters(&mut rx, &adapters, deadline);
    }
    // Workers' and adapters' reports fail from now on.
    drop(rx);
    if let Some(handle) = crate::local_llm::stop_monitor() {
        threads.push(shutdown::NamedThread {
            name: "local-llm".into(),
            handle,
        });
    }
    threads.extend(adapters);
    let names: Vec<String> = threads.iter().map(|t| t.name.clone()).collect();
    let mut stuck = shutdown::join_until(threads, deadline);
    for name in names.iter().filter(|n| !stuck.contains(n)) {
        log::info!("stopped thread {name}");
    }
    if let Some(reactor) = reactor {
        let workers = reactor.wait_workers(deadline);
        if workers > 0 {
            stuck.push(format!("{workers} agent worker(s)"));
        } else {
            log::info!("stopped agent workers");
        }
        // Closes the store: every commit is already durable.
        drop(reactor);
    }
    let connections = shutdown::wait_zero(deadline, || shared.active.load(Ordering::SeqCst));
    if connections > 0 {
        stuck.push(format!("{connections} connection thread(s)"));
    } else {
        log::info!("stopped connection threads");
    }
    shutdown::report(&stuck);
}

/// The agent's sink: its run updates and `cron` tool calls, into the reactor.
fn agent_sink(tx: tokio::sync::mpsc::Sender<ToReactor>) -> crate::agent::Sink {
    Arc::new(move |event| {
        let msg = match event {
            crate::agent::AgentEvent::Run(update) => ToReactor::Run(update),
            crate::agent::AgentEvent::Query {
                method,
                params,
                reply,
            } => ToReactor::Query {
                method,
                params,
                reply,
            },
        };
        tx.blocking_send(msg).is_ok()
    })
}

pub fn workspace_dir(home: &Home, cfg: &config::Config) -> std::path::PathBuf {
    cfg.agents
        .defaults
        .workspace
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| home.workspace())
}
