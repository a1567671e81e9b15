//! The `exec` tool and every program the agent starts: the allowlist on
//! the resolved program, then the sandbox of `crate::sandbox` with a timeout,
//! an output cap and rlimits, in a cleared environment.

use super::shell_words::split_words;
use super::{cap, Output, Registry};
use crate::sandbox::resolve_program;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

impl Registry {
    pub(super) fn exec(
        &self,
        command: Option<&str>,
        args: Vec<String>,
        deadline: Instant,
    ) -> Result<Output, String> {
        let command = command.ok_or("missing \"command\"")?.trim();
        if self.exec.allow_shell && args.is_empty() && split_words(command).is_err() {
            // allowShell: shell syntax runs under `sh -c`, inside the sandbox
            // (the config refuses allowShell with the sandbox off).
            let sh = resolve_program("sh", &self.workspace).ok_or("sh: not found on PATH")?;
            return self.run_program(
                &sh,
                vec!["-c".into(), command.to_string()],
                &self.workspace,
                &[],
                deadline,
            );
        }
        let (program, argv) = if args.is_empty() && command.contains(char::is_whitespace) {
            let words = split_words(command)?;
            let (first, rest) = words.split_first().ok_or("empty command")?;
            (first.clone(), rest.to_vec())
        } else {
            (command.to_string(), args)
        };
        if program.is_empty() {
            return Err("empty command".into());
        }
        let resolved = resolve_program(&program, &self.workspace)
            .ok_or_else(|| format!("{program}: not found on PATH"))?;
        if !self.exec_allowed.iter().any(|a| *a == resolved) {
            return Err(format!(
                "{program} ({}) is not in tools.exec.allow; allowed: {}",
                resolved.display(),
                self.exec.allow.join(", ")
            ));
        }
        self.run_program(&resolved, argv, &self.workspace, &[], deadline)
    }

    /// Runs a program with a cleared environment plus `extra_env` (a
    /// skill's declared variables).
    pub(super) fn run_program(
        &self,
        program: &Path,
        argv: Vec<String>,
        cwd: &Path,
        extra_env: &[(String, String)],
        deadline: Instant,
    ) -> Result<Output, String> {
        use std::os::unix::process::CommandExt;
        let enforce = match &self.sandbox {
            crate::sandbox::Mode::Enforced { .. } => true,
            crate::sandbox::Mode::Off => false,
            crate::sandbox::Mode::Refused(why) => {
                return Err(format!(
                    "programs are refused: the sandbox is unavailable ({why}). fix: run on Linux 5.13+ with Landlock enabled, or set tools.exec.sandbox to \"off\" to run programs unconfined"
                ))
            }
        };
        let timeout = Duration::from_secs(self.exec.timeout_seconds)
            .min(deadline.saturating_duration_since(Instant::now()));
        let mut extra_programs: Vec<PathBuf> = self.exec_allowed.clone();
        extra_programs.push(program.to_path_buf());
        let mut readable: Vec<PathBuf> = self.skills.iter().map(|s| s.dir.clone()).collect();
        crate::sort::sort(&mut readable);
        readable.dedup();
        let policy = crate::sandbox::Policy {
            workspace: self.workspace.clone(),
            extra_programs,
            readable,
            secret_roots: self.secret_roots.clone(),
        };
        let mut prepared = crate::sandbox::prepare(&policy, enforce)?;
        let mut cmd = Command::new(program);
        cmd.args(&argv)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        crate::sandbox::apply(
            &mut cmd,
            &mut prepared,
            &self.workspace,
            crate::sandbox::Limits {
                cpu_seconds: self.exec.max_cpu_seconds,
                memory_bytes: self.exec.max_memory_mb.saturating_mul(1024 * 1024),
                file_bytes: 64 * 1024 * 1024,
                open_files: 256,
            },
        );
        // A skill's declared variables, on top of the scrubbed environment.
        cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
        let started = Instant::now();
        let spawned = cmd.spawn();
        // The child holds its own copy of the ruleset now; the temp folder
        // lives until `prepared` drops at the end of this call.
        let mut child = spawned.map_err(|e| format!("{}: cannot start: {e}", program.display()))?;
        let max = self.exec.max_output_bytes;
        let stderr = child.stderr.take();
        let err_reader = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || stderr.map(|s| read_capped(s, max)).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take();
        let out_reader = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || stdout.map(|s| read_capped(s, max)).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) => {}
                Err(_) => break None,
            }
            if started.elapsed() > timeout {
                timed_out = true;
                // Kill the whole process group the child leads.
                // SAFETY: plain syscall with the child's pid as the group id.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.kill();
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let code = status.and_then(|s| s.code());
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut content = out;
        if !err.is_empty() {
            content.push_str("\n[stderr]\n");
            content.push_str(&err);
        }
        if timed_out {
            return Ok(Output {
                content: cap(format!("{content}\n[killed after {} s]", timeout.as_secs())),
                is_error: true,
                summary: format!("{name}: timed out"),
            });
        }
        let ok = code == Some(0);
        let summary = format!(
            "{name} exited {}",
            code.map(|c| c.to_string())
                .unwrap_or_else(|| "by signal".into())
        );
        Ok(Output {
            content: cap(format!(
                "{content}\n[exit {}]",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "signal".into())
            )),
            is_error: !ok,
            summary,
        })
    }
}

/// `$PINCH_HOME` and `$CREDENTIALS_DIRECTORY` (canonical): what no program
/// started for the agent may reach, except the workspace inside the home.
pub(super) fn secret_roots() -> Vec<PathBuf> {
    let mut roots = vec![crate::home::Home::from_env().root];
    if let Some(c) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        roots.push(PathBuf::from(c));
    }
    roots
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect()
}

fn read_capped(mut r: impl Read, max: usize) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut total = 0usize;
    loop {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                if buf.len() < max {
                    let take = n.min(max - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
        }
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if total > max {
        s.push_str(&format!("\n[output truncated: {max} of {total} bytes]"));
    }
    s
}
