//! Keeping every request inside the model's context window.
//!
//! Two mechanisms:
//! - `fit` (pure): before each model call, drops the oldest history and
//!   elides old tool results until system prompt + tool schemas + messages
//!   fit the window minus the answer's reserve, estimated at
//!   `CHARS_PER_TOKEN` characters per token. Deterministic and tested.
//! - Compaction: when a session's unsummarised transcript passes 3/4 of the
//!   budget, the reactor plans one: the oldest unsummarised turns (at most a
//!   budget's worth) are summarised by the model into a summary turn, and
//!   the newest third of the budget stays verbatim. Before summarising, the
//!   model gets one call with only the `memory` tool, to save durable facts.
//!   The full transcript stays on disk.

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

/// Fits `history` + `current` (this run's messages, user turn first) into
/// `budget` characters: drops whole history messages from the oldest end
/// (never leaving an orphaned tool result or an assistant turn first),
/// then elides tool results of this run except the newest, then truncates
/// the newest tool result. Returns the messages to send.
pub fn fit(history: &[Message], current: &[Message], budget: usize) -> Vec<Message> {
    // A leading summary stands for everything before it: it is dropped last.
    if let Some(first) = history.first() {
        if is_summary(first) {
            let rest = fit(
                &history[1..],
                current,
                budget.saturating_sub(message_chars(first)),
            );
            if total(&rest) + message_chars(first) <= budget {
                return std::iter::once(first.clone()).chain(rest).collect();
            }
            return rest;
        }
    }
    let cur = total(current);
    let mut start = 0;
    let mut hist = total(history);
    while start < history.len() && hist + cur > budget {
        hist -= message_chars(&history[start]);
        start += 1;
    }
    // A kept history must open with a plain user message.
    while start < history.len() && !starts_cleanly(&history[start]) {
        hist -= message_chars(&history[start]);
        start += 1;
    }
    let mut out: Vec<Message> = history[start..].to_vec();
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

pub const SUMMARY_INSTRUCTIONS: &str = "You write the running summary of a conversation between a user and their assistant, for the assistant's own later use. Keep every fact, decision, open task, name, number and preference that may matter later; drop chit-chat. Write plain sentences or short bullets, at most 250 words. Output only the summary.";

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
        let out = fit(&history, &current, 260);
        assert!(total(&out) <= 260);
        assert_eq!(out.len(), 3, "c, d and the new message");
        assert_eq!(out[0].role, Role::User);
        let out = fit(&history, &current, 10_000);
        assert_eq!(out.len(), 5, "everything fits");
        // A budget that would start the history on an assistant turn drops it too.
        let out = fit(&history, &current, 160);
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
        let out = fit(&history, &[user("now")], 280);
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
        let out = fit(&[], &current, 3500);
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
        let out = fit(&[], &current, 1000);
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
}
