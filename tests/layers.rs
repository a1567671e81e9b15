//! The layer order of ARCHITECTURE.md, checked over the source: every
//! `crate::` and `super::` path in `src/` (outside test code) may only point
//! to its own layer or a lower one. Known exceptions are listed in
//! `KNOWN_UPWARD` and may only go away: an exception that no longer occurs
//! fails the test too, so the list shrinks as the code is fixed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Module path prefix → layer, bottom (0) to top. The longest matching
/// prefix wins. Keep in sync with ARCHITECTURE.md ("Layers").
const LAYERS: &[(&str, u32)] = &[
    // 0: small helpers, $PINCH_HOME, the API error type.
    ("util", 0),
    ("atomic64", 0),
    ("arm_tls", 0),
    ("home", 0),
    ("filesystem", 0),
    ("card_wear", 0),
    ("workspace", 0),
    ("service", 0),
    ("service_openrc", 0),
    ("sandbox", 0),
    ("api_error", 0),
    ("sort", 0),
    ("runtime_file", 0),
    // 1: message types the database stores (transcript turns, envelopes,
    // reply targets, queued replies).
    ("llm::types", 1),
    ("channel::envelope", 1),
    // 2: the database: the redb file and every table.
    ("db", 2),
    // 3: store, then the queue on top of it.
    ("store", 3),
    ("queue", 4),
    // 5: pure scheduling and network route logic, used by config.
    ("sched", 5),
    ("net", 5),
    // 6: config.
    ("config", 6),
    // 7: routes (which route each owner's traffic takes).
    ("routes", 7),
    // 8: model codecs, channel codecs and the adapter interface.
    ("llm", 8),
    ("channel", 8),
    // the API's shapes of stored records (sessions, pairing, queue).
    ("api_wire", 8),
    // 9: I/O shells: channel adapters (and the registry that starts them),
    // the provider.
    ("channel::registry", 9),
    ("channel::telegram::shell", 9),
    ("channel::slack::shell", 9),
    ("channel::discord::shell", 9),
    ("provider", 9),
    ("local_llm", 9),
    // 10: the agent: skill discovery below the tools that run skills.
    ("agent::skills", 10),
    ("agent", 11),
    // 12: the gateway: reactor parts and HTTP primitives, then the
    // WebSocket and API handlers built on them, then the router.
    ("gateway", 12),
    ("gateway::ws", 13),
    ("gateway::proactive_http", 13),
    ("gateway::router", 14),
    // 15: commands.
    ("cli", 15),
    ("doctor", 15),
    ("migrate", 15),
    ("backup", 15),
    ("", 15),
];

/// Upward edges still present: (from module, to module). May only shrink.
const KNOWN_UPWARD: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> u32 {
    LAYERS
        .iter()
        .filter(|(prefix, _)| {
            prefix.is_empty() || module == *prefix || module.starts_with(&format!("{prefix}::"))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, layer)| *layer)
        .unwrap_or(15)
}

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` → `a`; `src/lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().and_then(|x| x.to_str()) == Some("rs") {
            out.push(p);
        }
    }
}

/// The source without test code: files that are tests, and each
/// `#[cfg(test)]` module (up to its closing brace; code after it is read).
fn production_text(file: &Path, text: &str) -> Option<String> {
    let name = file.file_name()?.to_string_lossy().into_owned();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return None;
    }
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t == "#[cfg(test)]" {
            if let Some(next) = lines.peek() {
                let n = next.trim();
                if n.starts_with("mod ") && n.ends_with('{') {
                    let mut depth = 0i64;
                    for inner in lines.by_ref() {
                        depth += brace_balance(inner);
                        if depth <= 0 {
                            break;
                        }
                    }
                    continue;
                }
            }
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

/// `{` minus `}` on a line, outside string and character literals and
/// line comments.
fn brace_balance(line: &str) -> i64 {
    let mut balance = 0;
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '\'' if !in_string => {
                // A char literal such as '{' or '\'' (not a lifetime).
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    chars.nth(2);
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            '/' if !in_string && chars.peek() == Some(&'/') => break,
            '{' if !in_string => balance += 1,
            '}' if !in_string => balance -= 1,
            _ => {}
        }
    }
    balance
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str, out: &mut Vec<String>) {
    let path = path.trim();
    let Some(open) = path.find('{') else {
        out.push(path.to_string());
        return;
    };
    let prefix = path[..open].trim_end_matches("::");
    let inner = path[open + 1..].trim_end().trim_end_matches('}');
    let mut depth = 0;
    let mut start = 0;
    let bytes = inner.as_bytes();
    for i in 0..=bytes.len() {
        let c = bytes.get(i).copied().unwrap_or(b',');
        match c {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b',' if depth == 0 => {
                let item = inner[start..i.min(inner.len())].trim();
                if !item.is_empty() {
                    if item == "self" {
                        out.push(prefix.to_string());
                    } else {
                        expand(&format!("{prefix}::{item}"), out);
                    }
                }
                start = i + 1;
            }
            _ => {}
        }
    }
}

/// The module paths `text` refers to through `crate::` and `super::`.
fn references(module: &str, text: &str) -> BTreeSet<String> {
    let mut paths = Vec::new();
    // `use` items, braces expanded.
    let mut rest = text;
    while let Some(i) = rest.find("use ") {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before_ok {
            let item = after[..end].split(" as ").next().unwrap_or("");
            expand(item, &mut paths);
        }
        rest = &after[end.min(after.len())..];
    }
    // Inline paths.
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(anchor) {
            let start = from + i;
            let len = text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(text.len() - start);
            paths.push(text[start..start + len].trim_end_matches(':').to_string());
            from = start + len.max(1);
        }
    }
    let mut out = BTreeSet::new();
    for p in paths {
        let p = p.replace(' ', "");
        let mut segs: Vec<&str> = p.split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<&str> = Vec::new();
        match segs.first().copied() {
            Some("crate") => {
                segs.remove(0);
            }
            Some("super") => {
                base = module.split("::").filter(|s| !s.is_empty()).collect();
                while segs.first() == Some(&"super") {
                    segs.remove(0);
                    base.pop();
                }
            }
            _ => continue,
        }
        // Module names are lower case; stop at the first type or value.
        for s in segs {
            if s.chars()
                .next()
                .map(|c| c.is_ascii_lowercase())
                .unwrap_or(false)
            {
                base.push(s);
            } else {
                break;
            }
        }
        out.insert(base.join("::"));
    }
    out
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "read {} files under src/", files.len());
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    // A path names an item inside a module: keep the module.
    let module_part = |path: &str| -> String {
        let mut p = path.to_string();
        while !modules.contains(&p) {
            match p.rfind("::") {
                Some(i) => p.truncate(i),
                None => return p,
            }
        }
        p
    };
    let mut upward = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "fuzz" || module.starts_with("fuzz::") {
            continue; // test builds only
        }
        let text = std::fs::read_to_string(file).expect("read source");
        let Some(text) = production_text(file, &text) else {
            continue;
        };
        let from = layer_of(&module);
        for target in references(&module, &text) {
            let target = module_part(&target);
            // A module's own children and itself are not edges.
            if target.is_empty() || target == module || target.starts_with(&format!("{module}::")) {
                continue;
            }
            if layer_of(&target) > from {
                upward.insert((module.clone(), target));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = upward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "imports that go up the layer order (ARCHITECTURE.md, \"Layers\"): {new:#?}\nmove the shared item down a layer, or pass it in"
    );
    let gone: Vec<_> = known.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "these known exceptions no longer occur: remove them from KNOWN_UPWARD: {gone:#?}"
    );
}

#[test]
fn the_reader_resolves_paths_and_braces() {
    let refs = references(
        "gateway::http",
        "use super::{ws, Shared};\nuse crate::channel::{self, envelope::Envelope};\nlet x = crate::util::now_ms();\n",
    );
    let want: BTreeSet<String> = [
        "gateway::ws",
        "gateway",
        "channel",
        "channel::envelope",
        "util::now_ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(refs, want);
    assert_eq!(layer_of("channel::telegram::shell"), 9);
    assert_eq!(layer_of("channel::telegram"), 8);
    assert_eq!(layer_of("gateway::ws"), 13);
}

#[test]
fn test_modules_are_left_out_and_code_after_them_is_read() {
    let text = "use crate::util;\n#[cfg(test)]\nmod tests {\n    use crate::gateway;\n    fn f() { let c = '{'; let s = \"}}\"; }\n}\nfn later(_: &crate::config::Config) {}\n";
    let kept = production_text(Path::new("src/net/route.rs"), text).expect("source");
    let refs = references("net::route", &kept);
    let want: BTreeSet<String> = ["util", "config"].iter().map(|s| s.to_string()).collect();
    assert_eq!(refs, want, "{kept}");
    assert_eq!(brace_balance("let x = \"{\"; // }"), 0);
    assert_eq!(brace_balance("mod tests {"), 1);
}
