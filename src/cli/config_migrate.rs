//! `pinch config migrate [--dry-run]` (renamed keys rewritten in the file,
//! a `.bak` beside it, the diff printed) and `pinch version [--check]` (a
//! release feed, only when `update.feedUrl` is configured).

use super::{val, Global};
use crate::config::renames;
use crate::home::Home;
use lexopt::prelude::*;
use std::path::Path;

/// Rewrites renamed keys in `file`. Returns the exit code.
pub(super) fn migrate(file: &Path, dry_run: bool) -> Result<i32, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("{}: no config file; nothing to migrate", file.display());
            return Ok(0);
        }
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let (new, applied) = renames::apply(&text, renames::RENAMES);
    for a in applied.iter().filter(|a| !a.rewritten) {
        println!("note: {}", a.warning());
    }
    if new == text {
        println!("{}: up to date, nothing to change", file.display());
        return Ok(0);
    }
    print!("{}", renames::diff(&text, &new));
    if dry_run {
        println!("(dry run: {} not changed)", file.display());
        return Ok(0);
    }
    let bak = {
        let mut n = file.as_os_str().to_os_string();
        n.push(".bak");
        std::path::PathBuf::from(n)
    };
    crate::home::write_private(&bak, text.as_bytes())?;
    crate::home::write_private(file, new.as_bytes())?;
    println!(
        "{} updated ({} renamed keys); the previous file is {}",
        file.display(),
        applied.iter().filter(|a| a.rewritten).count(),
        bak.display()
    );
    Ok(0)
}

/// Compares dotted numeric versions ("0.10.1" > "0.9.3").
pub fn newer(candidate: &str, current: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.trim_start_matches('v')
            .split(['.', '-', '+'])
            .map_while(|p| p.parse::<u64>().ok())
            .collect()
    };
    parse(candidate) > parse(current)
}

pub(super) fn version(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    let mut check = false;
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Long("check") => check = true,
            Short('h') | Long("help") => {
                println!("Usage: pinch version [--check]\n\n--check  compare with the release feed in update.feedUrl (never contacted otherwise)");
                return Ok(0);
            }
            Value(_) => {
                let _ = val(p);
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let current = env!("CARGO_PKG_VERSION");
    println!("pinch {current}");
    if !check {
        return Ok(0);
    }
    let cfg = super::load(g, home)?.cfg;
    let Some(url) = cfg.update.feed_url.filter(|u| !u.is_empty()) else {
        println!(
            "no release feed configured (update.feedUrl): pinch never checks for updates by itself"
        );
        return Ok(0);
    };
    let agent = crate::net::new_agent(
        ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(15)))
            .http_status_as_error(false)
            .build(),
    );
    let resp = agent
        .get(&url)
        .call()
        .map_err(|e| format!("cannot read the release feed {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|e| format!("cannot read the release feed {url}: {e}"))?;
    if status != 200 {
        return Err(format!("the release feed {url} answered HTTP {status}"));
    }
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("the release feed {url} is not JSON ({e}); expected {{\"version\": \"x.y.z\", \"url\": \"…\"}}"))?;
    let Some(latest) = v["version"].as_str() else {
        return Err(format!("the release feed {url} has no \"version\" string"));
    };
    if newer(latest, current) {
        let link = v["url"].as_str().unwrap_or("");
        println!("a newer release is available: {latest} {link}");
        Ok(10)
    } else {
        println!("up to date (the feed's newest is {latest})");
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare_numerically() {
        assert!(super::newer("0.10.0", "0.9.9"));
        assert!(super::newer("v1.0.0", "0.1.0"));
        assert!(!super::newer("0.1.0", "0.1.0"));
        assert!(!super::newer("garbage", "0.1.0"));
    }
}
