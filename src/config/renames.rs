//! Renamed config keys: a key renamed in a release keeps working for at
//! least one more release, with a warning naming the new key, and
//! `pinch config migrate` rewrites the file. The rename is a text edit of the
//! key token at its exact position (the JSONC scanner keeps positions), so
//! comments, order and formatting survive.

use super::jsonc;

/// One renamed key: `old` is the full path, `new_key` its new last segment
/// (renames stay within their parent object).
#[derive(Debug, Clone, Copy)]
pub struct Rename {
    pub old: &'static str,
    pub new_key: &'static str,
    /// The release that renamed it.
    pub since: &'static str,
}

/// Keys renamed so far (oldest first). Empty: no key has been renamed yet.
pub const RENAMES: &[Rename] = &[];

/// One rename found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub old: String,
    pub new: String,
    pub since: &'static str,
    /// Whether the text was changed (not when the new key is also present).
    pub rewritten: bool,
}

impl Applied {
    pub fn warning(&self) -> String {
        if self.rewritten {
            format!(
                "config key {} was renamed to {} in pinch {}; the old name still works for now: run `pinch config migrate` to update the file",
                self.old, self.new, self.since
            )
        } else {
            format!(
                "config key {} (renamed to {} in pinch {}) is set together with its new name; remove {}",
                self.old, self.new, self.since, self.old
            )
        }
    }
}

fn new_path(r: &Rename) -> String {
    match r.old.rsplit_once('.') {
        Some((parent, _)) => format!("{parent}.{}", r.new_key),
        None => r.new_key.to_string(),
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit_once('.').map(|(_, k)| k).unwrap_or(path)
}

/// The key token of `path` at `offset` in `text`: its byte range, when the
/// key is really there (not a parent fallback).
fn key_token(text: &str, offset: usize, key: &str) -> Option<(usize, usize)> {
    let rest = text.get(offset..)?;
    for quote in ["\"", "'"] {
        let token = format!("{quote}{key}{quote}");
        if rest.starts_with(&token) {
            return Some((offset, offset + token.len()));
        }
    }
    // JSON5: an unquoted identifier.
    if rest.starts_with(key) {
        let after = rest[key.len()..].chars().next();
        if !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            return Some((offset, offset + key.len()));
        }
    }
    None
}

fn exists(stripped: &str, path: &str) -> Option<(usize, usize)> {
    let at = jsonc::offset_of(stripped, path)?;
    key_token(stripped, at, last_segment(path))
}

/// Applies `table` to the text of a config file (comments allowed). Returns
/// the new text and what was found.
pub fn apply(text: &str, table: &[Rename]) -> (String, Vec<Applied>) {
    let mut out = text.to_string();
    let mut found = Vec::new();
    for r in table {
        let stripped = jsonc::strip(&out);
        let Some((start, end)) = exists(&stripped, r.old) else {
            continue;
        };
        let new = new_path(r);
        let clash = exists(&stripped, &new).is_some();
        if !clash {
            let quoted = out
                .get(start..start + 1)
                .is_some_and(|c| c == "\"" || c == "'");
            let token = if quoted {
                let q = &out[start..start + 1];
                format!("{q}{}{q}", r.new_key)
            } else {
                r.new_key.to_string()
            };
            out.replace_range(start..end, &token);
        }
        found.push(Applied {
            old: r.old.to_string(),
            new,
            since: r.since,
            rewritten: !clash,
        });
    }
    (out, found)
}

/// A line diff of two texts that differ only within lines (renames never
/// add or remove lines): `-`/`+` pairs with line numbers.
pub fn diff(old: &str, new: &str) -> String {
    let mut out = String::new();
    for (i, (a, b)) in old.lines().zip(new.lines()).enumerate() {
        if a != b {
            out.push_str(&format!("{:>4} - {a}\n{:>4} + {b}\n", i + 1, i + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Rename] = &[
        Rename {
            old: "gateway.sessionLimit",
            new_key: "sessionCache",
            since: "0.2.0",
        },
        Rename {
            old: "queue.maxAge",
            new_key: "maxAgeMs",
            since: "0.2.0",
        },
    ];

    #[test]
    fn a_renamed_key_is_rewritten_in_place_keeping_comments() {
        let text = "{\n  // how many sessions stay in memory\n  \"gateway\": { \"sessionLimit\": 64, /* keep */ \"port\": 1 },\n  \"queue\": { \"maxAge\": 5 },\n}\n";
        let (out, found) = apply(text, TABLE);
        assert_eq!(
            out,
            "{\n  // how many sessions stay in memory\n  \"gateway\": { \"sessionCache\": 64, /* keep */ \"port\": 1 },\n  \"queue\": { \"maxAgeMs\": 5 },\n}\n"
        );
        assert_eq!(found.len(), 2);
        assert!(found[0].warning().contains("gateway.sessionCache"));
        assert!(found[0].rewritten);
        let d = diff(text, &out);
        assert!(
            d.contains("   3 - ") && d.contains("   3 + ") && d.contains("   4 + "),
            "{d}"
        );
        // Idempotent: nothing left to do.
        let (again, found) = apply(&out, TABLE);
        assert_eq!(again, out);
        assert!(found.is_empty());
    }

    #[test]
    fn a_key_of_the_same_name_elsewhere_or_in_a_comment_is_left_alone() {
        let text =
            "{ // \"sessionLimit\": 1\n \"hooks\": { \"sessionLimit\": { \"message\": \"x\" } } }";
        let (out, found) = apply(text, TABLE);
        assert_eq!(out, text);
        assert!(found.is_empty());
    }

    #[test]
    fn both_names_set_keeps_the_text_and_says_which_to_remove() {
        let text = "{\"gateway\": {\"sessionLimit\": 1, \"sessionCache\": 2}}";
        let (out, found) = apply(text, TABLE);
        assert_eq!(out, text);
        assert!(!found[0].rewritten);
        assert!(found[0].warning().contains("remove gateway.sessionLimit"));
    }
}
