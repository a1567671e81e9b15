//! In-chat commands, sans-IO: which text is a command (`/new` `/reset`
//! `/status` `/model` `/think` `/compact` `/stop` `/help` `/whoami`), the
//! menu a channel shows (Telegram's `setMyCommands`), and `/think` levels.
//! The same for every channel, the web chat and `pinch chat`; the gateway
//! acts on them (`gateway/reactor/commands.rs`). Any other `/word` is text for the
//! model; `/cmd@otherbot` is someone else's command.

/// The commands, with the one-line help shown by `/help` and in
/// Telegram's command menu (`setMyCommands`).
pub const MENU: [(&str, &str); 9] = [
    ("new", "Start a new conversation (the old one is archived)"),
    ("reset", "Same as /new"),
    ("status", "Model, context use, queue, last error"),
    (
        "model",
        "Show or switch this chat's model: /model provider/model | default",
    ),
    (
        "think",
        "Reasoning effort: /think off | low | medium | high",
    ),
    ("compact", "Summarise the conversation so far"),
    ("stop", "Stop the answer being written"),
    ("help", "List the commands"),
    ("whoami", "Your sender id (for allowFrom)"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    New,
    Status,
    Model,
    Think,
    Compact,
    Stop,
    Help,
    Whoami,
}

/// What a text is, as far as commands go.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Command {
        command: Command,
        args: &'a str,
    },
    /// `/cmd@someone_else`: not for this bot; ignored.
    OtherBot,
    /// Ordinary text (unknown `/words` included) for the model.
    Text,
}

/// Recognises a command at the start of `text`. `bot` is this bot's
/// username, where the channel has one: `/cmd@<bot>` is ours, any other
/// `@name` is not.
pub fn parse<'a>(text: &'a str, bot: Option<&str>) -> Parsed<'a> {
    let t = text.trim_start();
    let Some(rest) = t.strip_prefix('/') else {
        return Parsed::Text;
    };
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (word, args) = (rest.get(..end).unwrap_or(""), rest.get(end..).unwrap_or(""));
    let (name, target) = match word.split_once('@') {
        Some((n, t)) => (n, Some(t)),
        None => (word, None),
    };
    let command = match name.to_ascii_lowercase().as_str() {
        "new" | "reset" => Command::New,
        "status" => Command::Status,
        "model" => Command::Model,
        "think" | "thinking" => Command::Think,
        "compact" => Command::Compact,
        "stop" | "abort" => Command::Stop,
        "help" | "commands" => Command::Help,
        "whoami" | "id" => Command::Whoami,
        _ => return Parsed::Text,
    };
    if let Some(target) = target {
        if !bot.is_some_and(|b| b.eq_ignore_ascii_case(target)) {
            return Parsed::OtherBot;
        }
    }
    Parsed::Command {
        command,
        args: args.trim(),
    }
}

/// The reasoning budget for a `/think` level: `Some(0)` is off.
pub fn think_budget(level: &str, default: u32) -> Option<u32> {
    match level {
        "off" => Some(0),
        "minimal" | "low" => Some((default / 4).max(128)),
        "medium" => Some(default.max(128)),
        "high" => Some(default.saturating_mul(4).max(512)),
        _ => None,
    }
}

pub fn command_name(c: Command) -> &'static str {
    match c {
        Command::New => "new",
        Command::Status => "status",
        Command::Model => "model",
        Command::Think => "think",
        Command::Compact => "compact",
        Command::Stop => "stop",
        Command::Help => "help",
        Command::Whoami => "whoami",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised_and_others_go_to_the_model() {
        let c = |t| match parse(t, Some("pinch_bot")) {
            Parsed::Command { command, args } => Some((command, args)),
            _ => None,
        };
        assert_eq!(c("/status"), Some((Command::Status, "")));
        assert_eq!(c("  /new  what next?"), Some((Command::New, "what next?")));
        assert_eq!(c("/reset"), Some((Command::New, "")));
        assert_eq!(
            c("/MODEL local/local"),
            Some((Command::Model, "local/local"))
        );
        assert_eq!(c("/think@pinch_bot high"), Some((Command::Think, "high")));
        assert_eq!(
            parse("/stop@other_bot", Some("pinch_bot")),
            Parsed::OtherBot
        );
        assert_eq!(parse("/stop@x", None), Parsed::OtherBot);
        assert_eq!(parse("/weather today", None), Parsed::Text);
        assert_eq!(parse("hello /new", None), Parsed::Text);
        assert_eq!(parse("/", None), Parsed::Text);
        assert_eq!(parse("/é@", None), Parsed::Text);
        assert_eq!(parse("", None), Parsed::Text);
    }

    #[test]
    fn think_levels_map_to_budgets() {
        assert_eq!(think_budget("off", 1024), Some(0));
        assert_eq!(think_budget("low", 1024), Some(256));
        assert_eq!(think_budget("medium", 1024), Some(1024));
        assert_eq!(think_budget("high", 1024), Some(4096));
        assert_eq!(think_budget("max", 1024), None);
        assert_eq!(think_budget("high", u32::MAX), Some(u32::MAX));
    }

    #[test]
    fn the_menu_names_every_command_once() {
        for (name, help) in MENU {
            assert!(
                matches!(parse(&format!("/{name}"), None), Parsed::Command { .. }),
                "{name}"
            );
            assert!(!help.is_empty() && help.len() < 256);
        }
    }
}
