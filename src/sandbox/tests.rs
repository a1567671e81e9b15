//! The sandbox against the real kernel: what a child can and cannot reach.
//! These run as root in CI, where file permissions would allow everything:
//! only Landlock stands between the child and `/etc/shadow`.

use super::*;
use std::process::Command;

struct Dirs {
    home: PathBuf,
    workspace: PathBuf,
}

impl Dirs {
    fn new(tag: &str) -> Dirs {
        let home = std::env::temp_dir().join(format!("pinch-sbx-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let workspace = home.join("workspace");
        std::fs::create_dir_all(workspace.join("skills/demo/scripts")).expect("mkdir");
        std::fs::create_dir_all(workspace.join("notes")).expect("mkdir");
        std::fs::write(home.join(".env"), "OPENAI_API_KEY=sk-secret-dotenv\n").expect("env");
        std::fs::write(home.join("pinch.json"), "{\"k\": \"sk-secret-config\"}").expect("cfg");
        std::fs::write(
            workspace.join("skills/demo/scripts/demo.sh"),
            "#!/bin/sh\necho demo\n",
        )
        .expect("script");
        std::fs::write(workspace.join("notes/a.txt"), "note\n").expect("note");
        let home = std::fs::canonicalize(home).expect("canon");
        let workspace = home.join("workspace");
        Dirs { home, workspace }
    }

    fn policy(&self) -> Policy {
        Policy {
            workspace: self.workspace.clone(),
            extra_programs: Vec::new(),
            readable: Vec::new(),
            secret_roots: vec![self.home.clone()],
        }
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Runs `program args` in the sandbox; (exit code, stdout + stderr).
fn run_in(dirs: &Dirs, program: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut prepared = prepare(&dirs.policy(), true).expect("prepare");
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(&dirs.workspace);
    apply(
        &mut cmd,
        &mut prepared,
        &dirs.workspace,
        Limits {
            cpu_seconds: 10,
            memory_bytes: 512 << 20,
            file_bytes: 1 << 20,
            open_files: 64,
        },
    );
    let out = cmd.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn landlock_or_skip(test: &str) -> bool {
    match probe() {
        Support::Landlock { .. } => true,
        Support::Unavailable(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            false
        }
    }
}

#[test]
fn secrets_are_unreachable_even_for_root() {
    if !landlock_or_skip("secrets_are_unreachable_even_for_root") {
        return;
    }
    let d = Dirs::new("secrets");
    let env = d.home.join(".env");
    let cfg = d.home.join("pinch.json");
    for path in [
        "/etc/shadow",
        env.to_str().expect("utf8"),
        cfg.to_str().expect("utf8"),
    ] {
        let (code, out) = run_in(&d, "/bin/cat", &[path]);
        assert_ne!(code, Some(0), "cat {path} succeeded: {out}");
        assert!(out.contains("Permission denied"), "cat {path}: {out}");
        assert!(!out.contains("sk-secret"), "{out}");
    }
    // The gateway's (here: the test process's) environ is closed: /proc is
    // outside the rules.
    let environ = format!("/proc/{}/environ", std::process::id());
    let (code, out) = run_in(&d, "/bin/cat", &[&environ]);
    assert_ne!(code, Some(0), "read {environ}: {out}");
    // Ordinary work still runs: system files and the workspace.
    let (code, out) = run_in(&d, "/bin/cat", &["/etc/passwd", "notes/a.txt"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("root:") && out.contains("note"), "{out}");
    let (code, out) = run_in(&d, "/bin/ls", &["/usr/bin"]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn writes_reach_workspace_data_and_temp_but_not_skills() {
    if !landlock_or_skip("writes_reach_workspace_data_and_temp_but_not_skills") {
        return;
    }
    let d = Dirs::new("writes");
    let (code, out) = run_in(&d, "/bin/cp", &["notes/a.txt", "notes/b.txt"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(d.workspace.join("notes/b.txt").exists());
    let (code, out) = run_in(
        &d,
        "/bin/sh",
        &["-c", "echo x > \"$TMPDIR/t\" && cat \"$TMPDIR/t\""],
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run_in(
        &d,
        "/bin/cp",
        &["notes/a.txt", "skills/demo/scripts/demo.sh"],
    );
    assert_ne!(code, Some(0), "overwrote a skill script: {out}");
    let (code, out) = run_in(&d, "/bin/sh", &["-c", "echo evil > skills/demo/SKILL.md"]);
    assert_ne!(code, Some(0), "created SKILL.md: {out}");
    assert_eq!(
        std::fs::read_to_string(d.workspace.join("skills/demo/scripts/demo.sh")).expect("read"),
        "#!/bin/sh\necho demo\n"
    );
    let (code, out) = run_in(&d, "/bin/cp", &["notes/a.txt", "/tmp/escaped.txt"]);
    assert_ne!(code, Some(0), "wrote outside: {out}");
}

#[test]
fn environment_is_scrubbed() {
    if !landlock_or_skip("environment_is_scrubbed") {
        return;
    }
    let d = Dirs::new("env");
    let (code, out) = run_in(&d, "/usr/bin/env", &[]);
    assert_eq!(code, Some(0), "{out}");
    let mut names: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort();
    assert_eq!(names, ["HOME", "LANG", "PATH", "TMPDIR"], "{out}");
}

#[test]
fn a_workspace_holding_the_home_is_refused() {
    let d = Dirs::new("wide");
    let mut p = d.policy();
    p.workspace = d.home.clone();
    let e = prepare(&p, true).err().expect("refused");
    assert!(e.contains("holds secrets"), "{e}");
}

#[test]
fn eperm_is_named_as_a_seccomp_filter_with_its_fix() {
    let nspawn = Surroundings {
        seccomp: Some(2),
        container: Some("systemd-nspawn".into()),
        in_service: true,
    };
    let why = unavailable_reason(Some(libc::EPERM), &nspawn);
    assert!(why.contains("a seccomp filter denies"), "{why}");
    assert!(
        why.contains("--system-call-filter='landlock_create_ruleset landlock_add_rule landlock_restrict_self'"),
        "{why}"
    );
    assert!(why.contains("SystemCallFilter="), "{why}");
    let docker = Surroundings {
        seccomp: Some(2),
        container: Some("docker".into()),
        in_service: false,
    };
    let why = unavailable_reason(Some(libc::EPERM), &docker);
    assert!(why.contains("docker container"), "{why}");
    assert!(why.contains("seccomp profile"), "{why}");
    let plain = Surroundings {
        seccomp: Some(2),
        container: None,
        in_service: false,
    };
    let why = unavailable_reason(Some(libc::EPERM), &plain);
    assert!(why.contains("whatever starts pinch"), "{why}");
    let no_filter = Surroundings {
        seccomp: Some(0),
        ..plain
    };
    let why = unavailable_reason(Some(libc::EPERM), &no_filter);
    assert!(why.contains("no seccomp filter"), "{why}");
}

#[test]
fn kernel_answers_keep_their_own_reasons() {
    let around = Surroundings::default();
    assert!(unavailable_reason(Some(libc::ENOSYS), &around).contains("Linux 5.13"));
    assert!(unavailable_reason(Some(libc::EOPNOTSUPP), &around).contains("lsm="));
    let other = unavailable_reason(Some(libc::EINVAL), &around);
    assert!(
        other.starts_with("Landlock is not usable here: "),
        "{other}"
    );
    assert!(unavailable_reason(None, &around).contains("unknown error"));
}
