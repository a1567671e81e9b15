//! `pinch backup [FILE]` and `pinch restore FILE [--to HOME] [--force]`.
//! A running gateway writes the store snapshot itself (`store.snapshot`, one
//! read transaction), so a backup never stops the assistant; with no gateway
//! the command opens the store and takes the snapshot directly.

use super::{gateway_endpoint, val, Global};
use crate::home::Home;
use lexopt::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};

const BACKUP_HELP: &str = "Usage: pinch backup [FILE] [--url URL] [--token T]

Writes one archive (tar) of the config, .env (secret: the archive is mode
0600), the workspace and a consistent snapshot of the state store, while the
gateway keeps running. FILE defaults to ./pinch-backup-<date>-<time>.tar.

Nightly, from the system's crontab (crontab -e):
  15 3 * * * PINCH_HOME=$HOME/.pinch pinch backup /mnt/nas/pinch-$(date +\\%a).tar";

const RESTORE_HELP: &str = "Usage: pinch restore FILE [--to HOME] [--force]

Puts a backup back into $PINCH_HOME (or HOME): config, .env, workspace and
state store. Refuses while a gateway uses that home (stop it first), and
refuses to replace existing data without --force; replaced files are kept
beside it as *.pre-restore.";

pub(super) fn backup(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    let (mut file, mut url, mut token) = (None, None, None);
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{BACKUP_HELP}");
                return Ok(0);
            }
            Long("url") => url = Some(val(p)?),
            Long("token") => token = Some(val(p)?),
            Value(v) if file.is_none() => file = Some(PathBuf::from(v)),
            other => return Err(format!("{}\n\n{BACKUP_HELP}", other.unexpected())),
        }
    }
    let now = crate::util::now_ms();
    let out = file.unwrap_or_else(|| {
        let stamp: String = crate::util::rfc3339(now)
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == 'T')
            .take(15)
            .collect();
        PathBuf::from(format!("pinch-backup-{}.tar", stamp.replace('T', "-")))
    });
    let state = home.state();
    let expected = crate::store::snapshot_path(&state);
    let loaded = super::load(g, home).ok();
    let gateway_running = url.is_some() || gateway_listening(g, home);
    let (snapshot, schema_version) = if gateway_running {
        let t = gateway_endpoint(url, token, g, home)?;
        let path = gateway_snapshot(&t)?;
        if path != expected {
            return Err(format!(
                "the gateway at {} keeps its store at {}, not in {}: pass --url for this home's gateway or set PINCH_HOME",
                t.http(),
                path.display(),
                home.root.display()
            ));
        }
        let version = t
            .get("/status")
            .ok()
            .and_then(|s| s["storage"]["schemaVersion"].as_u64())
            .unwrap_or(crate::store::version::CURRENT);
        (path, version)
    } else {
        if !state.exists() {
            return Err(format!(
                "no state store at {}: nothing to back up",
                state.display()
            ));
        }
        let store = crate::store::Store::open(&state)?;
        let (path, _) = store.snapshot()?;
        (path, store.schema_version()?)
    };
    let config_path = g.config.clone().unwrap_or_else(|| home.config());
    let workspace = match &loaded {
        Some(l) => crate::gateway::workspace_dir(home, &l.cfg),
        None => home.workspace(),
    };
    let src = crate::backup::Sources {
        config: Some(config_path),
        dotenv: Some(home.dotenv()),
        workspace: Some(workspace),
        store: snapshot.clone(),
        schema_version,
    };
    let result = crate::backup::write(&out, &src, now);
    let _ = std::fs::remove_file(&snapshot);
    let m = result?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup written: {} ({} files, {bytes} bytes, store schema {}; holds secrets: keep it private)",
        out.display(),
        m.files.len(),
        m.schema_version
    );
    Ok(0)
}

/// How long `pinch backup` waits for the gateway's snapshot (a store of
/// hundreds of MB on an SD card takes minutes).
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Has the gateway write the store snapshot (on its worker, the reactor
/// goes on serving) and waits until it is there; returns its path.
fn gateway_snapshot(t: &super::GatewayEndpoint) -> Result<PathBuf, String> {
    let mut v = t.call("store.snapshot", json!({}))?;
    let deadline = std::time::Instant::now() + SNAPSHOT_WAIT;
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        match v["state"].as_str() {
            // A gateway of the first release answered with the file at once.
            None if v["path"].is_string() => break,
            Some("done") => break,
            Some("failed") => {
                return Err(format!(
                    "the gateway could not write the store snapshot: {}",
                    v["error"].as_str().unwrap_or("unknown error")
                ))
            }
            Some("running") if std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(500));
                v = t.call("store.snapshot.status", json!({}))?;
            }
            Some("running") => {
                return Err(format!(
                    "the gateway's store snapshot took longer than {} minutes; see its log",
                    SNAPSHOT_WAIT.as_secs() / 60
                ))
            }
            _ => return Err(format!("unexpected answer to store.snapshot: {v}")),
        }
    }
    Ok(PathBuf::from(v["path"].as_str().unwrap_or("")))
}

/// Whether the gateway of this home runs (its runtime file, alive).
fn gateway_listening(g: &Global, home: &Home) -> bool {
    gateway_endpoint(None, None, g, home).is_ok_and(|t| t.serves_this_home())
}

/// Whether a process holds the store at `path` (redb's file lock).
fn store_in_use(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    matches!(
        redb::Database::builder().open(path),
        Err(redb::DatabaseError::DatabaseAlreadyOpen)
    )
}

pub(super) fn restore(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    let (mut file, mut to, mut force) = (None, None, false);
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{RESTORE_HELP}");
                return Ok(0);
            }
            Long("to") => to = Some(PathBuf::from(val(p)?)),
            Long("force") => force = true,
            Value(v) if file.is_none() => file = Some(PathBuf::from(v)),
            other => return Err(format!("{}\n\n{RESTORE_HELP}", other.unexpected())),
        }
    }
    let Some(file) = file else {
        println!("{RESTORE_HELP}");
        return Ok(2);
    };
    let home = match to {
        Some(root) => Home { root },
        None => home.clone(),
    };
    home.ensure()?;
    let state = home.state();
    if store_in_use(&state) {
        return Err(format!(
            "a pinch gateway is using {}: stop it first (`systemctl stop pinch`, or end `pinch gateway run`), then restore",
            home.root.display()
        ));
    }
    let config_path = match (&g.config, home.root == Home::from_env().root) {
        (Some(c), true) => c.clone(),
        _ => home.config(),
    };
    let workspace = home.workspace();
    let has_workspace_files = std::fs::read_dir(&workspace)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    let existing: Vec<String> = [&config_path, &home.dotenv(), &state]
        .iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .chain(has_workspace_files.then(|| workspace.display().to_string()))
        .collect();
    if !existing.is_empty() && !force {
        return Err(format!(
            "{} already holds pinch data ({}); pass --force to replace it (the current files are kept as *.pre-restore)",
            home.root.display(),
            existing.join(", ")
        ));
    }
    let staging = home.root.join(format!(".restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let m = match crate::backup::extract(&file, &staging) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!("{}: {e}", file.display()));
        }
    };
    if m.schema_version > crate::store::version::CURRENT {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "this backup holds a store of schema version {}, newer than this pinch ({}, up to {}) understands: install pinch {} or newer, then restore",
            m.schema_version,
            env!("CARGO_PKG_VERSION"),
            crate::store::version::CURRENT,
            m.pinch_version
        ));
    }
    let moves: [(&str, PathBuf); 4] = [
        ("pinch.json", config_path.clone()),
        (".env", home.dotenv()),
        ("state.redb", state.clone()),
        ("workspace", workspace.clone()),
    ];
    for (name, dest) in &moves {
        let staged = staging.join(name);
        if !staged.exists() {
            continue;
        }
        if dest.exists() {
            let mut aside = dest.as_os_str().to_os_string();
            aside.push(".pre-restore");
            let aside = PathBuf::from(aside);
            if aside.is_dir() {
                let _ = std::fs::remove_dir_all(&aside);
            } else {
                let _ = std::fs::remove_file(&aside);
            }
            std::fs::rename(dest, &aside)
                .map_err(|e| format!("cannot move {} aside: {e}", dest.display()))?;
        }
        if let Some(parent) = dest.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if std::fs::rename(&staged, dest).is_err() {
            // Another file system (a config under /etc): copy instead.
            std::fs::copy(&staged, dest)
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    println!(
        "restored {} files from {} (pinch {}, store schema {}) into {}",
        m.files.len(),
        file.display(),
        m.pinch_version,
        m.schema_version,
        home.root.display()
    );
    println!("start the gateway: `pinch gateway run` (or `systemctl start pinch`)");
    Ok(0)
}
