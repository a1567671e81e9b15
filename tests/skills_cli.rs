//! `pinch skills list | install | remove` against the real binary: a skill
//! folder, a `.tar.gz` made by the system tar, a download from a local HTTP
//! server pinned by SHA-256, and archives or folders that try to escape
//! their folder (symlinks, `..`, absolute paths), which must install
//! nothing.

mod common;

use common::{fake_server, TempHome};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SKILL: &str = r#"---
name: greeter
description: "Greets people: by name, politely."
metadata:
  {
    "openclaw":
      {
        "requires": { "bins": ["sh"], "env": ["GREETER_TOKEN"] },
      },
  }
---
Run `{baseDir}/scripts/hello.sh NAME`.
"#;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A skill folder `<dir>/greeter` with a script.
fn make_skill(dir: &Path) -> PathBuf {
    let skill = dir.join("greeter");
    std::fs::create_dir_all(skill.join("scripts")).expect("mkdir");
    std::fs::write(skill.join("SKILL.md"), SKILL).expect("write");
    let script = skill.join("scripts/hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"hello $1\"\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    skill
}

fn tar_czf(cwd: &Path, archive: &Path, members: &[&str], absolute: bool) {
    let mut c = Command::new("tar");
    c.current_dir(cwd)
        .arg(if absolute { "-czPf" } else { "-czf" })
        .arg(archive)
        .args(members);
    let out = c.output().expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out));
}

fn skills(home: &TempHome, args: &[&str]) -> Output {
    home.cmd()
        .arg("skills")
        .args(args)
        .env_remove("GREETER_TOKEN")
        .output()
        .expect("run pinch skills")
}

fn installed(home: &TempHome) -> bool {
    home.path
        .join("workspace/skills/greeter/SKILL.md")
        .is_file()
}

fn no_staging_left(home: &TempHome) {
    let left: Vec<String> = std::fs::read_dir(home.path.join("workspace/skills"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".install-"))
        .collect();
    assert!(left.is_empty(), "staging folders left behind: {left:?}");
}

#[test]
fn install_from_a_folder_list_and_remove() {
    let home = TempHome::new("skills-dir");
    let src = TempHome::new("skills-src");
    let skill = make_skill(&src.path);
    let out = skills(&home, &["install", skill.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not offered yet: $GREETER_TOKEN not set"),
        "{}",
        text(&out)
    );
    assert!(installed(&home));

    // Ineligible until the variable exists; .env counts.
    let list = text(&skills(&home, &["list"]));
    let line = list
        .lines()
        .find(|l| l.starts_with("greeter"))
        .expect("listed");
    assert!(
        line.contains("workspace") && line.contains("not offered"),
        "{line}"
    );
    common::write_private(&home.path.join(".env"), "GREETER_TOKEN=t\n");
    let list = text(&skills(&home, &["list"]));
    let line = list
        .lines()
        .find(|l| l.starts_with("greeter"))
        .expect("listed");
    assert!(
        line.contains("eligible") && !line.contains("not offered"),
        "{line}"
    );

    // Installing again needs --force.
    let again = skills(&home, &["install", skill.to_str().expect("utf8")]);
    assert!(!again.status.success());
    assert!(text(&again).contains("--force"), "{}", text(&again));
    let forced = skills(
        &home,
        &["install", "--force", skill.to_str().expect("utf8")],
    );
    assert!(forced.status.success(), "{}", text(&forced));

    // Bundled skills cannot be removed; ours can.
    let bundled = skills(&home, &["remove", "news-digest"]);
    assert!(!bundled.status.success());
    assert!(text(&bundled).contains("bundled"), "{}", text(&bundled));
    let rm = skills(&home, &["remove", "greeter"]);
    assert!(rm.status.success(), "{}", text(&rm));
    assert!(!home.path.join("workspace/skills/greeter").exists());
    no_staging_left(&home);
}

#[test]
fn install_from_an_archive_and_refuse_escapes() {
    let home = TempHome::new("skills-tar");
    let src = TempHome::new("skills-tar-src");
    make_skill(&src.path);
    let good = src.path.join("greeter.tar.gz");
    tar_czf(&src.path, &good, &["greeter"], false);
    let out = skills(&home, &["install", good.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(installed(&home));
    let script = home.path.join("workspace/skills/greeter/scripts/hello.sh");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&script)
        .expect("script")
        .permissions()
        .mode();
    assert_eq!(mode & 0o100, 0o100, "the script lost its exec bit");
    std::fs::remove_dir_all(home.path.join("workspace/skills/greeter")).expect("rm");

    // A symlink inside the skill.
    std::os::unix::fs::symlink("/etc/passwd", src.path.join("greeter/passwd")).expect("symlink");
    let linked = src.path.join("linked.tar.gz");
    tar_czf(&src.path, &linked, &["greeter"], false);
    let out = skills(&home, &["install", linked.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(text(&out).contains("symlink"), "{}", text(&out));
    assert!(!installed(&home));
    // The same folder installed directly is refused too.
    let out = skills(
        &home,
        &["install", src.path.join("greeter").to_str().expect("utf8")],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("symlink"), "{}", text(&out));
    assert!(!installed(&home));
    std::fs::remove_file(src.path.join("greeter/passwd")).expect("rm link");

    // A member that climbs out with `..`.
    let inner = src.path.join("inner");
    std::fs::create_dir_all(&inner).expect("mkdir");
    std::fs::write(src.path.join("escape.txt"), "x").expect("write");
    let dotdot = src.path.join("dotdot.tar.gz");
    tar_czf(&inner, &dotdot, &["../greeter", "../escape.txt"], true);
    let out = skills(&home, &["install", dotdot.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("outside the skill's folder"),
        "{}",
        text(&out)
    );
    assert!(!installed(&home));
    assert!(!home.path.join("workspace/escape.txt").exists());

    // An absolute member path.
    let abs = src.path.join("abs.tar.gz");
    let target = src.path.join("escape.txt");
    tar_czf(
        &src.path,
        &abs,
        &["greeter", target.to_str().expect("utf8")],
        true,
    );
    let out = skills(&home, &["install", abs.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("outside the skill's folder"),
        "{}",
        text(&out)
    );
    assert!(!installed(&home));

    // Not an archive at all.
    let junk = src.path.join("junk.tar.gz");
    std::fs::write(&junk, b"not gzip").expect("write");
    let out = skills(&home, &["install", junk.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(!installed(&home));
    no_staging_left(&home);
}

/// Serves `body` for every request on 127.0.0.1; returns the base URL.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = fake_server::read_request(&mut s, &mut Vec::new());
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn install_from_a_url_needs_the_right_sha256() {
    let home = TempHome::new("skills-url");
    let src = TempHome::new("skills-url-src");
    make_skill(&src.path);
    let archive = src.path.join("greeter.tar.gz");
    tar_czf(&src.path, &archive, &["greeter"], false);
    let bytes = std::fs::read(&archive).expect("read");
    let sum = Command::new("sha256sum")
        .arg(&archive)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string();
    let url = format!("{}/greeter.tar.gz", serve(bytes));

    let out = skills(&home, &["install", &url]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--sha256"), "{}", text(&out));
    let wrong = "0".repeat(64);
    let out = skills(&home, &["install", &url, "--sha256", &wrong]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("nothing was installed"),
        "{}",
        text(&out)
    );
    assert!(!installed(&home));
    let out = skills(&home, &["install", &url, "--sha256", &sum]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(installed(&home));
    no_staging_left(&home);
}

/// The `skill` tool runs a script inside the skill's folder and nothing
/// outside it.
#[test]
fn the_skill_tool_runs_scripts_inside_the_skill_folder_only() {
    use pinch::agent::tools::Registry;
    use std::time::{Duration, Instant};
    let ws = TempHome::new("skills-run");
    let skill = ws.path.join("skills/plain");
    std::fs::create_dir_all(skill.join("scripts")).expect("mkdir");
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: plain\ndescription: A skill without requirements.\n---\nRun {baseDir}/scripts/hi.sh\n",
    )
    .expect("write");
    let script = skill.join("scripts/hi.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"hi $1\"\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(ws.path.join("outside.sh"), "#!/bin/sh\necho escaped\n").expect("write");
    std::fs::set_permissions(
        ws.path.join("outside.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let mut cfg = pinch::config::Config::default();
    cfg.tools.web_fetch.enabled = false;
    let reg = Registry::new(&cfg, &ws.path).expect("registry");
    let run = |args: &str| reg.run("skill", args, Instant::now() + Duration::from_secs(20));

    let loaded = run(r#"{"name": "plain"}"#);
    assert!(!loaded.is_error, "{}", loaded.content);
    assert!(
        loaded
            .content
            .contains(&format!("Run {}/scripts/hi.sh", skill.display())),
        "{{baseDir}} not replaced: {}",
        loaded.content
    );
    let ok = run(r#"{"name": "plain", "run": "scripts/hi.sh", "args": ["there"]}"#);
    assert!(!ok.is_error, "{}", ok.content);
    assert!(ok.content.contains("hi there"), "{}", ok.content);
    for bad in [
        r#"{"name": "plain", "run": "../../outside.sh"}"#,
        r#"{"name": "plain", "run": "/bin/echo", "args": ["x"]}"#,
        r#"{"name": "nope", "run": "scripts/hi.sh"}"#,
    ] {
        let out = run(bad);
        assert!(out.is_error, "{bad} ran: {}", out.content);
        assert!(!out.content.contains("escaped"), "{bad}: {}", out.content);
    }
}
