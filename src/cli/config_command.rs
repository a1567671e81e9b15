//! `pinch config`: check, get, set, migrate and explain-route.

use super::{config_migrate, load, Global};
use crate::config;
use crate::home::Home;
use lexopt::prelude::*;

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str =
        "Usage: pinch config <check | get PATH | set PATH VALUE | migrate [--dry-run] | explain-route NAME [URL]>

check            validate the config (and .env); exit 1 with the error otherwise
get PATH         print a field as written in the file (secrets shown as ***)
set PATH VALUE   set a field (VALUE is JSON, or a plain string), validate the
                 whole file, write it (previous copy kept as pinch.json.bak)
                 and record the change in logs/config-audit.jsonl
migrate [--dry-run]
                 rewrite renamed keys to their new names (keeps comments;
                 previous copy kept as pinch.json.bak; prints the diff)
explain-route NAME [URL]
                 the network route a provider or channel (or \"webFetch\",
                 \"webSearch\") takes

PATH looks like gateway.port or models.providers.local.models[0].id";
    let mut args: Vec<String> = Vec::new();
    let mut dry_run = false;
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("dry-run") => dry_run = true,
            Value(v) => args.push(
                v.string()
                    .map_err(|_| "argument is not valid UTF-8".to_string())?,
            ),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let file = g.config.clone().unwrap_or_else(|| home.config());
    if args == ["migrate"] {
        return config_migrate::migrate(&file, dry_run);
    }
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check"] => match config::load(home, g.config.as_deref()) {
            Ok(l) => {
                let what = l
                    .file
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| "built-in defaults".into());
                if let Err(e) = crate::channel::registry::check_config(&l.cfg) {
                    eprintln!("{what}: {e}");
                    return Ok(1);
                }
                for k in &l.cfg.ignored {
                    println!("warning: {} ({what}:{}:{})", k.message(), k.line, k.column);
                }
                println!("ok: {what}");
                Ok(0)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(1)
            }
        },
        ["get", path] => {
            let mut raw = config::read_raw(&file)?;
            config::redact(&mut raw, "");
            match config::get_path(&raw, path)? {
                Some(v) => {
                    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
                    Ok(0)
                }
                None => {
                    eprintln!(
                        "{path} is not set in {} (the built-in default applies)",
                        file.display()
                    );
                    Ok(1)
                }
            }
        }
        ["set", path, value] => {
            home.ensure()?;
            config::set(home, &file, path, value, "cli")?;
            println!("set {path} in {}", file.display());
            Ok(0)
        }
        ["explain-route", name, rest @ ..] => {
            let cfg = load(g, home)?.cfg;
            let (owner, default_url) = if cfg.models.providers.contains_key(*name) {
                (
                    crate::routes::Owner::Provider(name),
                    cfg.models.providers[*name].base_url.clone(),
                )
            } else if *name == "webFetch" {
                (
                    crate::routes::Owner::WebFetch,
                    "https://example.com/".to_string(),
                )
            } else if *name == "webSearch" {
                (
                    crate::routes::Owner::WebSearch,
                    crate::agent::search::base_url(&cfg.tools.web_search),
                )
            } else if cfg.channels.contains_key(*name) || config::CHANNELS.contains(name) {
                let api = cfg
                    .channels
                    .get(*name)
                    .and_then(|c| c.api_root.clone())
                    .unwrap_or_else(|| crate::doctor::channel_default_url(name));
                (crate::routes::Owner::Channel(name), api)
            } else {
                let known: Vec<String> = cfg
                    .models
                    .providers
                    .keys()
                    .cloned()
                    .chain(cfg.channels.keys().cloned())
                    .collect();
                return Err(format!(
                    "{name:?} is neither a provider nor a channel; known: {}, webFetch, webSearch",
                    known.join(", ")
                ));
            };
            let route = crate::routes::route_for(&cfg, owner)?;
            let url = rest.first().map(|s| s.to_string()).unwrap_or(default_url);
            println!("{}", crate::net::explain(&route, &url));
            Ok(0)
        }
        _ => {
            println!("{HELP}");
            Ok(2)
        }
    }
}
