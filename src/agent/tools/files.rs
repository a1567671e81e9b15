//! The workspace file tools: `read_file`, `write_file`, `edit_file` and
//! `list_dir`, confined to the workspace (paths are canonicalised, so `..`
//! and symlinks cannot escape; skill folders are read-only).

use super::{Output, Registry};
use std::path::{Component, Path, PathBuf};

/// Largest file `read_file` returns and `write_file` accepts.
pub(super) const MAX_FILE: usize = 256 * 1024;

impl Registry {
    /// Resolves a workspace path for reading (must exist).
    pub(super) fn existing(&self, rel: Option<&str>) -> Result<PathBuf, String> {
        let rel = rel.ok_or("missing \"path\"")?;
        let p =
            std::fs::canonicalize(self.workspace.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        if !p.starts_with(&self.workspace) {
            return Err(format!(
                "{rel}: outside the workspace; only files under the workspace are accessible"
            ));
        }
        Ok(p)
    }

    /// Resolves a workspace path for writing: the deepest existing ancestor
    /// is canonicalised (resolving symlinks) and must be inside the
    /// workspace; the rest may not contain `..`.
    pub(super) fn writable(&self, rel: Option<&str>) -> Result<PathBuf, String> {
        let rel = rel.ok_or("missing \"path\"")?;
        let full = self.workspace.join(rel);
        let mut existing = full.clone();
        let mut rest: Vec<std::ffi::OsString> = Vec::new();
        while !existing.exists() {
            match (existing.file_name(), existing.parent()) {
                (Some(n), Some(parent)) => {
                    rest.push(n.to_os_string());
                    existing = parent.to_path_buf();
                }
                _ => return Err(format!("{rel}: not a usable path")),
            }
        }
        if Path::new(rel)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
            && !rest.is_empty()
        {
            return Err(format!("{rel}: `..` is not allowed in new paths"));
        }
        let mut p = std::fs::canonicalize(&existing).map_err(|e| format!("{rel}: {e}"))?;
        if !p.starts_with(&self.workspace) {
            return Err(format!(
                "{rel}: outside the workspace; only files under the workspace are accessible"
            ));
        }
        for n in rest.iter().rev() {
            p.push(n);
        }
        self.refuse_skills(rel, &p)?;
        Ok(p)
    }

    /// Skills are code the agent runs: their folders are not the agent's to
    /// change (neither SKILL.md nor scripts), here or under Landlock.
    pub(super) fn refuse_skills(&self, rel: &str, p: &Path) -> Result<(), String> {
        let under_skills = p.starts_with(self.workspace.join("skills"))
            || self.skills.iter().any(|s| p.starts_with(&s.dir));
        if under_skills || p.file_name().is_some_and(|n| n == "SKILL.md") {
            return Err(format!(
                "{rel}: skills are read-only for the assistant; a person edits them in the workspace's skills/ folder"
            ));
        }
        Ok(())
    }

    pub(super) fn read_file(&self, rel: Option<&str>) -> Result<Output, String> {
        let p = self.existing(rel)?;
        if p.is_dir() {
            return self.list_dir(rel);
        }
        let meta = std::fs::metadata(&p).map_err(|e| e.to_string())?;
        if meta.len() as usize > MAX_FILE {
            return Err(format!(
                "file is {} bytes; read_file returns at most {MAX_FILE}",
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read as text: {e}"))?;
        let summary = format!("read {} ({} bytes)", rel.unwrap_or(""), text.len());
        Ok(Output::ok(text, summary))
    }

    pub(super) fn write_file(
        &self,
        rel: Option<&str>,
        content: Option<&str>,
    ) -> Result<Output, String> {
        let content = content.ok_or("missing \"content\"")?;
        if content.len() > MAX_FILE {
            return Err(format!(
                "content is {} bytes; the limit is {MAX_FILE}",
                content.len()
            ));
        }
        let p = self.writable(rel)?;
        if p.is_dir() {
            return Err("path is a directory".into());
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        // Refuse to follow a symlink at the final component.
        if std::fs::symlink_metadata(&p)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            return Err("refusing to write through a symlink".into());
        }
        std::fs::write(&p, content).map_err(|e| e.to_string())?;
        let r = rel.unwrap_or("");
        Ok(Output::ok(
            format!("wrote {r} ({} bytes)", content.len()),
            format!("wrote {r} ({} bytes)", content.len()),
        ))
    }

    pub(super) fn edit_file(
        &self,
        rel: Option<&str>,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<Output, String> {
        let (old, new) = (
            old.ok_or("missing \"old_text\"")?,
            new.ok_or("missing \"new_text\"")?,
        );
        if old.is_empty() {
            return Err("old_text must not be empty".into());
        }
        let p = self.existing(rel)?;
        self.refuse_skills(rel.unwrap_or(""), &p)?;
        let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
        match text.matches(old).count() {
            0 => Err("old_text was not found; read the file and copy the exact text".into()),
            1 => {
                std::fs::write(&p, text.replacen(old, new, 1)).map_err(|e| e.to_string())?;
                let r = rel.unwrap_or("");
                Ok(Output::ok(format!("edited {r}"), format!("edited {r}")))
            }
            n => Err(format!(
                "old_text occurs {n} times; include more context so it is unique"
            )),
        }
    }

    pub(super) fn list_dir(&self, rel: Option<&str>) -> Result<Output, String> {
        let p = self.existing(Some(rel.unwrap_or(".")))?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&p)
            .map_err(|e| e.to_string())?
            .flatten()
            .take(500)
        {
            let mut n = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                n.push('/');
            }
            names.push(n);
        }
        crate::sort::sort(&mut names);
        let summary = format!("listed {} ({} entries)", rel.unwrap_or("."), names.len());
        Ok(Output::ok(names.join("\n"), summary))
    }
}
