//! `pinch skills list | install | remove`: the skills the assistant can
//! use, where each came from and why an ineligible one is not offered;
//! installing a skill folder, a `.tar.gz` (the format OpenClaw's skill hub
//! hands out) or an https URL pinned by its SHA-256 into the workspace's
//! `skills/`; removing one. Also the skills lines of `pinch status`.
//!
//! Archives are unpacked by the system `tar` (no decompressor in the
//! binary): the member list is checked first (no absolute paths, no `..`,
//! only files and folders, bounded count and size), extraction goes into a
//! fresh folder with `--no-same-owner`, and the result is walked again
//! before it is moved into place. A skill with a symlink, a device or a path
//! that would leave its folder is refused whole.

use super::Global;
use crate::agent::skills::{self, Origin, Skill};
use crate::home::Home;
use lexopt::prelude::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const HELP: &str =
    "Usage: pinch skills <list | install SOURCE [--sha256 HEX] [--force] | remove NAME>

  list                     every skill found: name, origin (workspace, managed, bundled),
                           eligible or the reason it is not offered
  install DIR              copy a skill folder (holding SKILL.md) into the workspace's skills/
  install FILE.tar.gz      unpack a skill archive (as downloaded from OpenClaw's skill hub)
  install URL --sha256 HEX download an https archive and install it if its SHA-256 matches
  remove NAME              delete a workspace or managed skill (bundled ones cannot be removed)

  --force                  replace an installed skill of the same name";

/// Members accepted in one archive, and their total size.
const MAX_ARCHIVE_MEMBERS: usize = 2000;
const MAX_ARCHIVE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest download accepted.
const MAX_DOWNLOAD_BYTES: u64 = 32 * 1024 * 1024;

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    let mut args: Vec<String> = Vec::new();
    let mut sha256: Option<String> = None;
    let mut force = false;
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("sha256") => sha256 = Some(super::val(p)?),
            Long("force") => force = true,
            Value(v) => args.push(
                v.into_string()
                    .map_err(|_| "argument is not valid UTF-8".to_string())?,
            ),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let workspace = workspace_dir(g, home);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match argv.as_slice() {
        ["list"] => {
            list(&workspace);
            Ok(0)
        }
        ["install", source] => {
            let dest_root = workspace.join("skills");
            let name = install(source, sha256.as_deref(), force, &dest_root)?;
            println!(
                "installed skill {name} into {}",
                dest_root.join(&name).display()
            );
            let (found, _) = skills::discover_all(&workspace);
            if let Some(s) = found.iter().find(|s| s.name == name) {
                if !s.eligible {
                    println!("not offered yet: {}", s.missing.join("; "));
                }
            }
            Ok(0)
        }
        ["remove", name] => {
            remove(&workspace, name)?;
            println!("removed skill {name}");
            Ok(0)
        }
        _ => {
            println!("{HELP}");
            Ok(2)
        }
    }
}

/// The workspace in use: `agents.defaults.workspace`, else `$PINCH_HOME/workspace`.
pub(super) fn workspace_dir(g: &Global, home: &Home) -> PathBuf {
    super::load(g, home)
        .ok()
        .and_then(|l| l.cfg.agents.defaults.workspace.clone())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.workspace())
}

fn status_word(s: &Skill) -> String {
    if s.eligible {
        "eligible".into()
    } else {
        format!("not offered: {}", s.missing.join("; "))
    }
}

fn list(workspace: &Path) {
    let (found, broken) = skills::discover_all(workspace);
    if found.is_empty() && broken.is_empty() {
        println!(
            "no skills found (looked in {})",
            workspace.join("skills").display()
        );
        return;
    }
    for s in &found {
        println!(
            "{:<20} {:<9} {}  ({})",
            s.name,
            s.origin.as_str(),
            status_word(s),
            s.dir.display()
        );
    }
    for b in &broken {
        println!(
            "{:<20} {:<9} unreadable: {}  ({})",
            b.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            b.origin.as_str(),
            b.error,
            b.dir.display()
        );
    }
}

/// The skills lines of `pinch status`: counts, and each skill not offered
/// with the reason.
pub(super) fn print_status(g: &Global, home: &Home) {
    let workspace = workspace_dir(g, home);
    let (found, broken) = skills::discover_all(&workspace);
    let eligible = found.iter().filter(|s| s.eligible).count();
    println!(
        "skills: {eligible} offered, {} not offered, {} unreadable",
        found.len() - eligible,
        broken.len()
    );
    for s in found.iter().filter(|s| !s.eligible) {
        println!("  {} ({}): {}", s.name, s.origin.as_str(), status_word(s));
    }
    for b in &broken {
        println!("  {}: unreadable: {}", b.dir.display(), b.error);
    }
}

fn remove(workspace: &Path, name: &str) -> Result<(), String> {
    let (found, _) = skills::discover_all(workspace);
    let s = found
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no skill named {name:?}; `pinch skills list` shows them"))?;
    if s.origin == Origin::Bundled {
        return Err(format!(
            "{name} is bundled with pinch ({}); it cannot be removed, only shadowed by a workspace skill of the same name",
            s.dir.display()
        ));
    }
    let meta = std::fs::symlink_metadata(&s.dir).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        std::fs::remove_file(&s.dir)
    } else {
        std::fs::remove_dir_all(&s.dir)
    }
    .map_err(|e| format!("cannot remove {}: {e}", s.dir.display()))
}

/// Installs from a folder, an archive or a URL; returns the skill's name.
pub fn install(
    source: &str,
    sha256: Option<&str>,
    force: bool,
    dest_root: &Path,
) -> Result<String, String> {
    std::fs::create_dir_all(dest_root)
        .map_err(|e| format!("cannot create {}: {e}", dest_root.display()))?;
    let staging = dest_root.join(format!(".install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let result = install_into(source, sha256, force, dest_root, &staging);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn install_into(
    source: &str,
    sha256: Option<&str>,
    force: bool,
    dest_root: &Path,
    staging: &Path,
) -> Result<String, String> {
    let unpacked = staging.join("unpacked");
    if source.starts_with("https://") || source.starts_with("http://") {
        let want = sha256.ok_or(
            "a URL needs --sha256 HEX (the archive's SHA-256, from the page you got the link from)",
        )?;
        let archive = staging.join("download.tar.gz");
        download(source, &archive)?;
        let got = sha256_file(&archive)?;
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(format!(
                "the download's SHA-256 is {got}, not {want}; nothing was installed"
            ));
        }
        unpack(&archive, &unpacked)?;
    } else {
        let path = Path::new(source);
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{source}: {e}"))?;
        if let Some(want) = sha256 {
            let got = sha256_file(path)?;
            if !got.eq_ignore_ascii_case(want.trim()) {
                return Err(format!("{source}: SHA-256 is {got}, not {want}"));
            }
        }
        if meta.is_dir() {
            copy_checked(path, &unpacked, 0)?;
        } else if meta.is_file() {
            unpack(path, &unpacked)?;
        } else {
            return Err(format!("{source}: not a folder, archive or URL"));
        }
    }
    // Walk what we have before trusting it.
    check_tree(&unpacked, 0)?;
    let root = skill_root(&unpacked)?;
    if !root.join("SKILL.md").is_file() && root.join("skill.md").is_file() {
        std::fs::rename(root.join("skill.md"), root.join("SKILL.md")).map_err(|e| e.to_string())?;
    }
    let text = skills::read_skill_md(&root.join("SKILL.md"))?;
    let fm = skills::parse_frontmatter(&text).map_err(|e| format!("SKILL.md: {e}"))?;
    let dest = dest_root.join(&fm.name);
    if std::fs::symlink_metadata(&dest).is_ok() {
        if !force {
            return Err(format!(
                "a skill {} is already installed at {}; add --force to replace it",
                fm.name,
                dest.display()
            ));
        }
        std::fs::remove_dir_all(&dest)
            .map_err(|e| format!("cannot replace {}: {e}", dest.display()))?;
    }
    std::fs::rename(&root, &dest)
        .map_err(|e| format!("cannot move into {}: {e}", dest.display()))?;
    Ok(fm.name)
}

/// The folder holding SKILL.md: the top, or its only subfolder.
fn skill_root(dir: &Path) -> Result<PathBuf, String> {
    if dir.join("SKILL.md").is_file() || dir.join("skill.md").is_file() {
        return Ok(dir.to_path_buf());
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    match entries.as_slice() {
        [only]
            if only.is_dir()
                && (only.join("SKILL.md").is_file() || only.join("skill.md").is_file()) =>
        {
            Ok(only.clone())
        }
        _ => Err("no SKILL.md at the top of the skill (or of its one folder)".into()),
    }
}

/// Refuses anything that is not a plain file or folder, and deep nesting.
fn check_tree(dir: &Path, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("{}: nested too deeply", dir.display()));
    }
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).map_err(|e| e.to_string())?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            return Err(format!(
                "{}: the skill contains a symlink; refused (a skill's files must stay in its folder)",
                p.display()
            ));
        } else if ft.is_dir() {
            check_tree(&p, depth + 1)?;
        } else if !ft.is_file() {
            return Err(format!("{}: not a regular file; refused", p.display()));
        }
    }
    Ok(())
}

/// Copies a skill folder, refusing symlinks and special files.
fn copy_checked(from: &Path, to: &Path, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("{}: nested too deeply", from.display()));
    }
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    for e in std::fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).map_err(|e| e.to_string())?;
        let ft = meta.file_type();
        let dest = to.join(e.file_name());
        if ft.is_symlink() {
            return Err(format!(
                "{}: the skill contains a symlink; refused (a skill's files must stay in its folder)",
                p.display()
            ));
        } else if ft.is_dir() {
            if e.file_name() == ".git" {
                continue;
            }
            copy_checked(&p, &dest, depth + 1)?;
        } else if ft.is_file() {
            std::fs::copy(&p, &dest).map_err(|e| format!("cannot copy {}: {e}", p.display()))?;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())?;
        } else {
            return Err(format!("{}: not a regular file; refused", p.display()));
        }
    }
    Ok(())
}

/// One archive member as `tar -tv` lists it.
#[derive(Debug, PartialEq)]
pub struct Member {
    pub kind: char,
    pub size: u64,
    pub name: String,
}

/// Checks an archive's member list (names from `tar -t`, long lines from
/// `tar -tv`): only files and folders, no absolute paths, no `..`, bounded.
pub fn check_members(names: &str, long: &str) -> Result<Vec<Member>, String> {
    let names: Vec<&str> = names.lines().collect();
    let long: Vec<&str> = long.lines().collect();
    if names.len() != long.len() {
        return Err(
            "the archive's member list is ambiguous (a name with a newline?); refused".into(),
        );
    }
    if names.len() > MAX_ARCHIVE_MEMBERS {
        return Err(format!(
            "the archive has {} members; at most {MAX_ARCHIVE_MEMBERS} are accepted",
            names.len()
        ));
    }
    let mut total: u64 = 0;
    let mut out = Vec::new();
    for (name, line) in names.iter().zip(long.iter()) {
        let kind = line.chars().next().unwrap_or('?');
        if kind != '-' && kind != 'd' {
            return Err(format!(
                "archive member {name:?} is a {} — only files and folders are accepted; refused",
                match kind {
                    'l' => "symlink",
                    'h' => "hard link",
                    'c' | 'b' => "device",
                    'p' => "fifo",
                    _ => "special entry",
                }
            ));
        }
        if name.starts_with('/') || name.split('/').any(|c| c == "..") || name.contains('\\') {
            return Err(format!(
                "archive member {name:?} would land outside the skill's folder; refused"
            ));
        }
        let size = line
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("cannot read the size of archive member {name:?}"))?;
        total = total.saturating_add(size);
        if total > MAX_ARCHIVE_BYTES {
            return Err(format!(
                "the archive unpacks to more than {MAX_ARCHIVE_BYTES} bytes; refused"
            ));
        }
        out.push(Member {
            kind,
            size,
            name: name.to_string(),
        });
    }
    Ok(out)
}

fn tar(args: &[&str], archive: &Path) -> Result<String, String> {
    let out = Command::new("tar")
        .args(args)
        .arg(archive)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .output()
        .map_err(|e| format!("cannot run tar: {e} (install it: apt install tar)"))?;
    if !out.status.success() {
        return Err(format!(
            "{} is not a readable .tar.gz: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| "archive member names are not UTF-8; refused".into())
}

fn unpack(archive: &Path, into: &Path) -> Result<(), String> {
    let names = tar(&["-tzf"], archive)?;
    let long = tar(&["-tvzf"], archive)?;
    check_members(&names, &long)?;
    std::fs::create_dir_all(into).map_err(|e| e.to_string())?;
    let out = Command::new("tar")
        .args(["-xzf"])
        .arg(archive)
        .arg("-C")
        .arg(into)
        .args([
            "--no-same-owner",
            "--no-same-permissions",
            "--no-overwrite-dir",
        ])
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot unpack {}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn download(url: &str, to: &Path) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        if host != "127.0.0.1" && host != "localhost" && host != "[::1]" {
            return Err("only https URLs are accepted (plain http only from this machine)".into());
        }
    }
    let agent = crate::net::new_agent(ureq::Agent::config_builder().build());
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .read_to_vec()
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    std::fs::write(to, bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &data);
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lists_are_checked() {
        let ok = check_members(
            "todo/\ntodo/SKILL.md\ntodo/scripts/run.sh\n",
            "drwxr-xr-x u/g 0 2026-01-01 00:00 todo/\n-rw-r--r-- u/g 120 2026-01-01 00:00 todo/SKILL.md\n-rwxr-xr-x u/g 30 2026-01-01 00:00 todo/scripts/run.sh\n",
        )
        .expect("ok");
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[1].size, 120);
        let link = check_members(
            "a/x\n",
            "lrwxrwxrwx u/g 0 2026-01-01 00:00 a/x -> /etc/passwd\n",
        );
        assert!(link.unwrap_err().contains("symlink"));
        let up = check_members("../x\n", "-rw-r--r-- u/g 1 2026-01-01 00:00 ../x\n");
        assert!(up.unwrap_err().contains("outside"));
        let abs = check_members("/x\n", "-rw-r--r-- u/g 1 2026-01-01 00:00 /x\n");
        assert!(abs.unwrap_err().contains("outside"));
        let huge = check_members("x\n", "-rw-r--r-- u/g 99999999999 2026-01-01 00:00 x\n");
        assert!(huge.unwrap_err().contains("more than"));
        assert!(check_members("a\nb\n", "-rw u/g 1 d t a\n").is_err());
    }
}
