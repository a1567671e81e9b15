//! The fuzz targets: one function per parser of outside input. Each takes
//! raw bytes, must not panic, and returns `Err` when an invariant breaks.

use super::engine::Verdict;
use crate::llm::sse::{SseEvent, SseParser};
use crate::llm::StreamDecoder;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A fixed time for everything that takes "now" (2026-03-29 00:30 UTC,
/// the night Europe springs forward).
const NOW_MS: u64 = 1_774_744_200_000;

fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

/// Splits `input` at the first newline: a small header line and the rest.
fn head_rest(input: &[u8]) -> (String, &[u8]) {
    match input.iter().position(|b| *b == b'\n') {
        Some(i) => (text(&input[..i]).into_owned(), &input[i + 1..]),
        None => (String::new(), input),
    }
}

/// Cut points derived from the input itself, so a failure replays exactly.
fn cuts(input: &[u8]) -> Vec<usize> {
    let mut rng = super::engine::Rng::new(super::engine::hash(input));
    let mut v: Vec<usize> = (0..1 + rng.below(8))
        .map(|_| rng.below(input.len() + 1))
        .collect();
    v.sort_unstable();
    v
}

fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        out.push(&input[at..c]);
        at = c;
    }
    out.push(&input[at..]);
    out
}

/// `GET /api/sessions/<key>`, `/hooks/<name>`: the path decoder.
pub fn percent_decode(input: &[u8]) -> Verdict {
    let s = text(input);
    let out = crate::net::percent::decode_lossy(&s);
    if !s.contains('%') && out != s {
        return Err(format!(
            "changed a string without escapes: {s:?} -> {out:?}"
        ));
    }
    Ok(())
}

/// WebSocket text frames: the JSON request envelope.
pub fn ws_frame(input: &[u8]) -> Verdict {
    let s = text(input);
    match crate::gateway::protocol::parse(&s) {
        Ok(req) if req.kind.as_str() != "req" => {
            Err("accepted a frame whose type is not req".into())
        }
        Ok(_) => Ok(()),
        Err(frame) => {
            let v: Value = serde_json::from_str(&frame)
                .map_err(|e| format!("error frame is not JSON: {e}"))?;
            if v["type"] != "res" || v["ok"] != false {
                return Err(format!("error frame has the wrong shape: {frame}"));
            }
            Ok(())
        }
    }
}

fn sse_all(parser_cap: usize, parts: &[&[u8]]) -> Result<Vec<SseEvent>, String> {
    let mut p = SseParser::new(parser_cap);
    let mut out = Vec::new();
    for part in parts {
        out.extend(p.feed(part).map_err(|e| e.to_string())?);
    }
    out.extend(p.finish());
    Ok(out)
}

/// Server-sent events: the same events whichever way the bytes are split.
pub fn sse(input: &[u8]) -> Verdict {
    let whole = sse_all(4096, &[input]);
    let split = sse_all(4096, &pieces(input, &cuts(input)));
    if let (Ok(a), Ok(b)) = (&whole, &split) {
        if a != b {
            return Err(format!(
                "events depend on how the bytes were split: {a:?} vs {b:?}"
            ));
        }
    }
    if whole.is_ok() != split.is_ok() {
        return Err(format!(
            "outcome depends on how the bytes were split: {whole:?} vs {split:?}"
        ));
    }
    Ok(())
}

/// A stream decoded whole and in pieces ends the same way: equal events
/// when both succeed (events before an error may differ: they streamed).
fn same_outcome(a: Decoded, b: Decoded) -> Verdict {
    match (&a.error, &b.error) {
        (None, None) if a.events != b.events => Err(format!(
            "decoding depends on how the bytes were split: {} vs {}",
            a.events, b.events
        )),
        (Some(_), None) | (None, Some(_)) => Err(format!(
            "success depends on how the bytes were split: {:?} vs {:?}",
            a.error, b.error
        )),
        _ => Ok(()),
    }
}

struct Decoded {
    events: String,
    error: Option<String>,
}

fn decode_stream(parts: &[&[u8]], mut decoder: impl StreamDecoder) -> Decoded {
    let mut p = SseParser::new(64 * 1024);
    let mut out = Vec::new();
    let done = |out: &Vec<crate::llm::types::StreamEvent>, error: Option<String>| Decoded {
        events: format!("{out:?}"),
        error,
    };
    for part in parts {
        let events = match p.feed(part) {
            Ok(e) => e,
            Err(e) => return done(&out, Some(format!("sse: {e}"))),
        };
        for ev in &events {
            match decoder.feed(ev) {
                Ok(v) => out.extend(v),
                Err(e) => return done(&out, Some(format!("{e:?}"))),
            }
        }
    }
    for ev in &p.finish() {
        match decoder.feed(ev) {
            Ok(v) => out.extend(v),
            Err(e) => return done(&out, Some(format!("{e:?}"))),
        }
    }
    match decoder.finish() {
        Ok(v) => out.extend(v),
        Err(e) => return done(&out, Some(format!("{e:?}"))),
    }
    done(&out, None)
}

/// The same stream decoded whole and in pieces cut where the input says
/// gives the same events and the same error.
fn stream_in_pieces<D: StreamDecoder>(input: &[u8], decoder: fn() -> D) -> Verdict {
    let run = |parts: &[&[u8]]| decode_stream(parts, decoder());
    same_outcome(run(&[input]), run(&pieces(input, &cuts(input))))
}

/// OpenAI-compatible chat completion streams (llama.cpp, Ollama, OpenAI).
pub fn openai_stream(input: &[u8]) -> Verdict {
    stream_in_pieces(input, || {
        crate::llm::openai::Decoder::with_max_tool_args(4096)
    })?;
    let _ = crate::llm::openai::parse_error(500, input, Some("1"));
    Ok(())
}

/// Anthropic Messages streams.
pub fn anthropic_stream(input: &[u8]) -> Verdict {
    stream_in_pieces(input, || {
        crate::llm::anthropic::Decoder::with_max_tool_args(4096)
    })?;
    let _ = crate::llm::anthropic::parse_error(529, input, Some("1"));
    Ok(())
}

/// Provider error bodies and `Retry-After` values: first line is the header.
pub fn model_error(input: &[u8]) -> Verdict {
    let (retry_after, body) = head_rest(input);
    for status in [400u16, 401, 404, 413, 429, 500, 503] {
        let _ = crate::llm::openai::parse_error(status, body, Some(&retry_after));
        let _ = crate::llm::anthropic::parse_error(status, body, Some(&retry_after));
    }
    Ok(())
}

thread_local! {
    static TOOLS: std::cell::RefCell<Option<(crate::agent::tools::Registry, std::path::PathBuf)>> =
        const { std::cell::RefCell::new(None) };
}

/// Tool calls as a model sends them: first line the tool name, then the
/// arguments JSON. File tools run for real inside a temporary workspace;
/// programs (exec, skill scripts) and network tools are not started here.
pub fn tool_args(input: &[u8]) -> Verdict {
    let (name, args) = head_rest(input);
    let name = match name.as_str() {
        "read_file" | "write_file" | "edit_file" | "list_dir" | "memory" | "skill" => name,
        _ => "no_such_tool".to_string(),
    };
    let args = text(args);
    TOOLS.with(|t| {
        let mut t = t.borrow_mut();
        if t.is_none() {
            let dir = std::env::temp_dir().join(format!("pinch-fuzz-tools-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let cfg = crate::config::parse_str("{}", None, &crate::config::env::Vars::default())
                .map_err(|e| e.to_string())?;
            let reg = crate::agent::tools::Registry::new(&cfg, &dir)?;
            *t = Some((reg, dir));
        }
        let Some((reg, _)) = t.as_ref() else {
            return Err("tool registry missing".to_string());
        };
        let out = reg.run(&name, &args, Instant::now() + Duration::from_secs(2));
        if out.content.len() > 64 * 1024 {
            return Err(format!(
                "tool result of {} bytes is not capped",
                out.content.len()
            ));
        }
        Ok(())
    })?;
    let _ = crate::agent::tools::summarize_args(&args);
    Ok(())
}

/// Removes the tool target's temporary workspace.
pub fn tool_args_cleanup() {
    TOOLS.with(|t| {
        if let Some((_, dir)) = t.borrow_mut().take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}

/// Text from outside that tools and adapters reshape: exec command lines,
/// fetched HTML, web search responses, Telegram HTML escaping, in-chat
/// commands (`/cmd@bot args`) and `/think` levels.
pub fn tool_text(input: &[u8]) -> Verdict {
    let s = text(input);
    let _ = crate::agent::tools::split_words(&s);
    let _ = crate::agent::tools::html_to_text(&s);
    let _ = crate::agent::search::parse_response(&s);
    let _ = crate::agent::search::error_message(502, &s);
    let enc = crate::net::percent::encode(&s);
    if !enc.is_ascii() {
        return Err(format!("percent_encode left non-ASCII: {enc:?}"));
    }
    let _ = crate::channel::telegram::escape_html(&s);
    let _ = crate::channel::telegram::redact(&s);
    for bot in [None, Some("PinchBot")] {
        if let crate::channel::commands::Parsed::Command { args, .. } =
            crate::channel::commands::parse(&s, bot)
        {
            if args.len() > s.len() {
                return Err(format!("command arguments longer than the text: {args:?}"));
            }
        }
    }
    let _ = crate::channel::commands::think_budget(&s, 1024);
    Ok(())
}

/// `getUpdates` bodies and other Bot API responses.
pub fn telegram_update(input: &[u8]) -> Verdict {
    use crate::channel::telegram::{parse_updates, BotIdentity};
    let bot = BotIdentity {
        id: 7_000_000_001,
        username: "PinchBot".into(),
    };
    if let Ok(batch) = parse_updates(input, &bot, "main") {
        for e in &batch.envelopes {
            if e.text.chars().count() > crate::channel::envelope::MAX_TEXT_CHARS {
                return Err(format!(
                    "envelope text of {} chars is over the cap",
                    e.text.chars().count()
                ));
            }
        }
    }
    for status in [200u16, 400, 401, 409, 429, 502] {
        let _ = crate::channel::telegram::classify_response(status, input);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(input) {
        let _ = BotIdentity::from_get_me(&v["result"]);
    }
    Ok(())
}

/// Slack Socket Mode frames through the classifier, WebSocket framing, Web API answers, and
/// inbound markup; outbound mrkdwn must never carry an unescaped `<` from
/// the text (a mention or link the Markdown did not make).
pub fn slack_frame(input: &[u8]) -> Verdict {
    use crate::channel::slack::{codec, format};
    let bot = codec::BotIdentity {
        user_id: "UBOT12345".into(),
        bot_id: "BBOT12345".into(),
        team_id: "T1".into(),
    };
    let mut c = codec::Classifier::new(bot, "default");
    let s = text(input);
    if let Ok(codec::Frame::Envelope { payload, .. }) = codec::parse_frame(&s) {
        if let Ok(inc) = c.classify(&payload) {
            if inc.envelope.text.chars().count() > crate::channel::envelope::MAX_TEXT_CHARS {
                return Err("envelope text over the cap".into());
            }
            c.remember(&inc);
            if c.classify(&payload).is_ok() {
                return Err("a remembered event classified again".into());
            }
        }
    }
    for status in [200u16, 429, 502] {
        let _ = codec::classify(status, Some(&s), input);
    }
    let _ = codec::plain_text(&s);
    let _ = codec::ts_to_ms(&s);
    // The same text as a `conversations.history` answer searched for a send.
    if let Ok(answer) = serde_json::from_str::<Value>(&s) {
        if let Some(ts) = codec::lookup::find(&answer, "1a.18c") {
            if ts.chars().count() > 32 {
                return Err(format!("a found ts over 32 characters: {ts:?}"));
            }
        }
    }
    // The same bytes as WebSocket frames from a server.
    if let Ok(Some((frame, used))) = crate::net::websocket::parse_frame(input, 1 << 16) {
        if used > input.len() || frame.payload.len() > used {
            return Err(format!("frame parse used {used} of {} bytes", input.len()));
        }
    }
    // And through the reassembling receiver, as the client (unmasked
    // server frames) and as the gateway (masked client frames only), fed
    // in two pieces: no message may outgrow the limit.
    for require_mask in [false, true] {
        let max = 4096;
        let mut receiver = crate::net::websocket::Receiver::new(max, require_mask);
        let (head, tail) = input.split_at(input.len() / 2);
        receiver.feed(head);
        receiver.feed(tail);
        for _ in 0..64 {
            let size = match receiver.next_message() {
                Ok(Some(crate::net::websocket::Message::Text(t))) => t.len(),
                Ok(Some(crate::net::websocket::Message::Binary(b)))
                | Ok(Some(crate::net::websocket::Message::Ping(b)))
                | Ok(Some(crate::net::websocket::Message::Close(b))) => b.len(),
                Ok(Some(crate::net::websocket::Message::Pong)) => 0,
                Ok(None) | Err(_) => break,
            };
            if size > max {
                return Err(format!("a {size}-byte message passed a {max}-byte limit"));
            }
        }
    }
    let out = format::to_mrkdwn(&s);
    let links = out.matches("<http").count() + out.matches("<mailto:").count();
    if out.matches('<').count() != links {
        return Err(format!("unescaped < in mrkdwn: {out:?}"));
    }
    Ok(())
}

/// Discord: Gateway frames through a live session (READY, dispatches,
/// op 1/7/9/10/11), `MESSAGE_CREATE` payloads, REST answers and rate-limit
/// headers, `GET /gateway/bot`, and the Discord reply split (no message over
/// 2,000 characters).
pub fn discord_gateway(input: &[u8]) -> Verdict {
    use crate::channel::discord::{format, parse_message, rest, Session};
    let s = text(input);
    let mut session = Session::new("token", crate::channel::discord::intents(false));
    session.on_connected(false, NOW_MS);
    let mut now = NOW_MS;
    for line in s.lines().take(64) {
        now += 500;
        let _ = session.on_frame(line, now, super::engine::hash(line.as_bytes()));
        let _ = session.on_tick(now);
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            let d = v.get("d").unwrap_or(&v);
            if let Ok(env) = parse_message(d, "1100000000000000001", "default", false) {
                if env.text.chars().count() > crate::channel::envelope::MAX_TEXT_CHARS {
                    return Err("envelope text over the cap".into());
                }
            }
        }
    }
    let _ = session.on_close(Some(4000), now, 7);
    for status in [200u16, 400, 401, 403, 404, 429, 502] {
        let _ = rest::classify(status, input, Some(&s));
    }
    let _ = rest::parse_gateway_bot(input);
    let _ = rest::seconds_to_ms(&s);
    let _ = rest::parse_rate_headers(|_| Some(s.as_ref()));
    for part in format::render(&s, 2000, 17) {
        if part.chars().count() > 2000 {
            return Err(format!("Discord message of {} chars", part.chars().count()));
        }
    }
    Ok(())
}

/// Reply splitting for channels: no chunk over the limit. First byte picks
/// the limit, from 2 (one UTF-16 surrogate pair cannot be cut further).
pub fn reply_split(input: &[u8]) -> Verdict {
    use crate::channel::split::{split_with, Measure};
    let (limit, body) = match input.split_first() {
        Some((b, rest)) => (usize::from(*b % 64) + 2, rest),
        None => (2, input),
    };
    let s = text(body);
    for m in [Measure::Chars, Measure::Utf16] {
        for chunk in split_with(&s, limit, m) {
            if m.of(&chunk) > limit {
                return Err(format!(
                    "chunk of {} units over the limit {limit} ({m:?})",
                    m.of(&chunk)
                ));
            }
        }
    }
    Ok(())
}

/// `.env` files and `$NAME` references.
pub fn dotenv(input: &[u8]) -> Verdict {
    let s = text(input);
    if let Ok(map) = crate::config::env::parse_dotenv(&s) {
        let vars = crate::config::env::Vars {
            dotenv: map,
            ..Default::default()
        };
        let _ = crate::config::env::substitute_str(&s, &vars);
    }
    Ok(())
}

/// `pinch.json`: JSONC stripping (positions kept), the schema, validation.
pub fn pinch_json(input: &[u8]) -> Verdict {
    let s = text(input);
    let stripped = crate::config::jsonc::strip(&s);
    if stripped.len() != s.len() {
        return Err(format!(
            "strip changed the length {} -> {}",
            s.len(),
            stripped.len()
        ));
    }
    let mut vars = crate::config::env::Vars::default();
    vars.process.insert("OPENAI_KEY".into(), "sk-test".into());
    let _ = crate::config::parse_str(&s, Some(Path::new("/h/pinch.json")), &vars);
    let n = super::engine::hash(input) as usize;
    let off = n % (s.len() + 1);
    let _ = crate::config::jsonc::path_at(&s, off);
    let (line, col) = crate::config::jsonc::line_col(&s, off);
    let _ = crate::config::jsonc::offset_at(&s, line, col);
    let _ = crate::config::jsonc::offset_at(&s, n % 97, n % 89);
    let _ = crate::config::jsonc::offset_of(&s, "models.providers.local.models[0].id");
    Ok(())
}

/// SKILL.md files (bundled, installed, or written into the workspace).
pub fn skill_md(input: &[u8]) -> Verdict {
    let _ = crate::agent::skills::parse(&text(input), Path::new("/tmp/skill"));
    Ok(())
}

/// Schedule strings: first line an expression (cron, interval, duration,
/// time), second a time zone.
pub fn sched_text(input: &[u8]) -> Verdict {
    use crate::sched::trigger;
    let (expr, rest) = head_rest(input);
    let tz = text(rest);
    let _ = trigger::parse_every(&expr);
    let _ = trigger::parse_duration_ms(&expr);
    let _ = trigger::parse_at(&expr);
    let _ = trigger::validate_cron(&expr, &tz);
    let _ = trigger::validate_cron(&expr, "UTC");
    if let Ok(c) = trigger::parse_cron(&expr) {
        let t = trigger::Trigger::Cron {
            expr: expr.clone(),
            tz: tz.to_string(),
        };
        let _ = (
            c,
            t.validate(),
            t.next_after(NOW_MS),
            t.next_after(u64::MAX),
        );
    }
    let _ = trigger::lookup_tz(&tz);
    let hb = serde_json::json!({"every": expr, "activeHours": {"start": expr, "end": tz, "timezone": tz}});
    if let Ok(cfg) = serde_json::from_value::<crate::sched::heartbeat::HeartbeatConfig>(hb) {
        let _ = (cfg.validate(), cfg.every_ms());
        let _ = crate::sched::heartbeat::next_beat(&cfg, Some(NOW_MS), NOW_MS);
    }
    let _ = crate::sched::heartbeat::is_nothing_to_report(&tz);
    let _ = crate::sched::heartbeat::checklist_is_empty(&tz);
    Ok(())
}

/// Scheduler JSON (`/api/cron` bodies, the stored job table, heartbeat config):
/// validate, add, run due jobs, and ask for the next wake-up.
pub fn sched_json(input: &[u8]) -> Verdict {
    use crate::sched::job::{JobSpec, Outcome, Scheduler};
    if let Ok(spec) = serde_json::from_slice::<JobSpec>(input) {
        let _ = spec.validate();
        let _ = spec.trigger.next_after(NOW_MS);
        let _ = spec.trigger.interval_ms();
        let mut s = Scheduler::new();
        if s.add(spec.clone(), NOW_MS).is_ok() {
            let mut max_jitter = |m: u64| m;
            for now in [NOW_MS, NOW_MS + 3_600_000, u64::MAX / 2, u64::MAX] {
                for name in s.due(now, &mut max_jitter) {
                    s.finished(&name, now, Outcome::Ok);
                }
                let _ = s.next_wake();
            }
            let _ = s.run_now(&spec.name, NOW_MS);
            let snap = s.snapshot();
            let _ = Scheduler::restore(snap, NOW_MS);
        }
    }
    if let Ok(cfg) = serde_json::from_slice::<crate::sched::heartbeat::HeartbeatConfig>(input) {
        let _ = (cfg.validate(), cfg.every_ms());
        for last in [None, Some(0), Some(NOW_MS), Some(u64::MAX)] {
            let _ = crate::sched::heartbeat::next_beat(&cfg, last, NOW_MS);
        }
    }
    Ok(())
}

/// Webhook bodies: any bytes, cut to the hook's byte cap on a character
/// boundary and placed into the hook's message template.
pub fn webhook_body(input: &[u8]) -> Verdict {
    let body = text(input);
    let n = (super::engine::hash(input) % 64) as usize;
    for max in [0, 1, 2, 3, n, body.len().saturating_sub(1), body.len()] {
        let cut = crate::util::truncate(&body, max);
        if cut.len() > max || !body.starts_with(cut) {
            return Err(format!("truncate({max}) gave {} bytes", cut.len()));
        }
        let _ = "Event: {{body}}".replace("{{body}}", cut);
    }
    let _ = serde_json::from_slice::<Value>(input);
    // The hook's token arrives in `Authorization: Bearer …`.
    let _ = crate::gateway::auth::bearer(Some(&body));
    Ok(())
}

/// A SOCKS5 proxy's replies (method choice, user/password status, CONNECT
/// reply with its bound address), read by the one SOCKS5 client. Without
/// credentials the handshake may only succeed when the proxy chose "no
/// authentication".
pub fn socks5_reply(input: &[u8]) -> Verdict {
    use crate::net::socks5::{handshake, Credentials, SocksTarget};
    /// The proxy's side of the stream: replies from `input`, requests dropped.
    struct Proxy<'a>(&'a [u8]);
    impl std::io::Read for Proxy<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl std::io::Write for Proxy<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let target = SocksTarget::named("api.telegram.org", 443);
    let plain = handshake(&mut Proxy(input), None, &target);
    if plain.is_ok() && input.get(..2) != Some(&[5, 0][..]) {
        return Err("the handshake succeeded without the proxy choosing no authentication".into());
    }
    let credentials = Credentials::from_parts(Some("user"), Some("secret"));
    let _ = handshake(&mut Proxy(input), credentials.as_ref(), &target);
    Ok(())
}
