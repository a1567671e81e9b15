//! Tool confinement and the exec allowlist, against a temporary workspace.

use super::*;
use crate::config::Config;

fn registry(tag: &str, allow: &[&str]) -> (Registry, PathBuf) {
    let dir = std::env::temp_dir().join(format!("pinch-tools-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut cfg = Config::default();
    cfg.tools.exec.allow = allow.iter().map(|s| s.to_string()).collect();
    cfg.tools.web_fetch.enabled = false;
    let mut r = Registry::new(&cfg, &dir).expect("registry");
    unconfined_where_unsupported(&mut r);
    (r, dir)
}

/// qemu-user (the ARM test runs) has no Landlock syscalls: the allowlist
/// and limits are still tested there, unconfined, and the run says so.
fn unconfined_where_unsupported(r: &mut Registry) {
    if let crate::sandbox::Mode::Refused(why) = &r.sandbox {
        eprintln!("note: no sandbox here ({why}); running programs unconfined");
        r.sandbox = crate::sandbox::Mode::Off;
    }
}

fn run(r: &Registry, name: &str, args: serde_json::Value) -> Output {
    r.run(
        name,
        &args.to_string(),
        Instant::now() + Duration::from_secs(10),
    )
}

#[test]
fn files_stay_inside_the_workspace() {
    let (r, dir) = registry("files", &[]);
    let o = run(
        &r,
        "write_file",
        json!({"path": "notes/a.md", "content": "hello world"}),
    );
    assert!(!o.is_error, "{}", o.content);
    assert_eq!(
        std::fs::read_to_string(dir.join("notes/a.md")).expect("read"),
        "hello world"
    );
    let o = run(
        &r,
        "edit_file",
        json!({"path": "notes/a.md", "old_text": "world", "new_text": "pinch"}),
    );
    assert!(!o.is_error, "{}", o.content);
    assert_eq!(
        run(&r, "read_file", json!({"path": "notes/a.md"})).content,
        "hello pinch"
    );
    assert!(run(&r, "list_dir", json!({"path": "."}))
        .content
        .contains("notes/"));
    for bad in ["../escape.txt", "/etc/passwd", "notes/../../x"] {
        let o = run(&r, "write_file", json!({"path": bad, "content": "x"}));
        assert!(o.is_error, "{bad} must be refused");
        let o = run(&r, "read_file", json!({"path": bad}));
        assert!(o.is_error, "{bad} must be refused");
    }
    // A symlink pointing outside cannot be followed for reading or writing.
    std::os::unix::fs::symlink("/etc", dir.join("etc-link")).expect("symlink");
    assert!(run(&r, "read_file", json!({"path": "etc-link/hostname"})).is_error);
    assert!(
        run(
            &r,
            "write_file",
            json!({"path": "etc-link/pwned", "content": "x"})
        )
        .is_error
    );
    assert!(run(&r, "list_dir", json!({"path": "etc-link"})).is_error);
    std::os::unix::fs::symlink("/etc/hostname", dir.join("host-link")).expect("symlink");
    assert!(run(&r, "read_file", json!({"path": "host-link"})).is_error);
    assert!(
        run(
            &r,
            "write_file",
            json!({"path": "host-link", "content": "x"})
        )
        .is_error
    );
    // Malformed arguments are a result, not a crash.
    assert!(r.run("read_file", "not json", Instant::now()).is_error);
    assert!(
        run(
            &r,
            "edit_file",
            json!({"path": "notes/a.md", "old_text": "absent", "new_text": "x"})
        )
        .is_error
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exec_allowlist_is_checked_on_the_real_program() {
    let (r, dir) = registry("exec", &["echo", "ls"]);
    let o = run(
        &r,
        "exec",
        json!({"command": "echo", "args": ["hi", "there"]}),
    );
    assert!(!o.is_error, "{}", o.content);
    assert!(o.content.starts_with("hi there"));
    let o = run(&r, "exec", json!({"command": "echo split words"}));
    assert!(o.content.starts_with("split words"), "{}", o.content);
    assert!(
        run(
            &r,
            "exec",
            json!({"command": "cat", "args": ["/etc/hostname"]})
        )
        .is_error,
        "not allowed"
    );
    for smuggle in [
        "echo a; cat /etc/passwd",
        "echo $(cat /etc/passwd)",
        "echo `id`",
        "ls | cat",
        "echo a && cat x",
        "echo a > f",
        "echo \"$HOME\"",
    ] {
        let o = run(&r, "exec", json!({"command": smuggle}));
        assert!(o.is_error, "{smuggle:?} must be refused: {}", o.content);
    }
    // A workspace script named like an allowed program is not that program.
    std::fs::write(dir.join("ls"), "#!/bin/sh\necho pwned\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("ls"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let o = run(&r, "exec", json!({"command": "./ls"}));
    assert!(
        o.is_error && o.content.contains("not in tools.exec.allow"),
        "{}",
        o.content
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exec_times_out_and_caps_output() {
    let dir = std::env::temp_dir().join(format!("pinch-tools-cap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut cfg = Config::default();
    cfg.tools.exec.allow = vec!["sleep".into(), "yes".into()];
    cfg.tools.exec.timeout_seconds = 1;
    cfg.tools.exec.max_output_bytes = 1000;
    cfg.tools.web_fetch.enabled = false;
    let mut r = Registry::new(&cfg, &dir).expect("registry");
    unconfined_where_unsupported(&mut r);
    let started = Instant::now();
    let o = run(&r, "exec", json!({"command": "sleep", "args": ["30"]}));
    assert!(o.is_error && o.summary.contains("timed out"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let o = run(&r, "exec", json!({"command": "yes"}));
    assert!(
        o.content.contains("output truncated: 1000 of"),
        "{}",
        crate::util::truncate(&o.content, 200)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn memory_sections() {
    let (r, dir) = registry("mem", &[]);
    std::fs::write(
        dir.join("MEMORY.md"),
        "# Memory\n\n## Pets\n- a cat\n\n## Work\n- nurse\n",
    )
    .expect("write");
    assert!(
        !run(
            &r,
            "memory",
            json!({"action": "replace_section", "section": "Pets", "text": "- a dog named Rex"})
        )
        .is_error
    );
    assert!(
        !run(
            &r,
            "memory",
            json!({"action": "append", "text": "likes tea"})
        )
        .is_error
    );
    let m = run(&r, "memory", json!({"action": "read"})).content;
    assert!(
        m.contains("- a dog named Rex")
            && !m.contains("a cat")
            && m.contains("- nurse")
            && m.contains("- likes tea"),
        "{m}"
    );
    assert!(
        run(
            &r,
            "memory",
            json!({"action": "append", "text": "x".repeat(20_000)})
        )
        .is_error,
        "capped"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn helpers() {
    assert_eq!(
        split_words("a 'b c' \"d e\" f\\ g").expect("ok"),
        vec!["a", "b c", "d e", "f g"]
    );
    let t = html_to_text("<html><head><title>T</title><style>x{}</style></head><body><h1>Hi</h1><p>a &amp; b</p><script>evil()</script></body></html>");
    assert_eq!(t, "Hi\na & b");
    assert_eq!(
        summarize_args(r#"{"path":"a.md","content":"xyz"}"#),
        "content=xyz path=a.md"
    );
}

#[test]
fn programs_are_refused_without_a_sandbox() {
    let (mut r, dir) = registry("nosandbox", &["echo"]);
    r.sandbox = crate::sandbox::Mode::Refused("the kernel has no Landlock".into());
    let o = run(
        &r,
        "exec",
        serde_json::json!({"command": "echo", "args": ["hi"]}),
    );
    assert!(o.is_error, "{}", o.content);
    assert!(o.content.contains("programs are refused"), "{}", o.content);
    assert!(o.content.contains("tools.exec.sandbox"), "{}", o.content);
    // Switched off explicitly, programs run (unconfined).
    r.sandbox = crate::sandbox::Mode::Off;
    let o = run(
        &r,
        "exec",
        serde_json::json!({"command": "echo", "args": ["hi"]}),
    );
    assert!(!o.is_error, "{}", o.content);
    assert!(o.content.contains("hi"), "{}", o.content);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn skill_files_are_read_only_for_file_tools() {
    let (r, dir) = registry("skillsro", &[]);
    std::fs::create_dir_all(r.workspace().join("skills/demo/scripts")).expect("mkdir");
    std::fs::write(
        r.workspace().join("skills/demo/scripts/demo.sh"),
        "echo ok\n",
    )
    .expect("w");
    for (name, args) in [
        (
            "write_file",
            serde_json::json!({"path": "skills/demo/scripts/demo.sh", "content": "x"}),
        ),
        (
            "write_file",
            serde_json::json!({"path": "skills/other/SKILL.md", "content": "x"}),
        ),
        (
            "write_file",
            serde_json::json!({"path": "notes/SKILL.md", "content": "x"}),
        ),
        (
            "edit_file",
            serde_json::json!({"path": "skills/demo/scripts/demo.sh", "old_text": "ok", "new_text": "no"}),
        ),
    ] {
        let o = run(&r, name, args.clone());
        assert!(o.is_error, "{name} {args}: {}", o.content);
        assert!(o.content.contains("read-only"), "{}", o.content);
    }
    assert_eq!(
        std::fs::read_to_string(r.workspace().join("skills/demo/scripts/demo.sh")).expect("r"),
        "echo ok\n"
    );
    let o = run(
        &r,
        "write_file",
        serde_json::json!({"path": "notes/skills.md", "content": "fine"}),
    );
    assert!(!o.is_error, "{}", o.content);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_compact_set_reaches_every_tool_through_fewer_schemas() {
    let dir = std::env::temp_dir().join(format!("pinch-tools-compact-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let demo = dir.join("skills/demo");
    std::fs::create_dir_all(demo.join("scripts")).expect("mkdir");
    std::fs::write(
        demo.join("SKILL.md"),
        "---\nname: demo\ndescription: a demo skill\ntool: demo_run | scripts/demo.sh | runs the demo with ARGS\n---\nUse demo_run.\n",
    )
    .expect("skill");
    let script = demo.join("scripts/demo.sh");
    std::fs::write(&script, "#!/bin/sh\necho demo-ran \"$1\"\n").expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cfg = Config::default();
    cfg.tools.web_fetch.enabled = false;
    let mut r = Registry::new(&cfg, &dir).expect("registry");
    unconfined_where_unsupported(&mut r);
    r.enable_cron(std::sync::Arc::new(|_| true));
    let names = |compact: bool| -> Vec<String> {
        r.specs_for(compact)
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    let (full, compact) = (names(false), names(true));
    for name in [
        "read_file",
        "write_file",
        "edit_file",
        "memory",
        "skill",
        "cron",
    ] {
        assert!(compact.iter().any(|n| n == name), "{name}: {compact:?}");
    }
    for name in ["list_dir", "demo_run"] {
        assert!(full.iter().any(|n| n == name), "{name}: {full:?}");
        assert!(!compact.iter().any(|n| n == name), "{name}: {compact:?}");
    }
    assert_eq!(r.specs().len(), full.len());
    // What the compact set leaves out is reached another way: read_file
    // lists a directory, and a skill's tool runs through `skill` by name,
    // listed (with its description) when the skill is loaded.
    let listing = run(&r, "read_file", serde_json::json!({"path": "."}));
    assert!(!listing.is_error, "{}", listing.content);
    assert!(listing.content.contains("skills/"), "{}", listing.content);
    let loaded = run(&r, "skill", serde_json::json!({"name": "demo"}));
    assert!(
        loaded
            .content
            .contains("- demo_run: runs the demo with ARGS"),
        "{}",
        loaded.content
    );
    let ran = run(
        &r,
        "skill",
        serde_json::json!({"name": "demo", "run": "demo_run", "args": ["x1"]}),
    );
    assert!(!ran.is_error, "{}", ran.content);
    assert!(ran.content.contains("demo-ran x1"), "{}", ran.content);
    // The tool itself still answers when a model calls it by name.
    let direct = run(&r, "demo_run", serde_json::json!({"args": ["x2"]}));
    assert!(direct.content.contains("demo-ran x2"), "{}", direct.content);
    let _ = std::fs::remove_dir_all(dir);
}
