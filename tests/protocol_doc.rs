//! docs/protocol.md against the code: every method of the reactor's method
//! table has a row in the doc's method table (and every row there is a
//! method), every event the gateway sends is described under "Events of a
//! run", and every HTTP route of the router is in the endpoint table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of the section that starts with `heading` (up to the next
/// heading of the same or a higher level).
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("docs/protocol.md has no {heading:?}"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let body = &doc[start + heading.len() + 2..];
    let end = body
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .map_or(body.len(), |(at, _)| at);
    &body[..end]
}

/// The first table of `text`.
fn first_table(text: &str) -> &str {
    let start = text.find("\n|").map_or(text.len(), |i| i + 1);
    let rest = &text[start..];
    let end = rest
        .find("\n")
        .map(|_| {
            rest.lines()
                .take_while(|l| l.starts_with('|'))
                .map(|l| l.len() + 1)
                .sum::<usize>()
        })
        .unwrap_or(rest.len());
    &rest[..end.min(rest.len())]
}

/// The `code` spans of the first cell of each table row of `text`.
fn first_cells(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split(" | ").next())
        .flat_map(|cell| {
            cell.split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The string literals that follow `marker` in `text` (`name: "x"`).
fn literals_after(text: &str, marker: &str) -> Vec<String> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            let end = rest.find('"')?;
            Some(rest[..end].to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_method_has_a_row_and_every_row_is_a_method() {
    let doc = read("docs/protocol.md");
    let methods: BTreeSet<String> =
        literals_after(&read("src/gateway/reactor/methods.rs"), "name: \"")
            .into_iter()
            .collect();
    assert!(methods.len() > 20, "read {} methods", methods.len());
    let mut rows = first_cells(first_table(section(&doc, "### Methods")));
    rows.insert("connect".into()); // answered by the connection, not the reactor
    let undocumented: Vec<_> = methods.difference(&rows).collect();
    assert!(
        undocumented.is_empty(),
        "methods without a row in docs/protocol.md's method table: {undocumented:?}"
    );
    let stale: Vec<_> = rows
        .difference(&methods)
        .filter(|r| r.as_str() != "connect")
        .collect();
    assert!(
        stale.is_empty(),
        "rows of docs/protocol.md's method table that are no method: {stale:?}"
    );
}

#[test]
fn every_event_the_gateway_sends_is_described() {
    let doc = read("docs/protocol.md");
    let events_doc = section(&doc, "### Events of a run");
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut events = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        events.extend(literals_after(&text, "event_frame(\""));
        events.extend(literals_after(&text, "event_frame(\n                \""));
    }
    assert!(events.len() >= 6, "found events {events:?}");
    let missing: Vec<_> = events
        .iter()
        .filter(|e| !events_doc.contains(&format!("`{e}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "events not described under \"Events of a run\" in docs/protocol.md: {missing:?}"
    );
}

#[test]
fn every_http_route_is_in_the_endpoint_table() {
    let doc = read("docs/protocol.md");
    let table = first_cells(section(&doc, "## HTTP endpoints"));
    let router = read("src/gateway/router.rs");
    // Exact routes: `("GET", "/healthz")`.
    let mut missing = Vec::new();
    let mut exact = 0;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        for path in literals_after(&router, &format!("(\"{method}\", \"")) {
            exact += 1;
            let route = format!("{method} {path}");
            if !table.contains(&route) {
                missing.push(route);
            }
        }
    }
    assert!(exact >= 7, "read {exact} exact routes");
    // Prefix routes: `path.starts_with("/hooks/")`, `path == "/api/…"`.
    let mut prefixes = literals_after(&router, "starts_with(\"");
    prefixes.extend(literals_after(&router, "path == \""));
    prefixes.retain(|p| p.starts_with('/'));
    assert!(prefixes.len() >= 3, "read prefixes {prefixes:?}");
    for prefix in prefixes {
        if !table.iter().any(|row| row.contains(prefix.as_str())) {
            missing.push(prefix);
        }
    }
    // The cron API's own routes: `("DELETE", [name])` → `DELETE /api/cron/<name>`.
    let cron = read("src/gateway/proactive_http.rs");
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        for (at, _) in cron.match_indices(&format!("(\"{method}\", [")) {
            let rest = &cron[at..];
            let Some(close) = rest.find(']') else {
                continue;
            };
            let parts = &rest[rest.find('[').unwrap_or(0) + 1..close];
            let path: String = parts
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    if p.starts_with('"') {
                        p.trim_matches('"').to_string()
                    } else {
                        "<name>".to_string()
                    }
                })
                .fold("/api/cron".to_string(), |acc, p| format!("{acc}/{p}"));
            let route = format!("{method} {path}");
            if !table.contains(&route) {
                missing.push(route);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes not in docs/protocol.md's HTTP endpoint table: {missing:?}"
    );
}
