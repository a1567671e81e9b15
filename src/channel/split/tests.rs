//! Tests for the splitter: fixed cases plus property checks on generated texts.

use super::*;

use crate::util::xorshift_stream as rng;

const WORDS: &[&str] = &[
    "a",
    "pinch",
    "gateway",
    "héllo",
    "naïve",
    "日本語",
    "emoji😀",
    "👍🏽",
    "x",
    "Raspberry",
    "telegram",
    "ok",
    "ünïcödé",
    "long-ish-hyphenated-word",
];

/// A random Markdown-ish text with paragraphs, lines, sentences, long words and code fences.
fn gen_text(r: &mut dyn FnMut() -> u64) -> String {
    let mut t = String::new();
    let paras = 1 + r() % 8;
    for _ in 0..paras {
        match r() % 5 {
            0 => {
                let info = ["", "rust", "python", "sh"][(r() % 4) as usize];
                t.push_str(&format!("```{info}\n"));
                for i in 0..(r() % 25) {
                    let indent = " ".repeat((r() % 6) as usize);
                    let w = WORDS[(r() % WORDS.len() as u64) as usize];
                    t.push_str(&format!("{indent}let v{i} = \"{w}\"; // {w} {w}\n"));
                }
                t.push_str("```\n\n");
            }
            1 => {
                let n = 30 + r() % 200;
                t.push_str(&"z".repeat(n as usize));
                t.push_str("\n\n");
            }
            _ => {
                for _ in 0..(1 + r() % 6) {
                    for _ in 0..(1 + r() % 12) {
                        t.push_str(WORDS[(r() % WORDS.len() as u64) as usize]);
                        t.push(' ');
                    }
                    t.push_str([". ", "! ", "? ", "\n", "。"][(r() % 5) as usize]);
                }
                t.push_str("\n\n");
            }
        }
    }
    t
}

fn is_fence_line(l: &str) -> bool {
    l.trim_start().starts_with("```")
}

/// Non-whitespace content outside fence marker lines.
fn content(s: &str) -> String {
    s.lines()
        .filter(|l| !is_fence_line(l))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Checks the properties; returns how many fence lines the splitter added (reopens).
fn check(text: &str, limit: usize, m: Measure) -> usize {
    let chunks = split_with(text, limit, m);
    for c in &chunks {
        assert!(m.of(c) <= limit, "chunk over {limit} ({m:?}): {c:?}");
        assert!(!c.trim().is_empty());
        let fences = c.lines().filter(|l| is_fence_line(l)).count();
        assert_eq!(fences % 2, 0, "unbalanced fences at {limit}: {c:?}");
    }
    assert_eq!(
        content(&chunks.join("\n")),
        content(text),
        "content lost at {limit} ({m:?})"
    );
    let fence_lines = |s: &str| s.lines().filter(|l| is_fence_line(l)).count();
    fence_lines(&chunks.join("\n")) - fence_lines(text)
}

#[test]
fn property_limits_content_and_fences() {
    let mut r = rng(0x5eed);
    let mut reopened = 0;
    for _ in 0..300 {
        let text = gen_text(&mut r);
        for &limit in &[20usize, 33, 64, 100, 257, 4000] {
            reopened += check(&text, limit, Measure::Chars);
            reopened += check(&text, limit, Measure::Utf16);
        }
    }
    assert!(
        reopened > 100,
        "generator should force fence repairs ({reopened})"
    );
}

#[test]
fn short_text_is_one_chunk() {
    assert_eq!(split("  hello world \n", 100), vec!["hello world"]);
    assert!(split("", 10).is_empty());
    assert!(split(" \n\n ", 10).is_empty());
}

#[test]
fn prefers_paragraph_then_sentence_then_word() {
    let t = "One two. Three four\n\nFive six seven.";
    assert_eq!(split(t, 30), vec!["One two. Three four", "Five six seven."]);
    let t = "One two. Three four five six";
    assert_eq!(split(t, 22), vec!["One two.", "Three four five six"]);
    let t = "alpha beta gamma delta";
    assert_eq!(split(t, 12), vec!["alpha beta", "gamma delta"]);
}

#[test]
fn hard_cut_counts_chars_not_bytes() {
    let t = "é".repeat(25);
    let chunks = split(&t, 10);
    assert_eq!(
        chunks.iter().map(|c| c.chars().count()).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    assert_eq!(split(&"x".repeat(3), 0), vec!["x", "x", "x"]);
}

#[test]
fn utf16_counts_surrogate_pairs() {
    let t = "😀".repeat(10);
    let u = split_utf16(&t, 8);
    assert_eq!(
        u.iter().map(|c| c.chars().count()).collect::<Vec<_>>(),
        vec![4, 4, 2]
    );
    assert_eq!(split(&t, 8).len(), 2);
    assert_eq!(Measure::Utf16.of("a😀"), 3);
}

#[test]
fn code_block_kept_whole_when_it_fits() {
    let code = "```rust\nfn main() {}\nlet x = 1;\n```";
    let t = format!("Intro text here that is long enough.\n{code}\nAfter.");
    let chunks = split(&t, 40);
    assert!(chunks.iter().any(|c| c == code), "{chunks:?}");
}

#[test]
fn oversized_code_block_is_closed_and_reopened() {
    let mut t = String::from("Intro.\n\n```python\n");
    for i in 0..30 {
        t.push_str(&format!("print({i})\n"));
    }
    t.push_str("```\nOutro.");
    let chunks = split(&t, 60);
    assert_eq!(chunks[0], "Intro.");
    assert!(chunks.len() > 3);
    for c in &chunks[1..chunks.len() - 1] {
        assert!(c.starts_with("```python\n"), "{c:?}");
        assert!(c.ends_with("\n```"), "{c:?}");
        // Cuts fall between code lines.
        assert!(
            c.lines()
                .all(|l| l.starts_with("```") || l.starts_with("print(")),
            "{c:?}"
        );
    }
    assert!(chunks.last().is_some_and(|c| c.ends_with("Outro.")));
    assert!(check(&t, 60, Measure::Chars) > 0);
}

#[test]
fn long_code_line_is_hard_cut_inside_fence() {
    let t = format!("```\n{}\n```", "y".repeat(50));
    let chunks = split(&t, 20);
    assert!(chunks.len() >= 4, "{chunks:?}");
    for c in &chunks {
        assert!(c.starts_with("```\n") && c.ends_with("\n```"), "{c:?}");
        assert!(c.chars().count() <= 20);
    }
    let ys: usize = chunks.iter().map(|c| c.matches('y').count()).sum();
    assert_eq!(ys, 50);
}

#[test]
fn unclosed_fence_is_closed() {
    let chunks = split("text\n```sh\nls -la", 100);
    assert_eq!(chunks, vec!["text\n```sh\nls -la\n```"]);
}

#[test]
fn arbitrary_input_never_panics_and_respects_limit() {
    let alphabet: Vec<char> = "ab `\n\n .!?é😀\t。".chars().collect();
    let mut r = rng(77);
    for _ in 0..2000 {
        let len = (r() % 120) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[(r() % alphabet.len() as u64) as usize])
            .collect();
        let limit = 2 + (r() % 40) as usize;
        for m in [Measure::Chars, Measure::Utf16] {
            let chunks = split_with(&text, limit, m);
            assert!(chunks.iter().all(|c| m.of(c) <= limit), "{text:?} {limit}");
            let kept = |s: &str| {
                s.chars()
                    .filter(|c| !c.is_whitespace() && *c != '`')
                    .count()
            };
            // Reopened fences repeat their info string, so only fence-free text is exact.
            if text.contains('`') {
                assert!(kept(&chunks.concat()) >= kept(&text), "{text:?} {limit}");
            } else {
                assert_eq!(kept(&chunks.concat()), kept(&text), "{text:?} {limit}");
            }
        }
    }
}
