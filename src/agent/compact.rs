//! Keeping every request inside the model's context window.
//!
//! Both mechanisms keep the prompt prefix (system prompt, tools, earlier
//! turns) byte-identical for as many requests as possible, because a
//! provider's prompt cache only serves an unchanged prefix:
//! - Compaction (the normal path): when a session's unsummarised transcript
//!   passes 3/4 of the budget (or 3/4 of the turn limit), the reactor plans
//!   one: the oldest unsummarised turns are summarised by the model into one
//!   summary turn of at most `summary_max_chars` (an eighth of the budget,
//!   200 to 2,000 bytes), and the newest quarter of the budget stays
//!   verbatim. Summary and kept turns take at most 3/8 of the budget, so at
//!   least 3/8 is head-room that the following turns fill by appending to
//!   an unchanged prefix; the next compaction comes only when it is used up. Before
//!   summarising, the model gets one call with only the `memory` tool, to
//!   save durable facts. The full transcript stays on disk.
//! - `fit` (pure, the safety net): before each model call, drops the oldest
//!   history in half-budget chunks anchored on the session's character
//!   offsets, then elides old tool results, until system prompt + tool
//!   schemas + messages fit the window minus the answer's reserve
//!   (estimated at `CHARS_PER_TOKEN` characters per token). Deterministic
//!   and tested.

use super::prompt::CHARS_PER_TOKEN;
use crate::llm::{Message, Part, Role, ToolSpec};
use crate::store::message_chars;

/// What the reactor hands a run when the session needs compacting.
#[derive(Debug, Clone)]
pub struct Compaction {
    pub prior_summary: Option<String>,
    /// The turns to summarise, oldest first.
    pub old: Vec<Message>,
    /// The last sequence number summarised, and the session's cumulative
    /// characters through it.
    pub through_seq: u64,
    pub through_chars: u64,
}

/// Characters of system prompt and tool schemas in a request (schemas as
/// the wire APIs wrap them, with a margin).
pub fn overhead(system: &str, tools: &[ToolSpec]) -> usize {
    let tool_chars: usize = tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len() + 80)
        .sum();
    system.len() + tool_chars
}

/// Characters available for messages in one request to a model.
pub fn message_budget(
    context_window: u32,
    max_tokens: u32,
    system: &str,
    tools: &[ToolSpec],
) -> usize {
    let window = (context_window.saturating_sub(max_tokens) as usize) * CHARS_PER_TOKEN;
    window.saturating_sub(overhead(system, tools))
}

fn total(msgs: &[Message]) -> usize {
    msgs.iter().map(message_chars).sum()
}

const ELIDED: &str = "[tool result elided to fit the context window]";

/// The transcript part of a request: messages, oldest first, with the
/// session's cumulative characters through each (`Turn::cum_chars`). When
/// the two lengths differ, offsets are counted from the first message.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    pub messages: &'a [Message],
    pub cum_chars: &'a [u64],
}

impl History<'static> {
    pub const EMPTY: History<'static> = History {
        messages: &[],
        cum_chars: &[],
    };
}

impl<'a> History<'a> {
    /// History without stored offsets (counted from the first message).
    pub fn plain(messages: &'a [Message]) -> History<'a> {
        History {
            messages,
            cum_chars: &[],
        }
    }

    fn tail(self) -> History<'a> {
        History {
            messages: self.messages.get(1..).unwrap_or(&[]),
            cum_chars: self.cum_chars.get(1..).unwrap_or(&[]),
        }
    }

    /// Where each message starts in the session's character count.
    fn starts(&self) -> Vec<u64> {
        if self.cum_chars.len() == self.messages.len() {
            self.messages
                .iter()
                .zip(self.cum_chars)
                .map(|(m, c)| c.saturating_sub(message_chars(m) as u64))
                .collect()
        } else {
            let mut at = 0u64;
            self.messages
                .iter()
                .map(|m| {
                    let start = at;
                    at = at.saturating_add(message_chars(m) as u64);
                    start
                })
                .collect()
        }
    }
}

/// Fits `history` + `current` (this run's messages, user turn first) into
/// `budget` characters. Whole history messages go from the oldest end, in
/// chunks: the cut falls only on the first message of a half-budget-sized
/// stretch of the session's transcript (anchored on stored offsets), so
/// while the history grows the cut stays on the same turn and the prompt
/// prefix stays byte-identical until a whole chunk has to go; a cut never
/// leaves an orphaned tool result or an assistant turn first. Then tool
/// results of this run are elided except the newest, then the newest is
/// truncated. Returns the messages to send.
pub fn fit(history: History, current: &[Message], budget: usize) -> Vec<Message> {
    // A leading summary stands for everything before it: it is dropped last.
    if let Some(first) = history.messages.first() {
        if is_summary(first) {
            let rest = fit(
                history.tail(),
                current,
                budget.saturating_sub(message_chars(first)),
            );
            if total(&rest) + message_chars(first) <= budget {
                return std::iter::once(first.clone()).chain(rest).collect();
            }
            return rest;
        }
    }
    let messages = history.messages;
    let cur = total(current);
    let mut start = 0;
    let mut hist = total(messages);
    if hist + cur > budget {
        let chunk = (budget / 2).max(1) as u64;
        let starts = history.starts();
        start = messages.len();
        let mut rest = hist;
        for i in 0..messages.len() {
            if i > 0 && starts[i] / chunk != starts[i - 1] / chunk && rest + cur <= budget {
                start = i;
                break;
            }
            rest -= message_chars(&messages[i]);
        }
        hist = total(&messages[start..]);
    }
    // A kept history must open with a plain user message.
    while start < messages.len() && !starts_cleanly(&messages[start]) {
        hist -= message_chars(&messages[start]);
        start += 1;
    }
    let mut out: Vec<Message> = messages[start..].to_vec();
    let mut cur_msgs = current.to_vec();
    if hist + cur > budget {
        let last_result = cur_msgs
            .iter()
            .rposition(|m| m.parts.iter().any(|p| matches!(p, Part::ToolResult { .. })));
        for (i, m) in cur_msgs.iter_mut().enumerate() {
            if Some(i) == last_result {
                continue;
            }
            for p in m.parts.iter_mut() {
                if let Part::ToolResult { content, .. } = p {
                    if content.len() > ELIDED.len() {
                        *content = ELIDED.to_string();
                    }
                }
            }
        }
        let over = (total(&out) + total(&cur_msgs)).saturating_sub(budget);
        if over > 0 {
            if let Some(i) = last_result {
                for p in cur_msgs[i].parts.iter_mut() {
                    if let Part::ToolResult { content, .. } = p {
                        let keep = content.len().saturating_sub(over + 64);
                        let cut = crate::util::truncate(content, keep).to_string();
                        *content = format!("{cut}\n[truncated to fit the context window]");
                    }
                }
            }
        }
    }
    out.extend(cur_msgs);
    out
}

/// Longest summary kept, in bytes, for a message budget of `budget`
/// characters: an eighth of it, between 200 and 2,000 (about 650 tokens),
/// so a summary never crowds out the head-room it is made for.
pub fn summary_max_chars(budget: usize) -> usize {
    (budget / 8).clamp(200, 2000)
}

/// The prefix of the message a summary turn becomes in a request.
pub const SUMMARY_PREFIX: &str = "[Summary of the earlier conversation]";

fn is_summary(m: &Message) -> bool {
    matches!(m.parts.first(), Some(Part::Text(t)) if t.starts_with(SUMMARY_PREFIX))
}

fn starts_cleanly(m: &Message) -> bool {
    m.role == Role::User && !m.parts.iter().any(|p| matches!(p, Part::ToolResult { .. }))
}

/// Renders turns as plain text for the summariser (tool traffic shortened).
pub fn transcript_text(prior: Option<&str>, old: &[Message]) -> String {
    let mut out = String::new();
    if let Some(p) = prior {
        out.push_str("Earlier summary:\n");
        out.push_str(p);
        out.push_str("\n\nConversation since:\n");
    }
    for m in old {
        let who = if m.role == Role::User {
            "User"
        } else {
            "Assistant"
        };
        for p in &m.parts {
            match p {
                Part::Text(t) => out.push_str(&format!("{who}: {t}\n")),
                Part::ToolCall {
                    name, arguments, ..
                } => out.push_str(&format!(
                    "(assistant called {name} {})\n",
                    crate::util::truncate(arguments, 200)
                )),
                Part::ToolResult {
                    content, is_error, ..
                } => out.push_str(&format!(
                    "(tool {}: {})\n",
                    if *is_error { "error" } else { "result" },
                    crate::util::truncate(content, 300)
                )),
                _ => {}
            }
        }
    }
    out
}

pub const SUMMARY_INSTRUCTIONS: &str = "You write the running summary of a conversation between a user and their assistant, for the assistant's own later use. Keep every fact, decision, open task, name, number and preference that may matter later; drop chit-chat. Write plain sentences or short bullets, at most 150 words. Output only the summary.";

pub const FLUSH_INSTRUCTIONS: &str = "The older part of this conversation is about to be condensed into a summary. If it contains durable facts about the user or standing instructions that are not yet in MEMORY.md, save them now with the memory tool (action append, one fact per call). If there is nothing worth keeping, answer just: nothing to save.";

#[cfg(test)]
mod tests {
    use super::*;

    fn user(t: &str) -> Message {
        Message {
            role: Role::User,
            parts: vec![Part::Text(t.into())],
        }
    }
    fn asst(t: &str) -> Message {
        Message {
            role: Role::Assistant,
            parts: vec![Part::Text(t.into())],
        }
    }
    fn result(t: &str) -> Message {
        Message {
            role: Role::User,
            parts: vec![Part::ToolResult {
                call_id: "c".into(),
                content: t.into(),
                is_error: false,
            }],
        }
    }
    fn call() -> Message {
        Message {
            role: Role::Assistant,
            parts: vec![Part::ToolCall {
                id: "c".into(),
                name: "read_file".into(),
                arguments: "{}".into(),
            }],
        }
    }

    #[test]
    fn drops_oldest_history_first_and_starts_with_a_user_turn() {
        let history = vec![
            user(&"a".repeat(100)),
            asst(&"b".repeat(100)),
            user(&"c".repeat(100)),
            asst(&"d".repeat(100)),
        ];
        let current = vec![user("now")];
        let out = fit(History::plain(&history), &current, 260);
        assert!(total(&out) <= 260);
        assert_eq!(out.len(), 3, "c, d and the new message");
        assert_eq!(out[0].role, Role::User);
        let out = fit(History::plain(&history), &current, 10_000);
        assert_eq!(out.len(), 5, "everything fits");
        // A budget that would start the history on an assistant turn drops it too.
        let out = fit(History::plain(&history), &current, 160);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_leading_summary_is_kept_while_older_turns_go() {
        let summary = user(&format!("{SUMMARY_PREFIX}\nthey like tea"));
        let history = vec![
            summary.clone(),
            user(&"c".repeat(100)),
            asst(&"d".repeat(100)),
            user(&"e".repeat(100)),
            asst(&"f".repeat(100)),
        ];
        let out = fit(History::plain(&history), &[user("now")], 280);
        assert_eq!(out[0], summary);
        assert_eq!(out.len(), 4, "summary, e, f, now");
        assert!(total(&out) <= 280);
    }

    #[test]
    fn elides_old_tool_results_then_truncates_the_newest() {
        let current = vec![
            user("go"),
            call(),
            result(&"x".repeat(3000)),
            call(),
            result(&"y".repeat(3000)),
        ];
        let out = fit(History::EMPTY, &current, 3500);
        assert!(total(&out) <= 3500, "{}", total(&out));
        let texts: Vec<String> = out
            .iter()
            .flat_map(|m| m.parts.iter())
            .filter_map(|p| {
                if let Part::ToolResult { content, .. } = p {
                    Some(content.clone())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(texts[0], ELIDED);
        assert!(
            texts[1].starts_with("yyy"),
            "the newest result is kept as far as it fits"
        );
        let out = fit(History::EMPTY, &current, 1000);
        assert!(total(&out) <= 1000, "{}", total(&out));
    }

    #[test]
    fn budget_accounts_for_system_prompt_and_tools() {
        let tools = vec![ToolSpec {
            name: "t".into(),
            description: "d".into(),
            parameters: serde_json::json!({}),
        }];
        let b = message_budget(1024, 256, &"s".repeat(300), &tools);
        assert_eq!(b, 768 * CHARS_PER_TOKEN - 300 - (1 + 1 + 2 + 80));
        assert_eq!(message_budget(512, 600, "", &[]), 0);
    }

    #[test]
    fn transcript_text_includes_prior_summary_and_shortens_tools() {
        let t = transcript_text(
            Some("they like tea"),
            &[user("hi"), call(), result(&"z".repeat(1000))],
        );
        assert!(t.starts_with("Earlier summary:\nthey like tea"));
        assert!(t.contains("User: hi"));
        assert!(t.len() < 700);
    }

    #[test]
    fn a_growing_history_keeps_its_cut_until_a_whole_chunk_goes() {
        // Turns of 100 characters appended one at a time; budget 1000.
        let mut history: Vec<Message> = Vec::new();
        let mut cums: Vec<u64> = Vec::new();
        let mut firsts = Vec::new();
        for i in 0..40 {
            let m = if i % 2 == 0 {
                user(&format!("{i:0>100}"))
            } else {
                asst(&format!("{i:0>100}"))
            };
            let prev = cums.last().copied().unwrap_or(0);
            cums.push(prev + message_chars(&m) as u64);
            history.push(m);
            let h = History {
                messages: &history,
                cum_chars: &cums,
            };
            let out = fit(h, &[user("now")], 1000);
            assert!(total(&out) <= 1000);
            firsts.push(out[0].clone());
        }
        // The first kept turn changes at most once per 5 turns (a
        // half-budget chunk), never turn by turn.
        let changes = firsts.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes <= 40 / 5, "{changes} prefix changes");
        let runs_of_one = firsts
            .windows(3)
            .filter(|w| w[0] != w[1] && w[1] != w[2])
            .count();
        assert_eq!(runs_of_one, 0, "a cut never moves on two turns in a row");
        // The same history with its offsets counted from a later start
        // (older turns not loaded) cuts at the same turn.
        let h = History {
            messages: &history[10..],
            cum_chars: &cums[10..],
        };
        assert_eq!(fit(h, &[user("now")], 1000)[0], *firsts.last().unwrap());
    }
}
