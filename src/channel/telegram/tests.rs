//! Telegram tests against recorded-style Bot API JSON (shapes as in the Bot API docs).

use super::*;
use crate::channel::envelope::{AttachmentKind, ChatKind};

const BOT_ID: i64 = 7_000_000_001;
const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

fn bot() -> BotIdentity {
    BotIdentity {
        id: BOT_ID,
        username: "PinchBot".into(),
    }
}

fn batch(updates: &str) -> UpdateBatch {
    let body = format!(r#"{{"ok":true,"result":[{updates}]}}"#);
    parse_updates(body.as_bytes(), &bot(), "main").expect("batch parses")
}

const ANN: &str = r#""from":{"id":111,"is_bot":false,"first_name":"Ann","last_name":"Lee","username":"annlee","language_code":"en"}"#;
const GROUP: &str = r#""chat":{"id":-1001234567890,"title":"Pi club","type":"supergroup"}"#;

#[test]
fn private_text_message() {
    let b = batch(&format!(
        r#"{{"update_id":500,"message":{{"message_id":11,{ANN},"chat":{{"id":111,"first_name":"Ann","last_name":"Lee","username":"annlee","type":"private"}},"date":1700000000,"text":"hello bot"}}}}"#
    ));
    assert_eq!(b.next_offset, Some(501));
    assert!(b.skipped.is_empty());
    let e = &b.envelopes[0];
    assert_eq!(e.channel, "telegram");
    assert_eq!(e.account, "main");
    assert_eq!(e.chat_kind, ChatKind::Direct);
    assert_eq!((e.chat_id.as_str(), e.sender_id.as_str()), ("111", "111"));
    assert_eq!(e.sender_username.as_deref(), Some("annlee"));
    assert_eq!(e.sender_name, "Ann Lee");
    assert_eq!(e.text, "hello bot");
    assert_eq!(e.platform_id, "11");
    assert_eq!(e.time_ms, 1_700_000_000_000);
    assert!(!e.mentioned && !e.reply_to_bot && e.thread_id.is_none());
}

#[test]
fn group_mention_uses_utf16_offsets() {
    // "😀" is 2 UTF-16 units: "@PinchBot" starts at unit 6 (char 5, byte 8).
    let b = batch(&format!(
        r#"{{"update_id":501,"message":{{"message_id":12,{ANN},{GROUP},"date":1700000001,
        "text":"😀 hi @PinchBot and @otherbot","entities":[{{"type":"mention","offset":6,"length":9}},{{"type":"mention","offset":20,"length":9}}]}}}},
        {{"update_id":502,"message":{{"message_id":13,{ANN},{GROUP},"date":1700000002,
        "text":"😀😀 @otherbot hi","entities":[{{"type":"mention","offset":5,"length":9}}]}}}}"#
    ));
    assert_eq!(b.envelopes.len(), 2);
    let e = &b.envelopes[0];
    assert_eq!(e.chat_kind, ChatKind::Group);
    assert_eq!(e.chat_id, "-1001234567890");
    assert!(e.mentioned);
    assert!(!b.envelopes[1].mentioned);
    assert_eq!(b.next_offset, Some(503));
}

#[test]
fn reply_to_bot_and_text_mention() {
    let b = batch(&format!(
        r#"{{"update_id":600,"message":{{"message_id":20,{ANN},{GROUP},"date":1,"text":"thanks",
        "reply_to_message":{{"message_id":19,"from":{{"id":{BOT_ID},"is_bot":true,"first_name":"Pinch","username":"PinchBot"}},{GROUP},"date":0,"text":"answer"}}}}}},
        {{"update_id":601,"message":{{"message_id":21,{ANN},{GROUP},"date":1,"text":"Pinch help",
        "entities":[{{"type":"text_mention","offset":0,"length":5,"user":{{"id":{BOT_ID},"is_bot":true,"first_name":"Pinch"}}}}]}}}},
        {{"update_id":602,"message":{{"message_id":22,{ANN},{GROUP},"date":1,"text":"Bob help",
        "entities":[{{"type":"text_mention","offset":0,"length":3,"user":{{"id":5,"is_bot":false,"first_name":"Bob"}}}}]}}}}"#
    ));
    let e = &b.envelopes;
    assert!(e[0].reply_to_bot && !e[0].mentioned);
    assert!(e[1].mentioned && !e[1].reply_to_bot);
    assert!(!e[2].mentioned && !e[2].reply_to_bot);
}

#[test]
fn forum_topic_root_is_not_a_reply() {
    let b = batch(&format!(
        r#"{{"update_id":650,"message":{{"message_id":30,"message_thread_id":7,"is_topic_message":true,{ANN},{GROUP},"date":1,"text":"in topic",
        "reply_to_message":{{"message_id":7,"from":{{"id":{BOT_ID},"is_bot":true,"first_name":"Pinch"}},{GROUP},"date":0,"forum_topic_created":{{"name":"t","icon_color":1}}}}}}}}"#
    ));
    let e = &b.envelopes[0];
    assert!(!e.reply_to_bot);
    assert_eq!(e.thread_id.as_deref(), Some("7"));
}

#[test]
fn photo_caption_with_mention() {
    let b = batch(&format!(
        r#"{{"update_id":700,"message":{{"message_id":40,{ANN},{GROUP},"date":1,
        "photo":[{{"file_id":"small","file_unique_id":"s","width":90,"height":90,"file_size":1000}},
                 {{"file_id":"big","file_unique_id":"b","width":1280,"height":960,"file_size":50000}}],
        "caption":"look @pinchbot","caption_entities":[{{"type":"mention","offset":5,"length":9}}]}}}}"#
    ));
    let e = &b.envelopes[0];
    assert_eq!(e.text, "look @pinchbot");
    assert!(e.mentioned);
    assert_eq!(e.attachments.len(), 1);
    assert_eq!(e.attachments[0].reference, "big");
    assert_eq!(e.attachments[0].kind, AttachmentKind::Image);
    assert_eq!(e.attachments[0].size, Some(50000));
}

#[test]
fn bot_commands_addressed_to_us_or_others() {
    let b = batch(&format!(
        r#"{{"update_id":800,"message":{{"message_id":50,{ANN},{GROUP},"date":1,"text":"/status@PinchBot now",
        "entities":[{{"type":"bot_command","offset":0,"length":16}}]}}}},
        {{"update_id":801,"message":{{"message_id":51,{ANN},{GROUP},"date":1,"text":"/start@otherbot",
        "entities":[{{"type":"bot_command","offset":0,"length":15}}]}}}}"#
    ));
    assert_eq!(b.envelopes.len(), 1);
    assert!(b.envelopes[0].mentioned);
    assert_eq!(b.envelopes[0].text, "/status now");
    assert_eq!(b.skipped[0].kind, SkipKind::Ignored);
    assert_eq!(b.next_offset, Some(802));
}

#[test]
fn malformed_and_ignored_updates_still_advance_offset() {
    let b = batch(&format!(
        r#"{{"update_id":900,"message":{{"message_id":"oops",{ANN},"chat":{{"id":1,"type":"private"}},"date":1,"text":"x"}}}},
        {{"no_update_id":true}},
        {{"update_id":903,"edited_message":{{"message_id":1,{ANN},"chat":{{"id":111,"type":"private"}},"date":1,"edit_date":2,"text":"fixed"}}}},
        {{"update_id":902,"channel_post":{{"message_id":2,"chat":{{"id":-1009,"type":"channel","title":"News"}},"date":1,"text":"post"}}}},
        {{"update_id":904,"message":{{"message_id":3,"from":{{"id":9,"is_bot":true,"first_name":"Other"}},{GROUP},"date":1,"text":"beep"}}}},
        {{"update_id":905,"message":{{"message_id":4,{ANN},{GROUP},"date":1,"new_chat_members":[{{"id":5,"is_bot":false,"first_name":"Bob"}}]}}}},
        {{"update_id":906,"message":{{"message_id":5,"chat":{{"id":1,"type":"private"}},"date":1,"text":"who?"}}}},
        {{"update_id":901,"message":{{"message_id":6,{ANN},"chat":{{"id":111,"type":"private"}},"date":1,"text":"ok"}}}}"#
    ));
    assert_eq!(b.envelopes.len(), 1);
    assert_eq!(b.envelopes[0].text, "ok");
    assert_eq!(b.next_offset, Some(907));
    let kinds: Vec<(Option<i64>, SkipKind)> =
        b.skipped.iter().map(|s| (s.update_id, s.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (Some(900), SkipKind::Malformed),
            (None, SkipKind::Malformed),
            (Some(903), SkipKind::Ignored),
            (Some(902), SkipKind::Ignored),
            (Some(904), SkipKind::Ignored),
            (Some(905), SkipKind::Ignored),
            (Some(906), SkipKind::Malformed),
        ]
    );
    assert!(b.skipped[2].reason.contains("edited_message"));
}

#[test]
fn whole_body_errors() {
    let b = bot();
    assert_eq!(
        parse_updates(br#"{"ok":true,"result":[]}"#, &b, "m").map(|b| b.next_offset),
        Ok(None)
    );
    assert!(matches!(
        parse_updates(b"<html>", &b, "m"),
        Err(ApiError::BadJson(_))
    ));
    assert!(matches!(
        parse_updates(
            br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
            &b,
            "m"
        ),
        Err(ApiError::NotOk { code: 401, .. })
    ));
    assert!(matches!(
        parse_updates(br#"{"ok":true,"result":{}}"#, &b, "m"),
        Err(ApiError::BadShape(_))
    ));
    let me = serde_json::json!({"id": BOT_ID, "is_bot": true, "first_name": "Pinch", "username": "PinchBot"});
    assert_eq!(BotIdentity::from_get_me(&me), Ok(bot()));
    assert!(BotIdentity::from_get_me(&serde_json::json!({"id": 1})).is_err());
}

#[test]
fn classify_responses() {
    let ok = classify_response(200, br#"{"ok":true,"result":[{"update_id":1}]}"#);
    assert!(matches!(ok, ApiOutcome::Ok(serde_json::Value::Array(ref a)) if a.len() == 1));
    let r = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}"#;
    assert_eq!(classify_response(429, r), ApiOutcome::RetryAfter(17));
    let c = br#"{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}"#;
    assert_eq!(classify_response(409, c), ApiOutcome::Conflict);
    let m = br#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"foo\" at byte offset 0"}"#;
    assert_eq!(classify_response(400, m), ApiOutcome::MarkupRejected);
    let l = br#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#;
    assert_eq!(classify_response(400, l), ApiOutcome::TooLong);
    let g = br#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001}}"#;
    assert_eq!(classify_response(400, g), ApiOutcome::Migrated(-1001));
    let u = br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;
    assert_eq!(
        classify_response(401, u),
        ApiOutcome::Fatal("Unauthorized".into())
    );
    let f =
        br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#;
    assert!(matches!(classify_response(403, f), ApiOutcome::Fatal(_)));
    assert!(matches!(
        classify_response(502, b"<html>Bad Gateway</html>"),
        ApiOutcome::Transient(_)
    ));
    assert!(matches!(
        classify_response(0, b""),
        ApiOutcome::Transient(_)
    ));
    assert!(matches!(
        classify_response(200, b"not json"),
        ApiOutcome::Transient(_)
    ));
    assert_eq!(classify_response(429, b"{}"), ApiOutcome::RetryAfter(5));
}

#[test]
fn request_builders_and_redaction() {
    let url = get_updates_url("http://127.0.0.1:8081/", TOKEN, Some(42), 30);
    assert_eq!(
        url,
        format!("http://127.0.0.1:8081/bot{TOKEN}/getUpdates?timeout=30&limit=100&allowed_updates=%5B%22message%22%5D&offset=42")
    );
    let shown = redact(&url);
    assert!(!shown.contains("AAHdqTcv") && shown.contains("/bot<redacted>/getUpdates"));
    assert_eq!(
        redact("error sending to https://x/bot1:abc"),
        "error sending to https://x/bot<redacted>"
    );
    assert_eq!(redact("/bots/list"), "/bots/list");
    assert!(!get_updates_url(DEFAULT_API_ROOT, TOKEN, None, 25).contains("offset"));
    let (u, body) = get_me_request(DEFAULT_API_ROOT, TOKEN);
    assert!(u.ends_with("/getMe") && body == b"{}");
    let (u, body) = send_chat_action_request(DEFAULT_API_ROOT, TOKEN, "-100", Some("1"));
    assert!(u.ends_with("/sendChatAction"));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v, serde_json::json!({"chat_id": -100, "action": "typing"}));
}

#[test]
fn send_message_bodies() {
    let message =
        |chat_id: &str, text: &str, reply_to: Option<&str>| crate::channel::envelope::Outbound {
            channel: "telegram".into(),
            account: "main".into(),
            chat_id: chat_id.into(),
            text: text.into(),
            reply_to: reply_to.map(str::to_string),
            thread_id: None,
            max_attempts: None,
            edit: None,
        };
    let (_, body) = send_message_request(
        DEFAULT_API_ROOT,
        TOKEN,
        &message("111", "<b>hi</b>", Some("11")),
        Some("HTML"),
    );
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v,
        serde_json::json!({"chat_id": 111, "text": "<b>hi</b>", "parse_mode": "HTML",
            "reply_parameters": {"message_id": 11, "allow_sending_without_reply": true}})
    );
    let (_, body) =
        send_message_request(DEFAULT_API_ROOT, TOKEN, &message("@news", "hi", None), None);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v, serde_json::json!({"chat_id": "@news", "text": "hi"}));
    let out = crate::channel::envelope::Outbound {
        channel: "telegram".into(),
        account: "main".into(),
        chat_id: "-1001".into(),
        text: "a & b".into(),
        reply_to: None,
        thread_id: Some("7".into()),
        max_attempts: None,
        edit: None,
    };
    let (u, body) = send_message_request("https://api.telegram.org", TOKEN, &out, None);
    assert!(u.ends_with("/sendMessage"));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["message_thread_id"], 7);
    assert_eq!(escape_html("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
}

fn jitter(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 11
    }
}

#[test]
fn poll_backoff_capped_and_never_gives_up() {
    let mut p = PollState::with_backoff(1_000, 30_000);
    let mut j = jitter(1);
    let mut now = 10_000u64;
    assert!(p.ready(now));
    let mut delays = Vec::new();
    for _ in 0..50 {
        let at = p.on_error(
            now,
            &format!("GET {DEFAULT_API_ROOT}/bot{TOKEN}/getUpdates: timeout"),
            &mut j,
        );
        delays.push(at - now);
        assert!(!p.ready(now) && p.ready(at));
        now = at;
    }
    assert!(delays[0] >= 500 && delays[0] <= 1_000);
    assert!(delays[1] >= 1_000 && delays[1] <= 2_000);
    assert!(delays.iter().all(|d| *d <= 30_000));
    assert!(delays[40] >= 15_000);
    assert_eq!(p.failures(), 50);
    match p.health() {
        Health::Backoff {
            since_ms,
            last_error,
        } => {
            assert_eq!(*since_ms, 10_000);
            assert!(last_error.contains("<redacted>") && !last_error.contains("AAHdq"));
        }
        other => panic!("unexpected {other:?}"),
    }
    p.on_success(now);
    assert_eq!(p.health(), &Health::Up);
    assert_eq!(p.failures(), 0);
    let again = p.on_error(now, "x", &mut j) - now;
    assert!(again <= 1_000);
}

#[test]
fn poll_conflict_retry_after_and_stall() {
    let mut p = PollState::new();
    let mut j = jitter(2);
    p.on_outcome(&ApiOutcome::Conflict, 1_000, &mut j);
    assert_eq!(p.health(), &Health::Conflict { since_ms: 1_000 });
    p.on_outcome(&ApiOutcome::Conflict, 5_000, &mut j);
    assert_eq!(p.health(), &Health::Conflict { since_ms: 1_000 });
    let json = serde_json::to_value(p.health()).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"state": "conflict", "sinceMs": 1000})
    );
    assert_eq!(
        p.on_outcome(&ApiOutcome::RetryAfter(17), 9_000, &mut j),
        26_000
    );
    assert!(!p.ready(25_999) && p.ready(26_000));
    p.on_poll_start(30_000);
    p.on_outcome(&ApiOutcome::Ok(serde_json::Value::Null), 31_000, &mut j);
    assert_eq!(p.last_success_ms(), Some(31_000));
}

#[test]
fn poll_health_counts_recoveries_per_utc_day() {
    const DAY: u64 = 86_400_000;
    let mut p = PollState::new();
    let mut j = jitter(3);
    let ok = ApiOutcome::Ok(serde_json::Value::Null);
    // Failures before the first answer are no reconnect.
    p.on_error(1_000, "refused", &mut j);
    p.on_outcome(&ok, 2_000, &mut j);
    let h = p.report(2_000);
    assert_eq!(
        (h.state, h.last_event_ms, h.reconnects_today),
        ("up", Some(2_000), 0)
    );
    assert_eq!(h.error, None);
    p.on_outcome(&ok, 3_000, &mut j);
    assert_eq!(p.reconnects_today(3_000), 0, "up → up is no reconnect");
    // down → up twice (a failure, then a conflict), each counted once.
    p.on_error(4_000, "timeout", &mut j);
    p.on_error(5_000, "timeout", &mut j);
    let h = p.report(5_000);
    assert_eq!(
        (h.state, h.failures, h.last_event_ms),
        ("down", 2, Some(3_000))
    );
    assert_eq!(h.error.as_deref(), Some("timeout"));
    p.on_outcome(&ok, 6_000, &mut j);
    p.on_outcome(&ApiOutcome::Conflict, 7_000, &mut j);
    assert_eq!(p.report(7_000).state, "conflict");
    p.on_outcome(&ok, 8_000, &mut j);
    let v = serde_json::to_value(p.report(8_000)).expect("json");
    assert_eq!(v["lastEventMs"], 8_000);
    assert_eq!(v["reconnectsToday"], 2);
    assert!(v["error"].is_null(), "{v}");
    // A new UTC day starts at 0.
    assert_eq!(p.reconnects_today(DAY + 1), 0);
    p.on_retry_after(DAY + 2, 1);
    p.on_outcome(&ok, DAY + 1_002, &mut j);
    assert_eq!(p.reconnects_today(DAY + 1_002), 1);
}

#[test]
fn anonymous_admin_animation_and_bad_entity() {
    let b = batch(&format!(
        r#"{{"update_id":1,"message":{{"message_id":1,"from":{{"id":1087968824,"is_bot":true,"first_name":"Group","username":"GroupAnonymousBot"}},
        "sender_chat":{{"id":-1001234567890,"title":"Pi club","type":"supergroup"}},{GROUP},"date":1,"text":"hi @PinchBot",
        "entities":[{{"type":"mention","offset":3,"length":9}},{{"type":"mention","offset":90,"length":9}}]}}}},
        {{"update_id":2,"message":{{"message_id":2,{ANN},"chat":{{"id":111,"type":"private"}},"date":1,
        "animation":{{"file_id":"anim","file_unique_id":"a","width":1,"height":1,"duration":1}},
        "document":{{"file_id":"anim","file_unique_id":"a"}}}}}}"#
    ));
    assert_eq!(b.envelopes.len(), 2);
    let a = &b.envelopes[0];
    assert_eq!(a.sender_id, "-1001234567890");
    assert_eq!(a.sender_name, "Pi club");
    assert!(a.mentioned);
    let g = &b.envelopes[1];
    assert_eq!(g.attachments.len(), 1);
    assert_eq!(g.attachments[0].kind, AttachmentKind::Video);
    assert_eq!(g.text, "");
}
