//! Splits an `exec` command line into words with quotes, refusing shell
//! syntax: no shell runs unless `tools.exec.allowShell`.

/// Splits a command line into words with quotes, refusing shell syntax
/// (`;`, `|`, `&`, `$`, backticks, redirections, parentheses, newlines) that
/// would run or smuggle a second command.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$') | Some('`') => return Err(
                            "`$` and backticks are shell syntax; pass arguments as an argv list"
                                .into(),
                        ),
                        Some('\\') => {
                            if let Some(x) = chars.next() {
                                cur.push(x);
                            }
                        }
                        Some(x) => cur.push(x),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            ';' | '|' | '&' | '$' | '`' | '>' | '<' | '(' | ')' | '\n' | '\r' | '*' | '?' | '~'
            | '{' | '}' => {
                return Err(format!("{c:?} is shell syntax and no shell runs here; call one program with an argv list"));
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}
