//! The bundled skills in `skills/` run the way the agent runs them: through
//! the tool registry (cleared environment, cwd = the skill folder, HOME =
//! the workspace), against fake feeds, APIs and services on 127.0.0.1 and
//! temporary git repositories, checking what the scripts print. Also the
//! `web_search` tool against a fake Tavily and a fake SearXNG.

mod common;

use common::{fake_server, TempHome};
use pinch::agent::tools::{Output, Registry};
use pinch::config::{Config, WebSearchTool};
use pinch::net::NetworkConfig;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- fakes

#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Req) -> (u16, &'static str, String) + Send + Sync;

/// A minimal HTTP/1.1 server on 127.0.0.1: one thread per connection, one
/// request per connection, every request recorded.
struct FakeHttp {
    port: u16,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl FakeHttp {
    fn start(
        handler: impl Fn(&Req) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, s) = (handler.clone(), s.clone());
                std::thread::spawn(move || serve(stream, &*h, &s));
            }
        });
        FakeHttp { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Req> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Req>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(request) = fake_server::read_request(&mut stream, &mut Vec::new()) else {
        return;
    };
    let req = Req {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: String::from_utf8_lossy(&request.body).into_owned(),
    };
    seen.lock().expect("lock").push(req.clone());
    let (status, ctype, body) = handler(&req);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

// ---------------------------------------------------------------- helpers

fn have(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("SKIPPED: {program} is not installed, so this skill test cannot run");
    }
    ok
}

/// A workspace whose `skills/` is the repository's bundled skills folder.
fn workspace(tag: &str) -> (TempHome, Registry) {
    let home = TempHome::new(tag);
    let skills = Path::new(env!("CARGO_MANIFEST_DIR")).join("skills");
    std::os::unix::fs::symlink(&skills, home.path.join("skills")).expect("symlink");
    let mut cfg = Config::default();
    cfg.tools.web_fetch.enabled = false;
    let reg = Registry::new(&cfg, &home.path).expect("registry");
    (home, reg)
}

fn tool(reg: &Registry, name: &str, args: &[&str]) -> Output {
    reg.run(
        name,
        &json!({ "args": args }).to_string(),
        Instant::now() + Duration::from_secs(60),
    )
}

fn bullet_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("- ")).collect()
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends `msg` to a file and commits it with a distinct commit date.
fn commit(dir: &Path, n: u32, msg: &str) {
    let f = dir.join("CHANGES");
    let mut text = std::fs::read_to_string(&f).unwrap_or_default();
    text.push_str(msg);
    text.push('\n');
    std::fs::write(&f, text).expect("write");
    git(dir, &["add", "-A"]);
    let date = format!("2024-01-01T00:{:02}:00Z", n);
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "commit.gpgsign=false", "commit", "-q", "-m", msg])
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git commit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- skills

#[test]
fn bundled_skills_parse_and_offer_their_tools() {
    let (_home, reg) = workspace("skills-parse");
    let names: Vec<&str> = reg.skills().iter().map(|s| s.name.as_str()).collect();
    for want in [
        "code-review",
        "news-digest",
        "release-notes",
        "service-watch",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for s in reg.skills() {
        for t in &s.tools {
            let script = s.dir.join(&t.script);
            let text = std::fs::read_to_string(&script).expect("script exists");
            assert!(
                text.starts_with("#!/usr/bin/env python3\n"),
                "{}",
                script.display()
            );
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&script)
                .expect("meta")
                .permissions()
                .mode();
            assert!(mode & 0o111 != 0, "{} is not executable", script.display());
        }
    }
    if !have("python3") {
        return;
    }
    for (tool_name, words) in [
        ("news_digest", "feeds.txt"),
        ("release_notes", "Conventional Commits"),
        ("service_watch", "watch.txt"),
        ("review_context", "REVIEW.md"),
    ] {
        assert!(
            reg.specs().iter().any(|s| s.name == tool_name),
            "{tool_name} not offered"
        );
        let o = tool(&reg, tool_name, &["--help"]);
        assert!(!o.is_error, "{tool_name} --help: {}", o.content);
        assert!(o.content.contains("usage:"), "{}", o.content);
        assert!(o.content.contains(words), "{tool_name}: {}", o.content);
    }
}

const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Pi Weekly</title><link>https://pi.example/</link>
<item><title>First Pi story</title><link>https://pi.example/1</link></item>
<item><title><![CDATA[Shared <b>story</b> &amp; more]]></title><link>https://shared.example/story?utm_source=rss</link></item>
<item><title>Old story</title><link>https://pi.example/old</link><pubDate>Mon, 01 Jan 2001 00:00:00 GMT</pubDate></item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Rust Blog</title>
<entry><title>Atom entry</title><link rel="alternate" href="https://rust.example/a"/><id>urn:1</id><updated>2099-01-01T00:00:00Z</updated></entry>
<entry><title>Same story, other feed</title><link href="https://www.shared.example/story/"/><id>urn:2</id></entry>
</feed>"#;

fn news_server() -> FakeHttp {
    FakeHttp::start(|r| {
        match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/rss.xml") => (200, "application/rss+xml", RSS.into()),
        ("GET", "/atom.xml") => (200, "application/atom+xml", ATOM.into()),
        ("GET", "/hn/v0/topstories.json") => (200, "application/json", "[101, 102, 103]".into()),
        ("GET", "/hn/v0/item/101.json") => (
            200,
            "application/json",
            r#"{"id":101,"type":"story","title":"HN story","url":"https://hn.example/s","time":4102444800}"#.into(),
        ),
        ("GET", "/hn/v0/item/102.json") => (
            200,
            "application/json",
            r#"{"id":102,"type":"job","title":"We are hiring","url":"https://jobs.example/"}"#.into(),
        ),
        ("GET", "/hn/v0/item/103.json") => (
            200,
            "application/json",
            r#"{"id":103,"type":"story","title":"Ask HN: thing?"}"#.into(),
        ),
        ("POST", "/api/search") => {
            if r.header("authorization") != Some("Bearer tvly-test") {
                return (401, "application/json", r#"{"detail":{"error":"Unauthorized"}}"#.into());
            }
            (
                200,
                "application/json",
                json!({"query": "q", "results": [
                    {"title": "Search hit", "url": "https://www.news.example/x", "content": "c", "score": 0.9},
                    {"title": "Search dup", "url": "https://pi.example/1#top", "content": "c"}
                ]})
                .to_string(),
            )
        }
        _ => (404, "text/plain", "not found".into()),
    }
    })
}

#[test]
fn news_digest_merges_feeds_hacker_news_and_search() {
    if !have("python3") {
        return;
    }
    let fake = news_server();
    let (home, reg) = workspace("news");
    let u = fake.url();
    std::fs::write(
        home.path.join("feeds.txt"),
        format!(
            "# my feeds\n{u}/rss.xml\nfeed {u}/atom.xml\nhn {u}/hn/v0\nsearch raspberry pi\n\
             search-url {u}/api\nsearch-key-file keys/tavily\n{u}/missing.xml\n"
        ),
    )
    .expect("feeds");
    std::fs::create_dir_all(home.path.join("keys")).expect("mkdir");
    std::fs::write(home.path.join("keys/tavily"), "tvly-test\n").expect("key");

    let o = tool(&reg, "news_digest", &[]);
    assert!(!o.is_error, "{}", o.content);
    let c = &o.content;
    for line in [
        "- First Pi story — Pi Weekly — https://pi.example/1",
        "- Shared story & more — Pi Weekly — https://shared.example/story?utm_source=rss",
        "- Old story — Pi Weekly — https://pi.example/old",
        "- Atom entry — Rust Blog — https://rust.example/a",
        "- HN story — Hacker News — https://hn.example/s",
        "- Ask HN: thing? — Hacker News — https://news.ycombinator.com/item?id=103",
        "- Search hit — news.example — https://www.news.example/x",
    ] {
        assert!(c.lines().any(|l| l == line), "missing {line:?} in:\n{c}");
    }
    // Deduplicated by URL across feeds and search; HN jobs left out.
    assert_eq!(c.matches("shared.example/story").count(), 1, "{c}");
    assert!(
        !c.contains("Same story, other feed") && !c.contains("Search dup"),
        "{c}"
    );
    assert!(!c.contains("hiring"), "{c}");
    assert_eq!(bullet_lines(c).len(), 7, "{c}");
    assert!(
        c.contains(&format!(
            "! {u}/missing.xml: HTTP 404 from {u}/missing.xml (not found; check the URL)"
        )),
        "{c}"
    );
    assert!(c.contains("(7 stories from 5 sources; 1 failed)"), "{c}");
    let search: Vec<Req> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/search")
        .collect();
    assert_eq!(search.len(), 1);
    let body: Value = serde_json::from_str(&search[0].body).expect("json body");
    assert_eq!(body["query"], "raspberry pi");
    assert_eq!(body["max_results"], 5);

    // The cap takes stories in turn from each source.
    let o = tool(&reg, "news_digest", &["--max", "3"]);
    let lines = bullet_lines(&o.content);
    assert_eq!(lines.len(), 3, "{}", o.content);
    assert!(
        lines[0].contains("Pi Weekly")
            && lines[1].contains("Rust Blog")
            && lines[2].contains("Hacker News"),
        "{}",
        o.content
    );

    // --hours drops dated stories that are too old; undated ones stay.
    let o = tool(&reg, "news_digest", &["--hours", "24"]);
    assert!(!o.content.contains("Old story"), "{}", o.content);
    assert!(o.content.contains("First Pi story"), "{}", o.content);

    // Sources given as arguments replace the file's.
    let o = tool(&reg, "news_digest", &[&format!("hn {u}/hn/v0")]);
    assert_eq!(bullet_lines(&o.content).len(), 2, "{}", o.content);
    assert!(
        o.content.contains("(2 stories from 1 sources)"),
        "{}",
        o.content
    );

    // A wrong key is reported as the failing source, with the fix.
    std::fs::write(home.path.join("keys/tavily"), "wrong\n").expect("key");
    let o = tool(&reg, "news_digest", &["search", "raspberry pi"]);
    assert!(o.is_error, "every source failed: {}", o.content);
    assert!(
        o.content.contains("! search raspberry pi: HTTP 401"),
        "{}",
        o.content
    );
    assert!(o.content.contains("check the API key"), "{}", o.content);
}

#[test]
fn news_digest_says_how_to_fix_its_configuration() {
    if !have("python3") {
        return;
    }
    let (home, reg) = workspace("news-errors");
    let o = tool(&reg, "news_digest", &[]);
    assert!(o.is_error);
    assert!(o.content.contains("no sources"), "{}", o.content);
    assert!(
        o.content.contains(&format!(
            "{}/feeds.txt",
            home.path.canonicalize().expect("canon").display()
        )),
        "{}",
        o.content
    );
    let o = tool(&reg, "news_digest", &["ftp://example.com/feed"]);
    assert!(
        o.content
            .contains("cannot read source 'ftp://example.com/feed'"),
        "{}",
        o.content
    );
    let o = tool(&reg, "news_digest", &["search rust"]);
    assert!(o.content.contains("search-key-file"), "{}", o.content);
    let o = tool(&reg, "news_digest", &["hn", "--max", "99"]);
    assert!(
        o.content.contains("--max must be between 1 and 50"),
        "{}",
        o.content
    );
    // An unreachable source is a failure line, not a crash.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let o = tool(
        &reg,
        "news_digest",
        &[
            &format!("http://127.0.0.1:{port}/feed.xml"),
            "--timeout",
            "3",
        ],
    );
    assert!(o.is_error);
    assert!(o.content.contains("cannot reach"), "{}", o.content);
    assert!(
        o.content.contains("(0 stories from 1 sources; 1 failed)"),
        "{}",
        o.content
    );
}

#[test]
fn release_notes_sort_commits_between_tags() {
    if !have("python3") || !have("git") {
        return;
    }
    let (home, reg) = workspace("release");
    let repo = home.path.join("app");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    commit(&repo, 1, "initial import");
    git(&repo, &["tag", "v0.1.0"]);
    let msgs = [
        "feat(cli): add --json output",
        "fix: crash on empty config",
        "docs: update README",
        "Add support for Atom feeds",
        "Resolve memory leak in parser",
        "refactor!: rename config keys",
        "perf: faster startup\n\nBREAKING CHANGE: needs a new cache dir",
        "tidy up",
    ];
    for (i, m) in msgs.iter().enumerate() {
        commit(&repo, 2 + i as u32, m);
    }
    // A merged side branch: its commit counts, the merge commit does not.
    git(&repo, &["checkout", "-q", "-b", "side"]);
    commit(&repo, 20, "fix(net): retry on reset");
    git(&repo, &["checkout", "-q", "main"]);
    git(
        &repo,
        &["merge", "-q", "--no-ff", "-m", "Merge branch side", "side"],
    );
    git(&repo, &["tag", "v0.2.0"]);
    commit(&repo, 30, "feat: after the release");

    let o = tool(&reg, "release_notes", &["app"]);
    assert!(!o.is_error, "{}", o.content);
    let c = &o.content;
    assert!(
        c.starts_with(
            "# Release notes: v0.1.0 → v0.2.0\n9 commits by 1 author (merges left out).\n"
        ),
        "{c}"
    );
    let section = |title: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut on = false;
        for l in c.lines() {
            if l.starts_with("## ") {
                on = l == format!("## {title}");
            } else if on && l.starts_with("- ") {
                // drop the " (sha)" suffix
                out.push(l[2..l.rfind(" (").unwrap_or(l.len())].to_string());
            }
        }
        out
    };
    assert_eq!(
        section("Breaking changes"),
        vec!["faster startup", "rename config keys"],
        "{c}"
    );
    assert_eq!(
        section("Features"),
        vec!["Add support for Atom feeds", "cli: add --json output"],
        "{c}"
    );
    assert_eq!(
        section("Fixes"),
        vec![
            "net: retry on reset",
            "Resolve memory leak in parser",
            "crash on empty config"
        ],
        "{c}"
    );
    assert_eq!(
        section("Other changes"),
        vec!["tidy up", "docs: update README"],
        "{c}"
    );
    let order: Vec<usize> = ["## Breaking", "## Features", "## Fixes", "## Other"]
        .iter()
        .map(|h| c.find(h).expect("section"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{c}");
    assert!(
        !c.contains("Merge branch")
            && !c.contains("after the release")
            && !c.contains("initial import"),
        "{c}"
    );

    // FROM alone runs up to HEAD.
    let o = tool(&reg, "release_notes", &["app", "v0.2.0"]);
    assert!(
        o.content.contains("# Release notes: v0.2.0 → HEAD"),
        "{}",
        o.content
    );
    assert!(
        o.content.contains("## Features\n- after the release ("),
        "{}",
        o.content
    );
    assert_eq!(bullet_lines(&o.content).len(), 1, "{}", o.content);

    let o = tool(&reg, "release_notes", &["app", "v9.9"]);
    assert!(o.is_error);
    assert!(
        o.content.contains("'v9.9' is not a tag, branch or commit"),
        "{}",
        o.content
    );
    assert!(
        o.content.contains("recent tags: v0.2.0, v0.1.0"),
        "{}",
        o.content
    );
    let o = tool(&reg, "release_notes", &["nowhere"]);
    assert!(o.content.contains("is not a directory"), "{}", o.content);
}

#[test]
fn service_watch_reports_failures_with_logs_and_deploys() {
    if !have("python3") || !have("git") {
        return;
    }
    let fake = FakeHttp::start(|r| match r.path.as_str() {
        "/ok" => (200, "text/plain", "healthy".into()),
        "/boom" => (500, "text/plain", "database unavailable".into()),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(400));
            (200, "text/plain", "late".into())
        }
        _ => (404, "text/plain", "no".into()),
    });
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = closed.local_addr().expect("addr").port();
    drop(closed);
    let (home, reg) = workspace("watch");
    let u = fake.url();
    std::fs::create_dir_all(home.path.join("logs")).expect("mkdir");
    let mut log = String::new();
    for i in 0..60 {
        if i == 20 {
            log.push_str("12:00:20 ERROR db connection refused (pool exhausted)\n");
        } else {
            log.push_str(&format!("12:00:{i:02} INFO request served\n"));
        }
    }
    std::fs::write(home.path.join("logs/app.log"), log).expect("log");
    let repo = home.path.join("app");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    commit(&repo, 1, "initial deploy");
    commit(&repo, 2, "deploy: shrink db pool to 2");
    std::fs::write(
        home.path.join("watch.txt"),
        format!(
            "# services\n{u}/ok contains=healthy\nhttp {u}/boom log=logs/app.log repo=app\n\
             {u}/slow slow=100\nhttp://127.0.0.1:{dead}/health\n"
        ),
    )
    .expect("watch.txt");

    let o = tool(&reg, "service_watch", &[]);
    assert!(o.is_error, "exit 1 on failure: {}", o.content);
    let c = &o.content;
    let status: Vec<&str> = c
        .lines()
        .filter(|l| l.starts_with("OK ") || l.starts_with("FAIL "))
        .collect();
    assert_eq!(status.len(), 4, "{c}");
    assert!(
        status[0].starts_with(&format!("OK   http {u}/ok — HTTP 200 in ")),
        "{c}"
    );
    assert!(
        status[1].starts_with(&format!("FAIL http {u}/boom — HTTP 500 in ")),
        "{c}"
    );
    assert!(status[1].ends_with("ms: database unavailable"), "{c}");
    assert!(
        status[2].starts_with(&format!("FAIL http {u}/slow — HTTP 200 but slow: ")),
        "{c}"
    );
    assert!(status[2].ends_with("ms > 100 ms"), "{c}");
    assert!(
        status[3].starts_with(&format!(
            "FAIL http http://127.0.0.1:{dead}/health — cannot connect"
        )),
        "{c}"
    );
    // Context for the failure that has log= and repo=.
    let ctx_start = c
        .find(&format!("== context: http {u}/boom =="))
        .expect("context block");
    let ctx = &c[ctx_start..];
    let ctx = &ctx[..ctx[3..]
        .find("== context")
        .map(|i| i + 3)
        .unwrap_or(ctx.len())];
    assert!(ctx.contains("-- log "), "{ctx}");
    assert!(
        ctx.contains("(20 of the last 50 lines, error lines first)"),
        "{ctx}"
    );
    assert!(
        ctx.contains("12:00:20 ERROR db connection refused (pool exhausted)"),
        "{ctx}"
    );
    assert!(ctx.contains("12:00:59 INFO request served"), "{ctx}");
    assert!(
        !ctx.contains("12:00:11 INFO"),
        "older routine lines dropped: {ctx}"
    );
    assert!(ctx.contains("-- deploys "), "{ctx}");
    let deploys: Vec<&str> = ctx
        .lines()
        .skip_while(|l| !l.starts_with("-- deploys"))
        .skip(1)
        .take(2)
        .collect();
    assert!(
        deploys[0].ends_with("Alice: deploy: shrink db pool to 2"),
        "{ctx}"
    );
    assert!(deploys[1].ends_with("Alice: initial deploy"), "{ctx}");
    assert_eq!(c.matches("== context").count(), 1, "{c}");
    assert!(
        c.contains(&format!("no context for {u}/slow, http://127.0.0.1:{dead}/health (add log=, unit= or repo= to the check)")),
        "{c}"
    );
    assert!(c.contains("\n1 OK, 3 FAIL, 0 SKIP\n"), "{c}");

    // All OK: exit 0 and the summary the heartbeat keys on.
    let o = tool(&reg, "service_watch", &[&format!("{u}/ok expect=200")]);
    assert!(!o.is_error, "{}", o.content);
    assert!(o.content.contains("ALL OK (1 check)"), "{}", o.content);
    // A unit check: FAIL where systemd runs, SKIP where it does not.
    let o = tool(
        &reg,
        "service_watch",
        &["unit", "pinch-surely-absent.service", "--no-context"],
    );
    let first = o.content.lines().next().unwrap_or("");
    assert!(
        first.starts_with("FAIL unit pinch-surely-absent.service")
            || first.starts_with("SKIP unit pinch-surely-absent.service"),
        "{}",
        o.content
    );
    assert!(o.is_error, "nothing OK is not all OK: {}", o.content);
    // Usage errors say what to fix.
    let o = tool(&reg, "service_watch", &[&format!("{u}/ok timeout=3")]);
    assert!(
        o.content
            .contains("unknown option 'timeout=3'; options are expect, slow"),
        "{}",
        o.content
    );
    // The skill text tells the heartbeat what to answer.
    let o = reg.run(
        "skill",
        r#"{"name": "service-watch"}"#,
        Instant::now() + Duration::from_secs(5),
    );
    assert!(
        o.content.contains("reply exactly `HEARTBEAT_OK`"),
        "{}",
        o.content
    );
}

#[test]
fn code_review_shows_files_standards_and_a_capped_diff() {
    if !have("python3") || !have("git") {
        return;
    }
    let (home, reg) = workspace("review");
    let repo = home.path.join("proj");
    std::fs::create_dir_all(repo.join("src")).expect("mkdir");
    git(&repo, &["init", "-q"]);
    std::fs::write(
        repo.join("src/lib.rs"),
        "pub fn parse(x: &str) -> u32 {\n    x.len() as u32\n}\n",
    )
    .expect("w");
    commit(&repo, 1, "initial");
    git(&repo, &["checkout", "-q", "-b", "feature/parse"]);
    std::fs::write(
        repo.join("src/lib.rs"),
        "pub fn parse(x: &str) -> u32 {\n    x.parse().unwrap()\n}\n",
    )
    .expect("w");
    let big: String = (0..300)
        .map(|i| format!("pub const C{i}: u32 = {i};\n"))
        .collect();
    std::fs::write(repo.join("src/big.rs"), big).expect("w");
    std::fs::write(repo.join("Cargo.lock"), "# lock\n").expect("w");
    commit(&repo, 2, "feat: parse numbers");
    git(&repo, &["checkout", "-q", "main"]);
    commit(&repo, 3, "main moves on");
    std::fs::write(
        home.path.join("REVIEW.md"),
        "- No unwrap() outside tests.\n- Errors say what to fix.\n",
    )
    .expect("w");

    let o = tool(&reg, "review_context", &["proj", "feature/parse"]);
    assert!(!o.is_error, "{}", o.content);
    let c = &o.content;
    assert!(
        c.starts_with("# Review: feature/parse against main (merge base "),
        "{c}"
    );
    assert!(c.contains("## Commits (1)\n- "), "{c}");
    assert!(c.contains(" feat: parse numbers\n"), "{c}");
    assert!(c.contains("## Files (4 changed, +303 -1)"), "{c}");
    for f in [
        "- M CHANGES +1 -0",
        "- A Cargo.lock +1 -0",
        "- A src/big.rs +300 -0",
        "- M src/lib.rs +1 -1",
    ] {
        assert!(c.lines().any(|l| l == f), "missing {f:?}: {c}");
    }
    assert!(
        c.contains(
            "## Standards (REVIEW.md)\n- No unwrap() outside tests.\n- Errors say what to fix.\n"
        ),
        "{c}"
    );
    // The three-dot diff: the branch's changes only, not main's later commit.
    assert!(c.contains("+    x.parse().unwrap()\n"), "{c}");
    assert!(c.contains("-    x.len() as u32\n"), "{c}");
    assert!(!c.contains("main moves on"), "{c}");
    // The small file whole, the big one cut, the lock file last and left out.
    assert!(c.contains("[diff capped at 5000 bytes]\n[cut short: src/big.rs]\n[not shown: Cargo.lock]\n[see a file with --path FILE]"), "{c}");
    assert!(
        c.find("diff --git a/src/lib.rs").expect("lib diff")
            < c.find("diff --git a/src/big.rs").expect("big diff"),
        "{c}"
    );
    assert!(
        c.len() < 8000 && !c.contains("[truncated"),
        "fits one tool result: {}",
        c.len()
    );

    // One file, paged: the first page says where to continue.
    let page1 = tool(
        &reg,
        "review_context",
        &["proj", "feature/parse", "--path", "src/big.rs"],
    );
    let c = &page1.content;
    assert!(
        c.contains("+pub const C0: u32 = 0;") && !c.contains("C299"),
        "{c}"
    );
    assert!(!c.contains("diff --git a/src/lib.rs"), "{c}");
    let tail = c
        .lines()
        .find(|l| l.starts_with("[diff bytes 0-"))
        .expect("paging line");
    let next = tail
        .rsplit(' ')
        .next()
        .expect("offset")
        .trim_end_matches(']');
    assert!(
        tail.ends_with(&format!("continue with --offset {next}]")),
        "{tail}"
    );
    let o = tool(
        &reg,
        "review_context",
        &[
            "proj",
            "feature/parse",
            "--path",
            "src/big.rs",
            "--offset",
            next,
        ],
    );
    let c = &o.content;
    let mut consts: Vec<&str> = page1
        .content
        .lines()
        .chain(c.lines())
        .filter(|l| l.starts_with("+pub const C"))
        .collect();
    consts.sort();
    consts.dedup();
    assert_eq!(consts.len(), 300, "the two pages hold every line");
    assert!(c.contains("+pub const C299: u32 = 299;\n"), "{c}");
    assert!(
        c.contains(&format!("[diff bytes {next}-")) && c.contains(": the end]"),
        "{c}"
    );
    let first_line = c
        .lines()
        .skip_while(|l| *l != "## Diff")
        .nth(1)
        .unwrap_or("");
    assert!(
        first_line.starts_with("+pub const C"),
        "page starts on a whole line: {c}"
    );
    let o = tool(
        &reg,
        "review_context",
        &["proj", "feature/parse", "--max-bytes", "20000"],
    );
    assert!(
        o.content
            .contains("--max-bytes must be between 200 and 6000"),
        "{}",
        o.content
    );

    let o = tool(&reg, "review_context", &["proj", "nope"]);
    assert!(o.is_error);
    assert!(
        o.content.contains("branch 'nope' not found"),
        "{}",
        o.content
    );
    assert!(
        o.content.contains("feature/parse") && o.content.contains("main"),
        "{}",
        o.content
    );
    let o = tool(
        &reg,
        "review_context",
        &["proj", "feature/parse", "--standards", "missing.md"],
    );
    assert!(
        o.content.contains("standards file") && o.content.contains("missing.md does not exist"),
        "{}",
        o.content
    );
    std::fs::remove_file(home.path.join("REVIEW.md")).expect("rm");
    let o = tool(&reg, "review_context", &["proj", "feature/parse"]);
    assert!(
        o.content.contains("(no REVIEW.md in the workspace"),
        "{}",
        o.content
    );
}

// ---------------------------------------------------------------- web_search

fn search_registry(
    tag: &str,
    backend: &str,
    base: &str,
    key: Option<&str>,
) -> (TempHome, Registry) {
    let home = TempHome::new(tag);
    let mut cfg = Config::default();
    cfg.tools.web_fetch.enabled = false;
    cfg.tools.web_search = WebSearchTool {
        enabled: true,
        backend: backend.into(),
        base_url: base.into(),
        api_key: key.map(String::from),
        network: Some(NetworkConfig {
            proxy: Some("direct".into()),
            ..NetworkConfig::default()
        }),
        ..WebSearchTool::default()
    };
    let reg = Registry::new(&cfg, &home.path).expect("registry");
    (home, reg)
}

fn search(reg: &Registry, args: Value) -> Output {
    reg.run(
        "web_search",
        &args.to_string(),
        Instant::now() + Duration::from_secs(20),
    )
}

fn results(n: usize) -> String {
    let mut r: Vec<Value> = (1..=n)
        .map(|i| json!({"title": format!("Result {i}"), "url": format!("https://r{i}.example/"), "content": format!("Snippet\n number {i}")}))
        .collect();
    r.insert(
        1,
        json!({"title": "Dup", "url": "https://r1.example", "content": "again"}),
    );
    json!({"query": "q", "results": r}).to_string()
}

#[test]
fn web_search_tool_queries_tavily_and_searxng() {
    let tavily = FakeHttp::start(|r| {
        if r.method != "POST" || r.path != "/search" {
            return (404, "text/plain", "Not Found".into());
        }
        if r.header("authorization") != Some("Bearer tvly-test") {
            return (
                401,
                "application/json",
                r#"{"detail":{"error":"Unauthorized: missing or invalid API key."}}"#.into(),
            );
        }
        (200, "application/json", results(7))
    });
    let (_h, reg) = search_registry(
        "tavily",
        "tavily",
        &format!("{}/", tavily.url()),
        Some("tvly-test"),
    );
    assert!(reg.specs().iter().any(|s| s.name == "web_search"));
    let o = search(&reg, json!({"query": "pinch gateway", "max_results": 3}));
    assert!(!o.is_error, "{}", o.content);
    assert_eq!(
        o.content,
        "- Result 1 — https://r1.example/ — Snippet number 1\n- Result 2 — https://r2.example/ — Snippet number 2\n- Result 3 — https://r3.example/ — Snippet number 3"
    );
    let seen = tavily.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&seen[0].body).expect("json");
    assert_eq!(body["query"], "pinch gateway");
    assert_eq!(body["max_results"], 3);
    // Without max_results the configured cap (5) applies; more is clamped.
    let o = search(&reg, json!({"query": "pinch", "max_results": 50}));
    assert_eq!(bullet_lines(&o.content).len(), 5, "{}", o.content);
    assert!(search(&reg, json!({"query": "  "}))
        .content
        .contains("missing \"query\""));

    let (_h2, bad) = search_registry("tavily-bad", "tavily", &tavily.url(), Some("wrong"));
    let o = search(&bad, json!({"query": "x"}));
    assert!(o.is_error);
    assert!(
        o.content
            .contains("HTTP 401: Unauthorized: missing or invalid API key."),
        "{}",
        o.content
    );
    assert!(
        o.content.contains("tools.webSearch.apiKey"),
        "{}",
        o.content
    );

    let searx = FakeHttp::start(|r| {
        if r.method == "GET" && r.path.starts_with("/searx/search?") {
            (200, "application/json", results(2))
        } else {
            (403, "text/html", "<h1>Forbidden</h1>".into())
        }
    });
    let (_h3, reg) = search_registry("searx", "searxng", &format!("{}/searx", searx.url()), None);
    let o = search(&reg, json!({"query": "c++ & rust"}));
    assert!(!o.is_error, "{}", o.content);
    assert_eq!(bullet_lines(&o.content).len(), 2, "{}", o.content);
    assert!(
        o.content
            .starts_with("- Result 1 — https://r1.example/ — Snippet number 1\n"),
        "{}",
        o.content
    );
    let seen = searx.requests();
    assert_eq!(
        seen[0].path,
        "/searx/search?q=c%2B%2B%20%26%20rust&format=json"
    );
    assert!(seen[0].header("authorization").is_none());
    let (_h4, reg) = search_registry("searx-403", "searxng", &searx.url(), None);
    let o = search(&reg, json!({"query": "x"}));
    assert!(
        o.is_error && o.content.contains("HTTP 403") && o.content.contains("search.formats"),
        "{}",
        o.content
    );

    // Off unless configured.
    let home = TempHome::new("search-off");
    let reg = Registry::new(&Config::default(), &home.path).expect("registry");
    assert!(!reg.specs().iter().any(|s| s.name == "web_search"));
    assert!(search(&reg, json!({"query": "x"}))
        .content
        .contains("unknown tool"));
}
