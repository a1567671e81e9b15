//! Recorded Socket Mode frames (shapes from Slack's documentation) through the codec.

use super::*;

fn recorded(name: &str) -> String {
    let path = format!(
        "{}/tests/data/slack/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bot() -> BotIdentity {
    BotIdentity {
        user_id: "UBOT12345".into(),
        bot_id: "BBOT12345".into(),
        team_id: "T123ABC456".into(),
    }
}

fn payload(name: &str) -> Value {
    match parse_frame(&recorded(name)) {
        Ok(Frame::Envelope { payload, .. }) => payload,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn frames_hello_disconnect_envelopes() {
    assert_eq!(
        parse_frame(&recorded("hello")),
        Ok(Frame::Hello { num_connections: 1 })
    );
    assert_eq!(
        parse_frame(&recorded("disconnect")),
        Ok(Frame::Disconnect {
            reason: "refresh_requested".into()
        })
    );
    match parse_frame(&recorded("message_channel_mention")) {
        Ok(Frame::Envelope {
            envelope_id,
            kind,
            retry_attempt,
            payload,
        }) => {
            assert_eq!(envelope_id, "a3b1c2d4-0000-4000-8000-000000000002");
            assert_eq!(kind, "events_api");
            assert_eq!(retry_attempt, 1);
            assert_eq!(payload["event_id"], "Ev0MESSAGE2");
        }
        other => panic!("{other:?}"),
    }
    match parse_frame(&recorded("slash_command")) {
        Ok(Frame::Envelope { kind, .. }) => assert_eq!(kind, "slash_commands"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ack_frame("dbdd0ef3-1543"),
        r#"{"envelope_id":"dbdd0ef3-1543","payload":{}}"#
    );
    assert!(parse_frame("{").is_err());
    assert!(parse_frame(r#"{"envelope_id":""}"#).is_err());
    assert_eq!(parse_frame(r#"[1]"#), Ok(Frame::Other(String::new())));
    assert!(parse_frame(&" ".repeat(MAX_FRAME_BYTES + 1)).is_err());
}

#[test]
fn a_direct_message_becomes_an_envelope() {
    let c = Classifier::new(bot(), "default");
    let inc = match c.classify(&payload("message_im")) {
        Ok(i) => i,
        Err(e) => panic!("{e:?}"),
    };
    let e = &inc.envelope;
    assert_eq!(e.channel, "slack");
    assert_eq!(e.chat_id, "D123ABC456");
    assert_eq!(e.chat_kind, ChatKind::Direct);
    assert_eq!(e.sender_id, "U123ABC456");
    assert_eq!(e.text, "Hello & welcome <3 site (https://example.com)");
    assert_eq!(e.platform_id, "1700000000.000100");
    assert_eq!(e.time_ms, 1_700_000_000_000);
    assert_eq!(e.thread_id, None);
    assert!(!e.mentioned);
    assert_eq!(inc.event_id, "Ev123ABC456");
}

#[test]
fn message_and_app_mention_for_one_post_count_once() {
    let mut c = Classifier::new(bot(), "default");
    let first = match c.classify(&payload("message_channel_mention")) {
        Ok(i) => i,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(first.envelope.chat_kind, ChatKind::Group);
    assert!(first.envelope.mentioned, "<@bot> in the text is a mention");
    assert_eq!(first.envelope.text, "what's the weather?");
    assert_eq!(
        first.envelope.thread_id.as_deref(),
        Some("1700000050.000050")
    );
    // Not remembered yet: the same post classifies again (a retry after a failed commit).
    assert!(c.classify(&payload("message_channel_mention")).is_ok());
    c.remember(&first);
    assert_eq!(
        c.classify(&payload("message_channel_mention"))
            .map(|i| i.event_id),
        Err(Skip::RepeatedEvent)
    );
    assert_eq!(
        c.classify(&payload("app_mention")).map(|i| i.event_id),
        Err(Skip::RepeatedMessage)
    );
    // The other order: app_mention first.
    let mut c = Classifier::new(bot(), "default");
    let m = c
        .classify(&payload("app_mention"))
        .map_err(|e| format!("{e:?}"));
    let m = m.unwrap_or_else(|e| panic!("{e}"));
    assert!(m.envelope.mentioned);
    assert_eq!(
        m.envelope.chat_kind,
        ChatKind::Group,
        "C… without channel_type"
    );
    c.remember(&m);
    assert_eq!(
        c.classify(&payload("message_channel_mention"))
            .map(|i| i.event_id),
        Err(Skip::RepeatedMessage)
    );
}

#[test]
fn edits_own_and_other_bots_and_foreign_events_are_skipped() {
    let c = Classifier::new(bot(), "default");
    let skip = |p: Value| c.classify(&p).map(|i| i.event_id);
    assert_eq!(skip(payload("message_changed")), Err(Skip::Subtype));
    assert_eq!(skip(payload("own_bot_message")), Err(Skip::FromSelf));
    let mut other = payload("own_bot_message");
    other["event"]["user"] = "U0OTHER".into();
    other["event"]["bot_id"] = "B0OTHER".into();
    assert_eq!(skip(other.clone()), Err(Skip::FromBot));
    other["event"]["subtype"] = "bot_message".into();
    assert_eq!(skip(other), Err(Skip::FromBot));
    assert_eq!(skip(payload("slash_command")), Err(Skip::NotAnEvent));
    let mut reaction = payload("message_im");
    reaction["event"]["type"] = "reaction_added".into();
    assert_eq!(skip(reaction), Err(Skip::OtherEventType));
    let mut broken = payload("message_im");
    broken["event"]["channel"] = Value::Null;
    assert_eq!(skip(broken), Err(Skip::Malformed));
    let mut mpim = payload("message_im");
    mpim["event"]["channel_type"] = "mpim".into();
    mpim["event"]["channel"] = "G0MPIM".into();
    assert_eq!(
        c.classify(&mpim).map(|i| i.envelope.chat_kind),
        Ok(ChatKind::Group)
    );
}

#[test]
fn dedup_windows_are_bounded() {
    let mut c = Classifier::new(bot(), "default");
    let base = payload("message_im");
    for i in 0..(DEDUP_WINDOW + 10) {
        let mut p = base.clone();
        p["event_id"] = format!("Ev{i}").into();
        p["event"]["ts"] = format!("1700000000.{i:06}").into();
        let inc = c.classify(&p).unwrap_or_else(|e| panic!("{i}: {e:?}"));
        c.remember(&inc);
    }
    let mut oldest = base.clone();
    oldest["event_id"] = "Ev0".into();
    oldest["event"]["ts"] = "1700000000.000000".into();
    assert!(c.classify(&oldest).is_ok(), "evicted from both windows");
    let mut newest = base;
    newest["event_id"] = format!("Ev{}", DEDUP_WINDOW + 9).into();
    assert_eq!(
        c.classify(&newest).map(|i| i.event_id),
        Err(Skip::RepeatedEvent)
    );
}

#[test]
fn inbound_markup_to_plain_text() {
    assert_eq!(
        plain_text("hi <@U1> in <#C2|general> <!here> <mailto:a@b.c|a@b.c> <https://x.y>"),
        "hi @U1 in #general @here a@b.c (mailto:a@b.c) https://x.y"
    );
    assert_eq!(
        plain_text("a < b &amp;&lt; <unclosed"),
        "a < b &< <unclosed"
    );
    assert_eq!(plain_text("<!subteam^S1|@team> é"), "@@team é");
    assert_eq!(ts_to_ms("1700000000.5"), 1_700_000_000_000);
    assert_eq!(ts_to_ms("1700000000.123456"), 1_700_000_000_123);
    assert_eq!(ts_to_ms("x"), 0);
}

#[test]
fn web_api_requests() {
    let r = auth_test("http://127.0.0.1:9/api/", "xoxb-1");
    assert_eq!(r.url, "http://127.0.0.1:9/api/auth.test");
    assert_eq!(r.authorization, "Bearer xoxb-1");
    let r = connections_open(DEFAULT_API_ROOT, "xapp-1");
    assert_eq!(r.url, "https://slack.com/api/apps.connections.open");
    assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    assert!(!r.url.contains("xapp"), "tokens never go into URLs");
    let r = post_message(DEFAULT_API_ROOT, "xoxb-1", "C1", "*hi*", Some("17.1"), None);
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(
        body,
        json!({"channel":"C1","text":"*hi*","thread_ts":"17.1","unfurl_links":false})
    );
    let r = post_message(DEFAULT_API_ROOT, "xoxb-1", "D1", "x", None, Some("5.a"));
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert!(body.get("thread_ts").is_none());
    assert_eq!(
        body["metadata"],
        json!({"event_type": "pinch_send", "event_payload": {"id": "5.a"}})
    );
    let r = update_message(DEFAULT_API_ROOT, "xoxb-1", "D1", "17.2", "_x_", None);
    assert_eq!(r.url, "https://slack.com/api/chat.update");
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(
        body,
        json!({"channel":"D1","ts":"17.2","text":"_x_","parse":"none"})
    );
    assert_eq!(
        posted_ts(&json!({"ok":true,"channel":"D1","ts":"17.3"})),
        Some("17.3".into())
    );
    assert_eq!(posted_ts(&json!({"ok":true})), None);
    assert_eq!(
        socket_url(&json!({"ok":true,"url":"wss://wss-primary.slack.com/link/?ticket=1&app_id=A"})),
        Ok("wss://wss-primary.slack.com/link/?ticket=1&app_id=A".to_string())
    );
    assert!(socket_url(&json!({"ok":true,"url":"https://x"})).is_err());
    let id = BotIdentity::from_auth_test(
        &json!({"ok":true,"url":"https://x.slack.com/","team":"T","user":"pinch","team_id":"T1","user_id":"UB","bot_id":"BB"}),
    );
    assert_eq!(
        id.map(|i| (i.user_id, i.bot_id)),
        Ok(("UB".into(), "BB".into()))
    );
    assert!(BotIdentity::from_auth_test(&json!({"ok":true})).is_err());
}

#[test]
fn web_api_answers() {
    assert!(matches!(
        classify(200, None, br#"{"ok":true,"channel":"C1","ts":"1.2"}"#),
        Outcome::Ok(_)
    ));
    assert_eq!(
        classify(429, Some("7"), br#"{"ok":false,"error":"ratelimited"}"#),
        Outcome::RetryAfter(7)
    );
    assert_eq!(classify(429, None, b""), Outcome::RetryAfter(5));
    assert_eq!(
        classify(429, Some("999999"), b""),
        Outcome::RetryAfter(3600)
    );
    assert_eq!(
        classify(200, Some("3"), br#"{"ok":false,"error":"ratelimited"}"#),
        Outcome::RetryAfter(3)
    );
    assert!(matches!(
        classify(200, None, br#"{"ok":false,"error":"invalid_auth"}"#),
        Outcome::Fatal(e) if e.contains("appToken")
    ));
    assert!(matches!(
        classify(200, None, br#"{"ok":false,"error":"missing_scope","needed":"chat:write"}"#),
        Outcome::Fatal(e) if e.contains("chat:write")
    ));
    assert_eq!(
        classify(200, None, br#"{"ok":false,"error":"channel_not_found"}"#),
        Outcome::Fatal("channel_not_found".into())
    );
    assert!(matches!(
        classify(200, None, br#"{"ok":false,"error":"internal_error"}"#),
        Outcome::Transient(_)
    ));
    assert!(matches!(
        classify(502, None, b"<html>"),
        Outcome::Transient(_)
    ));
    assert!(matches!(classify(0, None, b""), Outcome::Transient(_)));
    assert!(matches!(
        classify(200, None, b"not json"),
        Outcome::Transient(_)
    ));
    let long = format!(r#"{{"ok":false,"error":"{}"}}"#, "é".repeat(1000));
    assert!(
        matches!(classify(200, None, long.as_bytes()), Outcome::Fatal(e) if e.chars().count() == 200)
    );
}

#[test]
fn a_send_is_found_by_its_metadata_since_it_was_queued() {
    let id = lookup::send_id(26, 1_796_000_000_123);
    assert_eq!(id, "1a.1a229f1287b");
    let r = lookup::lookup(DEFAULT_API_ROOT, "xoxb-1", "D1", None, 1_796_000_400_123);
    assert_eq!(r.url, "https://slack.com/api/conversations.history");
    assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "channel=D1&oldest=1796000100.123000&inclusive=true&limit=100&include_all_metadata=true"
    );
    let r = lookup::lookup(DEFAULT_API_ROOT, "xoxb-1", "C1&x", Some("17.1"), 1000);
    assert_eq!(r.url, "https://slack.com/api/conversations.replies");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "channel=C1%26x&oldest=0.000000&inclusive=true&limit=100&include_all_metadata=true&ts=17.1"
    );
    let answer = json!({"ok": true, "has_more": false, "messages": [
        {"type": "message", "ts": "17.9", "text": "other", "metadata": {"event_type": "pinch_send", "event_payload": {"id": "1b.1"}}},
        {"type": "message", "ts": "17.8", "text": "foreign", "metadata": {"event_type": "task", "event_payload": {"id": id}}},
        {"type": "message", "ts": "17.7", "text": "no metadata"},
        {"type": "message", "ts": "17.6", "text": "it", "metadata": {"event_type": "pinch_send", "event_payload": {"id": id}}},
    ]});
    assert_eq!(lookup::find(&answer, &id), Some("17.6".into()));
    assert_eq!(lookup::find(&answer, "1c.1"), None);
    assert_eq!(lookup::find(&json!({"ok": true}), &id), None);
    assert_eq!(
        lookup::find(&json!({"messages": [{"metadata": 5}]}), &id),
        None
    );
}
