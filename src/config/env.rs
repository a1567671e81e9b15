//! Secret and variable references in the config: `"$NAME"` (the whole value)
//! or `"${NAME}"` (anywhere in a string, `$${` escapes a literal `${`).
//!
//! Values come, in order, from the process environment, from systemd
//! credentials (`$CREDENTIALS_DIRECTORY/NAME`, one file per secret) and from
//! `$PINCH_HOME/.env`. A reference that resolves to nothing is an error that
//! names the variable and the field; it never becomes an empty string.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where `$NAME` references are looked up. Built once at load time so tests
/// can inject every source.
#[derive(Debug, Default, Clone)]
pub struct Vars {
    pub process: BTreeMap<String, String>,
    pub credentials_dir: Option<PathBuf>,
    pub dotenv: BTreeMap<String, String>,
}

impl Vars {
    pub fn from_process(dotenv: BTreeMap<String, String>) -> Vars {
        Vars {
            process: std::env::vars().collect(),
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            dotenv,
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.process.get(name) {
            if !v.is_empty() {
                return Some(v.clone());
            }
        }
        if let Some(dir) = &self.credentials_dir {
            // Credential names are plain identifiers; never let one walk out of the directory.
            if valid_name(name) {
                if let Ok(v) = std::fs::read_to_string(dir.join(name)) {
                    let v = v.trim_end_matches(['\n', '\r']).to_string();
                    if !v.is_empty() {
                        return Some(v);
                    }
                }
            }
        }
        self.dotenv.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a `.env` file: `KEY=value`, optional `export `, `#` comments,
/// single or double quotes around the value. Returns the line number of the
/// first malformed line as the error.
pub fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err((
                n + 1,
                format!(
                    "expected KEY=value, found {:?}",
                    crate::util::truncate_chars(line, 40)
                ),
            ));
        };
        let k = k.trim();
        if !valid_name(k) {
            return Err((
                n + 1,
                format!("{k:?} is not a valid variable name (letters, digits and _)"),
            ));
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            // Unquoted: a ` #` starts a comment.
            v.split(" #").next().unwrap_or(v).trim_end()
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// An unresolved reference: the variable name and the field path holding it.
#[derive(Debug, PartialEq)]
pub struct Unresolved {
    pub var: String,
    pub path: String,
}

/// Replaces references in one string. `Err(var)` names the first missing one.
pub fn substitute_str(s: &str, vars: &Vars) -> Result<String, String> {
    if let Some(name) = s.strip_prefix('$') {
        if valid_name(name) {
            return vars.get(name).ok_or_else(|| name.to_string());
        }
    }
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            match tail.find('}') {
                Some(end) if valid_name(&tail[..end]) => {
                    let name = &tail[..end];
                    out.push_str(&vars.get(name).ok_or_else(|| name.to_string())?);
                    rest = &tail[end + 1..];
                }
                _ => {
                    out.push('$');
                    rest = &after[1..];
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// True for a string that starts a reference but is not a valid one:
/// `"$"`, `"$MY-KEY"`, `"${"`, `"${A"`, `"x${1A}"`. A `$` inside other text
/// (`"pa$word"`) stays literal, and `$${` escapes `${`.
pub fn malformed_reference(s: &str) -> bool {
    if let Some(name) = s.strip_prefix('$') {
        if !name.starts_with('{') && !name.starts_with("${") && !valid_name(name) {
            return true;
        }
    }
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        let after = rest.get(pos..).unwrap_or("");
        if let Some(tail) = after.strip_prefix("$${") {
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            match tail.find('}') {
                Some(end) if valid_name(tail.get(..end).unwrap_or("")) => {
                    rest = tail.get(end + 1..).unwrap_or("");
                }
                _ => return true,
            }
        } else {
            rest = after.get(1..).unwrap_or("");
        }
    }
    false
}

/// Resolves every string in `v` in place.
pub fn substitute(v: &mut serde_json::Value, vars: &Vars, path: &str) -> Result<(), Unresolved> {
    match v {
        serde_json::Value::String(s) => {
            *s = substitute_str(s, vars).map_err(|var| Unresolved {
                var,
                path: path.to_string(),
            })?;
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, vars, &format!("{path}[{i}]"))?;
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                substitute(item, vars, &p)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads `.env` if present. Missing file is an empty map.
pub fn load_dotenv(path: &Path) -> Result<BTreeMap<String, String>, String> {
    match super::read_capped(path) {
        Ok(text) => {
            parse_dotenv(&text).map_err(|(line, msg)| format!("{}:{line}: {msg}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars {
            process: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Vars::default()
        }
    }

    #[test]
    fn whole_value_and_braced_references() {
        let v = vars(&[("KEY", "sk-1"), ("HOST", "h")]);
        assert_eq!(substitute_str("$KEY", &v), Ok("sk-1".into()));
        assert_eq!(
            substitute_str("http://${HOST}:1/v1", &v),
            Ok("http://h:1/v1".into())
        );
        assert_eq!(substitute_str("a$${HOST}", &v), Ok("a${HOST}".into()));
        assert_eq!(substitute_str("pa$word", &v), Ok("pa$word".into()));
        assert_eq!(substitute_str("$", &v), Ok("$".into()));
    }

    #[test]
    fn malformed_references_are_recognised() {
        for bad in [
            "$",
            "$MY-API-KEY",
            "${",
            "${A",
            "x${1A}",
            "$1",
            "${}",
            "a${B-C}d",
        ] {
            assert!(malformed_reference(bad), "{bad:?}");
        }
        for good in [
            "$KEY",
            "${KEY}",
            "a${KEY}b",
            "pa$word",
            "$${literal}",
            "plain",
            "cost: 5$",
        ] {
            assert!(!malformed_reference(good), "{good:?}");
        }
    }

    #[test]
    fn missing_or_empty_is_an_error_naming_the_variable() {
        let v = vars(&[("EMPTY", "")]);
        assert_eq!(substitute_str("$NOPE", &v), Err("NOPE".into()));
        assert_eq!(substitute_str("x${EMPTY}", &v), Err("EMPTY".into()));
        let mut j = serde_json::json!({"models": {"providers": {"a": {"apiKey": "$NOPE"}}}});
        let e = substitute(&mut j, &v, "").expect_err("unresolved");
        assert_eq!(
            e,
            Unresolved {
                var: "NOPE".into(),
                path: "models.providers.a.apiKey".into()
            }
        );
    }

    #[test]
    fn process_env_wins_then_credentials_then_dotenv() {
        let dir = std::env::temp_dir().join(format!("pinch-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("API"), "from-cred\n").expect("write");
        let mut v = vars(&[]);
        v.credentials_dir = Some(dir.clone());
        v.dotenv.insert("API".into(), "from-dotenv".into());
        v.dotenv.insert("OTHER".into(), "o".into());
        assert_eq!(v.get("API").as_deref(), Some("from-cred"));
        assert_eq!(v.get("OTHER").as_deref(), Some("o"));
        v.process.insert("API".into(), "from-env".into());
        assert_eq!(v.get("API").as_deref(), Some("from-env"));
        assert_eq!(v.get("../etc/passwd"), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn dotenv_forms() {
        let m = parse_dotenv("# c\nA=1\nexport B = \"two words\"\nC='x'\nD=val # note\n\n")
            .expect("ok");
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "x");
        assert_eq!(m["D"], "val");
        assert_eq!(parse_dotenv("A=1\nnot a pair\n").expect_err("bad").0, 2);
        assert_eq!(parse_dotenv("1A=1").expect_err("bad").0, 1);
    }
}
