//! ARCHITECTURE.md's codemap against the tree: every path a row names
//! exists, and every folder under `src/` and every file directly in `src/`
//! is named by some row, so a newcomer finds where any behaviour lives.
//!
//! A row's first cell names paths from the repository root (`src/net/`);
//! a bare name there (`chat.rs`) sits beside the last path named before it
//! in the cell. In the role cell, file and folder names (`codec.rs`,
//! `probe/`) are looked for under the row's own folders, then from `src/`
//! and the root (`net/websocket.rs`, `scripts/build-prev-deb.sh`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The codemap table's rows, cells split, header and separator left out.
fn rows(architecture: &str) -> Vec<Vec<String>> {
    let start = architecture
        .find("\n## Codemap")
        .expect("ARCHITECTURE.md has a \"## Codemap\" section");
    let section = &architecture[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end]
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter(|l| !l.starts_with("|---") && !l.starts_with("| path |"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// The `code` spans of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// A span that reads as a path in the tree rather than a name of code, a
/// key or a file the program writes at run time.
fn is_tree_path(span: &str, path_cell: bool) -> bool {
    if span.is_empty()
        || span.contains(['<', '*', ' ', '$', '~', ':', '{', '('])
        || span.starts_with(['/', '.'])
    {
        return false;
    }
    if path_cell {
        return true;
    }
    let file = [".rs", ".sh", ".py"].iter().any(|e| span.ends_with(e));
    let folder = span.ends_with('/') && span.len() > 1;
    file || folder
}

/// `dir` and every folder below it.
fn folders_under(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().is_dir() {
            folders_under(&e.path(), out);
        }
    }
}

/// Paths relative to the root, without a trailing `/`.
fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string()
}

struct Codemap {
    named: BTreeSet<String>,
    missing: Vec<String>,
    /// Paths that head more than one row.
    repeated: Vec<String>,
}

fn read_codemap() -> Codemap {
    let root = root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rows = rows(&text);
    assert!(rows.len() > 40, "read {} codemap rows", rows.len());
    let mut named = BTreeSet::new();
    let mut missing = Vec::new();
    let mut heads = BTreeSet::new();
    let mut repeated = Vec::new();
    for row in &rows {
        let Some(path_cell) = row.first() else {
            continue;
        };
        // The row's folders: each path of the first cell, or its parent.
        let mut bases: Vec<PathBuf> = Vec::new();
        let mut beside = root.clone();
        for span in code_spans(path_cell) {
            if !is_tree_path(&span, true) {
                continue;
            }
            let path = if span.trim_end_matches('/').contains('/') {
                root.join(span.trim_end_matches('/'))
            } else {
                beside.join(&span)
            };
            if !path.exists() {
                missing.push(format!("{span} (first cell of the row {path_cell:?})"));
                continue;
            }
            named.insert(relative(&path));
            if !heads.insert(relative(&path)) {
                repeated.push(relative(&path));
            }
            let folder = if path.is_dir() {
                path.clone()
            } else {
                path.parent().unwrap_or(&root).to_path_buf()
            };
            if span.trim_end_matches('/').contains('/') {
                beside = folder.clone();
            }
            if !bases.contains(&folder) {
                bases.push(folder);
            }
        }
        let mut search = Vec::new();
        for base in &bases {
            folders_under(base, &mut search);
        }
        search.push(root.join("src"));
        search.push(root.clone());
        for cell in row.iter().skip(1) {
            for span in code_spans(cell) {
                if !is_tree_path(&span, false) {
                    continue;
                }
                // Every file of that name under the row's folders counts
                // as named (`tls.rs` of `src/net/` and of `src/net/probe/`).
                let found: Vec<PathBuf> = search
                    .iter()
                    .map(|dir| dir.join(span.trim_end_matches('/')))
                    .filter(|p| p.exists())
                    .collect();
                if found.is_empty() {
                    missing.push(format!("{span} (in the row of {path_cell})"));
                }
                for p in found {
                    named.insert(relative(&p));
                }
            }
        }
    }
    Codemap {
        named,
        missing,
        repeated,
    }
}

#[test]
fn every_path_the_codemap_names_exists() {
    let map = read_codemap();
    assert!(
        map.missing.is_empty(),
        "ARCHITECTURE.md's codemap names paths that do not exist; fix the rows:\n{}",
        map.missing.join("\n")
    );
    assert!(
        map.repeated.is_empty(),
        "paths that head more than one codemap row (merge the rows): {:?}",
        map.repeated
    );
}

#[test]
fn every_source_folder_and_top_level_file_is_in_the_codemap() {
    let map = read_codemap();
    let src = root().join("src");
    let mut wanted = Vec::new();
    folders_under(&src, &mut wanted);
    wanted.retain(|p| p != &src);
    for entry in std::fs::read_dir(&src).expect("src/").flatten() {
        let p = entry.path();
        if p.is_file() {
            wanted.push(p);
        }
    }
    // A folder counts as named when a row names it or a file directly in it.
    let unnamed: Vec<String> = wanted
        .iter()
        .map(|p| relative(p))
        .filter(|p| {
            !map.named.contains(p)
                && !map.named.iter().any(|n| {
                    n.strip_prefix(p.as_str())
                        .and_then(|rest| rest.strip_prefix('/'))
                        .is_some_and(|rest| !rest.contains('/'))
                })
        })
        .collect();
    assert!(
        unnamed.is_empty(),
        "not named in ARCHITECTURE.md's codemap (add a row or name it in its folder's row):\n{}",
        unnamed.join("\n")
    );
}

#[test]
fn the_reader_resolves_rows() {
    let text = "# A\n\n## Codemap\n\n| path | role |\n|---|---|\n| `src/a/x.rs`, `y.rs` | `z.rs` and `probe/` |\n\n## Next\n| `no` | row |\n";
    let rows = rows(text);
    assert_eq!(rows.len(), 1);
    assert_eq!(code_spans(&rows[0][0]), vec!["src/a/x.rs", "y.rs"]);
    assert!(is_tree_path("probe/", false));
    assert!(!is_tree_path("enqueue_run", false));
    assert!(!is_tree_path("/healthz", false));
    assert!(!is_tree_path("state.redb", false));
    assert!(is_tree_path("state.redb", true));
}

/// Source files that are tests, named by the convention of ARCHITECTURE.md
/// ("Module style") rather than one by one.
fn is_test_file(name: &str) -> bool {
    name == "tests.rs" || name.ends_with("_tests.rs")
}

#[test]
fn every_source_file_is_in_the_codemap() {
    let map = read_codemap();
    let mut folders = Vec::new();
    folders_under(&root().join("src"), &mut folders);
    let mut unnamed = Vec::new();
    for folder in folders {
        for entry in std::fs::read_dir(&folder).expect("read src/").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.is_file() || is_test_file(&name) {
                continue;
            }
            let file = relative(&path);
            // A folder's row names its `mod.rs`.
            let by_folder = name == "mod.rs" && map.named.contains(&relative(&folder));
            if !map.named.contains(&file) && !by_folder {
                unnamed.push(file);
            }
        }
    }
    unnamed.sort();
    assert!(
        unnamed.is_empty(),
        "source files ARCHITECTURE.md's codemap does not name (name each in its folder's row):\n{}",
        unnamed.join("\n")
    );
}
