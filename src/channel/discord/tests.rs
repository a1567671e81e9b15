//! Tests for the Discord codec with payloads in the shapes Discord documents
//! (Gateway v10 events, REST v10 answers and headers) and an injected clock.

use super::codec::{fatal_close, Phase};
use super::*;
use crate::channel::access::{decide, AccessConfig, DropReason, Verdict};
use crate::channel::envelope::ChatKind;
use serde_json::{json, Value};

const TOKEN: &str = "MTA.test.token";
const BOT: &str = "1100000000000000001";
const USER: &str = "2200000000000000002";

fn sends(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(t) => serde_json::from_str(t).ok(),
            _ => None,
        })
        .collect()
}

fn hello(interval: u64) -> String {
    json!({"op": 10, "d": {"heartbeat_interval": interval}, "s": null, "t": null}).to_string()
}

fn ready(seq: u64) -> String {
    json!({"op": 0, "s": seq, "t": "READY", "d": {
        "v": 10, "user": {"id": BOT, "username": "pinch", "bot": true},
        "guilds": [{"id": "3300000000000000003", "unavailable": true}],
        "session_id": "sess-abc", "resume_gateway_url": "wss://resume.discord.gg",
        "application": {"id": BOT, "flags": 0}
    }})
    .to_string()
}

fn message(seq: u64, d: Value) -> String {
    json!({"op": 0, "s": seq, "t": "MESSAGE_CREATE", "d": d}).to_string()
}

/// A session through Hello and READY at t=1000, jitter 0.5.
fn ready_session() -> Session {
    let mut s = Session::new(TOKEN, intents(true));
    s.on_connected(false, 0);
    s.on_frame(&hello(40_000), 1000, 500);
    s.on_frame(&ready(1), 1100, 0);
    s
}

#[test]
fn hello_identifies_with_intents_and_schedules_a_jittered_first_beat() {
    let mut s = Session::new(TOKEN, intents(false));
    s.on_connected(false, 0);
    let out = s.on_frame(&hello(41_250), 10_000, 250);
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["op"], 2);
    assert_eq!(sent[0]["d"]["token"], TOKEN);
    assert_eq!(
        sent[0]["d"]["intents"], 4609,
        "GUILDS|GUILD_MESSAGES|DIRECT_MESSAGES"
    );
    assert_eq!(intents(true), 37377, "with MESSAGE_CONTENT");
    assert_eq!(s.next_deadline(), Some(10_000 + 41_250 * 250 / 1000));
    assert!(s.on_tick(20_311).is_empty(), "not yet due");
    let beat = sends(&s.on_tick(20_312));
    assert_eq!(beat[0], json!({"op": 1, "d": null}), "no sequence yet");
    assert_eq!(s.next_deadline(), Some(20_312 + 41_250));
}

#[test]
fn ready_records_the_session_and_beats_carry_the_last_sequence() {
    let mut s = ready_session();
    assert_eq!(s.phase(), Phase::Ready);
    assert_eq!(s.bot_id(), Some(BOT));
    assert_eq!(s.session_id(), Some("sess-abc"));
    s.on_frame(&message(5, json!({})), 1200, 0);
    s.on_frame(&message(4, json!({})), 1300, 0);
    assert_eq!(s.seq(), Some(5), "the highest sequence seen");
    let beat = sends(&s.on_tick(21_000));
    assert_eq!(beat[0], json!({"op": 1, "d": 5}));
    assert_eq!(
        s.connect_url("wss://gateway.discord.gg", true),
        "wss://resume.discord.gg/?v=10&encoding=json"
    );
    assert_eq!(
        s.connect_url("wss://gateway.discord.gg/", false),
        "wss://gateway.discord.gg/?v=10&encoding=json"
    );
}

#[test]
fn a_missing_ack_is_a_zombie_and_the_session_resumes() {
    let mut s = ready_session();
    assert_eq!(sends(&s.on_tick(21_000)).len(), 1);
    s.on_frame(r#"{"op":11}"#, 22_000, 0);
    assert_eq!(sends(&s.on_tick(61_000)).len(), 1, "acked: beat again");
    // no ACK this time
    let out = s.on_tick(101_000);
    assert!(
        matches!(
            &out[..],
            [Action::Reconnect {
                resume: true,
                after_ms: 0,
                ..
            }]
        ),
        "{out:?}"
    );
    assert_eq!(s.reconnects_today(101_000), 1);
    // the next socket resumes with the last sequence
    s.on_connected(true, 0);
    let sent = sends(&s.on_frame(&hello(40_000), 102_000, 0));
    assert_eq!(
        sent[0],
        json!({"op": 6, "d": {"token": TOKEN, "session_id": "sess-abc", "seq": 1}})
    );
    let out = s.on_frame(
        &json!({"op": 0, "s": 2, "t": "RESUMED", "d": null}).to_string(),
        102_100,
        0,
    );
    assert_eq!(out, vec![Action::Ready { resumed: true }]);
}

#[test]
fn server_requests_beat_now_reconnect_and_invalid_session() {
    let mut s = ready_session();
    let out = sends(&s.on_frame(r#"{"op":1,"d":null}"#, 2000, 0));
    assert_eq!(out[0], json!({"op": 1, "d": 1}), "op 1: beat at once");
    let out = s.on_frame(r#"{"op":7,"d":null}"#, 3000, 0);
    assert!(matches!(&out[..], [Action::Reconnect { resume: true, .. }]));
    // op 9 d:true keeps the session
    let mut s = ready_session();
    let out = s.on_frame(r#"{"op":9,"d":true}"#, 3000, 7);
    assert!(matches!(
        &out[..],
        [Action::Reconnect {
            resume: true,
            after_ms: 0,
            ..
        }]
    ));
    assert_eq!(s.session_id(), Some("sess-abc"));
    // op 9 d:false: wait 1-5 s and identify anew
    let out = s.on_frame(r#"{"op":9,"d":false}"#, 4000, 4_000_000_123);
    match &out[..] {
        [Action::Reconnect {
            resume: false,
            after_ms,
            ..
        }] => assert!((1000..=5000).contains(after_ms), "{after_ms}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.session_id(), None);
    s.on_connected(true, 0);
    let sent = sends(&s.on_frame(&hello(40_000), 9000, 0));
    assert_eq!(sent[0]["op"], 2, "a new Identify, not a Resume");
}

#[test]
fn close_codes_that_must_not_reconnect_are_fatal_with_the_fix() {
    for code in [4004u16, 4010, 4011, 4012, 4013, 4014] {
        let mut s = ready_session();
        match s.on_close(Some(code), 5000, 0) {
            CloseVerdict::Fatal(text) => assert!(text.contains(&code.to_string()), "{text}"),
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(s.phase(), Phase::Failed);
    }
    let text = fatal_close(4014).unwrap_or_default();
    assert!(text.contains("Message Content intent") && text.contains("intents.messageContent"));
    // others reconnect: resumable, except 4007/4009
    let mut s = ready_session();
    assert!(matches!(
        s.on_close(Some(4000), 5000, 0),
        CloseVerdict::Reconnect { resume: true, .. }
    ));
    let mut s = ready_session();
    assert!(matches!(
        s.on_close(Some(4009), 5000, 0),
        CloseVerdict::Reconnect { resume: false, .. }
    ));
    let mut s = ready_session();
    assert!(matches!(
        s.on_close(None, 5000, 0),
        CloseVerdict::Reconnect { resume: true, .. }
    ));
}

#[test]
fn reconnect_delays_back_off_and_reset_when_ready() {
    let mut s = ready_session();
    let mut ceilings = Vec::new();
    for _ in 0..8 {
        match s.on_close(None, 5000, 60_000) {
            CloseVerdict::Reconnect { after_ms, .. } => ceilings.push(after_ms),
            other => panic!("{other:?}"),
        }
    }
    assert!(ceilings.windows(2).all(|w| w[0] <= w[1]), "{ceilings:?}");
    assert!(ceilings[0] <= 1000 && ceilings[7] == 60_000, "{ceilings:?}");
    assert_eq!(s.reconnects_today(5000), 8);
    assert_eq!(s.reconnects_today(5000 + 86_400_000), 0, "counted per day");
    s.on_connected(true, 0);
    s.on_frame(&hello(40_000), 6000, 0);
    s.on_frame(r#"{"op":0,"s":3,"t":"RESUMED","d":null}"#, 6100, 0);
    match s.on_close(None, 7000, u64::MAX) {
        CloseVerdict::Reconnect { after_ms, .. } => assert!(after_ms <= 1000),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_socket_without_hello_is_given_up_after_30_s() {
    let mut s = Session::new(TOKEN, intents(false));
    s.on_connected(false, 1000);
    assert_eq!(s.next_deadline(), Some(31_000));
    assert!(s.on_tick(30_999).is_empty());
    assert!(matches!(&s.on_tick(31_000)[..], [Action::Reconnect { .. }]));
    let mut s = Session::new(TOKEN, intents(false));
    s.on_connected(false, 1000);
    s.on_frame(&hello(40_000), 2000, 0);
    let out = s.on_tick(31_000);
    assert!(
        out.iter().all(|a| matches!(a, Action::Send(_))),
        "Hello came: only the heartbeat timer: {out:?}"
    );
}

#[test]
fn junk_frames_are_ignored() {
    let mut s = ready_session();
    for junk in [
        "",
        "{",
        "[1,2]",
        r#"{"op":"x"}"#,
        r#"{"op":0,"s":-1,"t":7}"#,
        "null",
    ] {
        let out = s.on_frame(junk, 2000, 0);
        assert!(
            out.iter().all(|a| matches!(a, Action::Dispatch { .. })),
            "{junk}: {out:?}"
        );
    }
    assert_eq!(s.seq(), Some(1));
}

fn dm_payload() -> Value {
    json!({
        "id": "1200000000000000100", "channel_id": "1300000000000000200", "type": 0,
        "author": {"id": USER, "username": "ann", "global_name": "Ann", "discriminator": "0"},
        "content": "hello bot", "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "timestamp": "2026-12-01T10:00:00.000000+00:00", "tts": false
    })
}

#[test]
fn direct_messages_and_guild_messages_become_envelopes() {
    let env = parse_message(&dm_payload(), BOT, "default", false).expect("dm");
    assert_eq!(env.chat_kind, ChatKind::Direct);
    assert_eq!(env.chat_id, "1300000000000000200");
    assert_eq!(env.sender_id, USER);
    assert_eq!(env.sender_name, "Ann");
    assert_eq!(env.text, "hello bot");
    assert!(!env.mentioned);
    assert_eq!(env.parent_group, None);
    assert!(env.time_ms > 1_420_070_400_000);

    let mut g = dm_payload();
    g["guild_id"] = json!("3300000000000000003");
    g["member"] = json!({"nick": "Annie", "roles": []});
    g["content"] = json!(format!("<@!{BOT}> what time is it?"));
    let env = parse_message(&g, BOT, "default", false).expect("guild");
    assert_eq!(env.chat_kind, ChatKind::Group);
    assert_eq!(env.parent_group.as_deref(), Some("3300000000000000003"));
    assert!(env.mentioned, "legacy <@!id> in the text");
    assert_eq!(env.text, "what time is it?");
    assert_eq!(env.sender_name, "Annie");

    g["content"] = json!("");
    g["mentions"] = json!([{"id": BOT, "username": "pinch", "bot": true}]);
    assert!(
        parse_message(&g, BOT, "default", false)
            .expect("m")
            .mentioned
    );

    g["mentions"] = json!([]);
    g["message_reference"] = json!({"message_id": "1", "channel_id": "1300000000000000200"});
    g["referenced_message"] =
        json!({"id": "1", "author": {"id": BOT, "username": "pinch", "bot": true}});
    g["type"] = json!(19);
    let env = parse_message(&g, BOT, "default", false).expect("reply");
    assert!(env.reply_to_bot && !env.mentioned);
}

#[test]
fn own_bot_system_and_malformed_messages_are_skipped() {
    let mut own = dm_payload();
    own["author"]["id"] = json!(BOT);
    assert_eq!(parse_message(&own, BOT, "a", true), Err(Skip::Own));
    let mut bot = dm_payload();
    bot["author"]["bot"] = json!(true);
    assert_eq!(parse_message(&bot, BOT, "a", false), Err(Skip::Bot));
    assert!(parse_message(&bot, BOT, "a", true).is_ok(), "allowBots");
    let mut join = dm_payload();
    join["type"] = json!(7);
    assert_eq!(parse_message(&join, BOT, "a", false), Err(Skip::System));
    for (field, bad) in [
        ("id", json!(12)),
        ("channel_id", json!("../x")),
        ("guild_id", json!(5)),
    ] {
        let mut m = dm_payload();
        m[field] = bad;
        assert!(
            matches!(parse_message(&m, BOT, "a", false), Err(Skip::Malformed(_))),
            "{field}"
        );
    }
    assert!(matches!(
        parse_message(&json!(null), BOT, "a", false),
        Err(Skip::Malformed(_))
    ));
}

#[test]
fn guild_rules_gate_channels_and_mentions() {
    let block = json!({
        "groupPolicy": "allowlist",
        "guilds": {
            "3300000000000000003": {"requireMention": true, "users": ["discord:2200000000000000002"]},
            "4400000000000000004": {"channels": {"5500000000000000005": {"requireMention": false}}}
        }
    });
    let access = AccessConfig::from_channel_block(block.as_object().expect("obj")).expect("ok");
    let never = |_: &str| false;
    let mut g = dm_payload();
    g["guild_id"] = json!("3300000000000000003");
    let env = parse_message(&g, BOT, "default", false).expect("env");
    assert_eq!(
        decide(&access, &env, &never),
        Verdict::Drop(DropReason::NoMention)
    );
    g["content"] = json!(format!("<@{BOT}> hi"));
    let env = parse_message(&g, BOT, "default", false).expect("env");
    assert_eq!(decide(&access, &env, &never), Verdict::Accept);
    g["author"]["id"] = json!("2200000000000000009");
    let env = parse_message(&g, BOT, "default", false).expect("env");
    assert_eq!(
        decide(&access, &env, &never),
        Verdict::Drop(DropReason::SenderNotAllowedInGroup)
    );
    // a guild with a channel list answers only there, without a mention
    let mut h = dm_payload();
    h["guild_id"] = json!("4400000000000000004");
    h["channel_id"] = json!("5500000000000000005");
    let env = parse_message(&h, BOT, "default", false).expect("env");
    assert_eq!(decide(&access, &env, &never), Verdict::Accept);
    h["channel_id"] = json!("5500000000000000006");
    let env = parse_message(&h, BOT, "default", false).expect("env");
    assert_eq!(
        decide(&access, &env, &never),
        Verdict::Drop(DropReason::GroupDisabled)
    );
    // an unknown guild
    h["guild_id"] = json!("9900000000000000009");
    let env = parse_message(&h, BOT, "default", false).expect("env");
    assert_eq!(
        decide(&access, &env, &never),
        Verdict::Drop(DropReason::GroupNotAllowed)
    );
}

#[test]
fn requests_are_built_as_discord_documents_them() {
    let (url, route, body) = rest::create_message(
        "http://127.0.0.1:9/api/",
        "1300",
        "hi @everyone",
        Some("1200"),
        &rest::nonce(u64::MAX, 99_999),
    );
    assert_eq!(url, "http://127.0.0.1:9/api/v10/channels/1300/messages");
    assert_eq!(route, "POST /channels/{id}/messages 1300");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["allowed_mentions"], json!({"parse": []}));
    assert_eq!(v["message_reference"]["message_id"], "1200");
    assert_eq!(v["content"], "hi @everyone");
    assert_eq!(v["nonce"], "qffffffffffffffff.99999");
    assert!(v["nonce"].as_str().expect("nonce").chars().count() <= 25);
    assert_eq!(v["enforce_nonce"], true);
    assert_eq!(rest::nonce(26, 0), rest::nonce(26, 0));
    assert_ne!(rest::nonce(26, 0), rest::nonce(26, 1));
    let (_, _, body) = rest::create_message("https://discord.com/api", "1", "x", None, "q1.0");
    assert!(serde_json::from_slice::<Value>(&body)
        .expect("json")
        .get("message_reference")
        .is_none());
    let (url, route, body) = rest::edit_message("https://discord.com/api", "1300", "1400", "new");
    assert_eq!(
        url,
        "https://discord.com/api/v10/channels/1300/messages/1400"
    );
    assert_eq!(route, "PATCH /channels/{id}/messages/{id} 1300");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json"),
        json!({"content": "new", "allowed_mentions": {"parse": []}})
    );
    assert_eq!(
        rest::message_id(br#"{"id": "1401", "content": "x"}"#),
        Some("1401".into())
    );
    assert_eq!(rest::message_id(br#"{"id": 5}"#), None);
    assert_eq!(rest::message_id(b"<html>"), None);
    assert_eq!(
        rest::typing("https://discord.com/api", "7").0,
        "https://discord.com/api/v10/channels/7/typing"
    );
    assert_eq!(
        rest::gateway_bot_url("https://discord.com/api"),
        "https://discord.com/api/v10/gateway/bot"
    );
    let h = rest::headers(TOKEN);
    assert_eq!(h[0].1, format!("Bot {TOKEN}"));
    assert!(h[1].1.starts_with("DiscordBot ("));
    let gw = br#"{"url":"wss://gateway.discord.gg","shards":1,"session_start_limit":{"total":1000,"remaining":999,"reset_after":14400000,"max_concurrency":1}}"#;
    assert_eq!(
        rest::parse_gateway_bot(gw).expect("url"),
        "wss://gateway.discord.gg"
    );
    assert!(rest::parse_gateway_bot(br#"{"url":"http://x"}"#).is_err());
    assert!(rest::parse_gateway_bot(b"<html>").is_err());
}

#[test]
fn rate_limits_from_headers_and_429_bodies_drive_the_limiter() {
    let headers = [
        ("x-ratelimit-limit", "5"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1470173023.123"),
        ("x-ratelimit-reset-after", "1.5"),
        ("x-ratelimit-bucket", "abcd1234"),
    ];
    let get = |k: &str| headers.iter().find(|(h, _)| *h == k).map(|(_, v)| *v);
    let info = parse_rate_headers(get);
    assert_eq!(info.bucket.as_deref(), Some("abcd1234"));
    assert_eq!(info.remaining, Some(0));
    assert_eq!(info.reset_after_ms, Some(1500));
    assert!(!info.global);
    let route = "POST /channels/{id}/messages 1";
    let mut l = Limiter::default();
    assert_eq!(l.wait_ms(route, 0), 0);
    l.on_response(route, &info, 10_000);
    assert_eq!(l.wait_ms(route, 10_000), 1500);
    assert_eq!(l.wait_ms(route, 11_000), 500);
    assert_eq!(
        l.wait_ms("POST /channels/{id}/messages 2", 10_000),
        0,
        "other channel"
    );
    let ok = RateInfo {
        bucket: Some("abcd1234".into()),
        remaining: Some(4),
        reset_after_ms: Some(1000),
        global: false,
    };
    l.on_response(route, &ok, 10_100);
    assert_eq!(l.wait_ms(route, 10_100), 0);
    // 429: body retry_after is float seconds
    let body = br#"{"message": "You are being rate limited.", "retry_after": 0.35, "global": false, "code": 0}"#;
    match rest::classify(429, body, Some("1")) {
        Outcome::RateLimited {
            retry_after_ms,
            global,
        } => {
            assert_eq!((retry_after_ms, global), (350, false));
            l.on_429(route, retry_after_ms, global, 20_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.wait_ms(route, 20_000), 350);
    let global = br#"{"message": "You are being rate limited.", "retry_after": 2, "global": true}"#;
    assert_eq!(
        rest::classify(429, global, None),
        Outcome::RateLimited {
            retry_after_ms: 2000,
            global: true
        }
    );
    l.on_429(route, 2000, true, 30_000);
    assert_eq!(
        l.wait_ms("POST /channels/{id}/typing 9", 30_000),
        2000,
        "global waits everything"
    );
    assert_eq!(
        rest::classify(429, b"not json", Some("3")),
        Outcome::RateLimited {
            retry_after_ms: 3000,
            global: false
        }
    );
    assert_eq!(rest::seconds_to_ms("NaN"), None);
    assert_eq!(rest::seconds_to_ms("-1"), None);
    assert_eq!(rest::seconds_to_ms("1e300"), Some(86_400_000));
}

#[test]
fn answers_are_classified() {
    assert_eq!(rest::classify(200, b"{}", None), Outcome::Ok);
    assert_eq!(rest::classify(204, b"", None), Outcome::Ok);
    assert!(
        matches!(rest::classify(401, br#"{"message":"401: Unauthorized","code":0}"#, None), Outcome::Permanent(m) if m.contains("channels.discord.token"))
    );
    assert!(
        matches!(rest::classify(403, br#"{"message":"Missing Permissions","code":50013}"#, None), Outcome::Permanent(m) if m.contains("50013"))
    );
    assert!(matches!(
        rest::classify(404, br#"{"message":"Unknown Channel","code":10003}"#, None),
        Outcome::Permanent(_)
    ));
    assert!(matches!(
        rest::classify(502, b"<html>", None),
        Outcome::Transient(_)
    ));
}

#[test]
fn limiter_memory_is_bounded() {
    let mut l = Limiter::default();
    for i in 0..10_000u64 {
        let info = RateInfo {
            bucket: Some(format!("b{i}")),
            remaining: Some(0),
            reset_after_ms: Some(1000),
            global: false,
        };
        l.on_response(&format!("r{i}"), &info, i);
    }
    let dbg = format!("{l:?}");
    assert!(dbg.matches("b9").count() < 600, "bounded");
}

#[test]
fn tables_become_code_blocks_and_replies_split_at_2000_chars_and_17_lines() {
    let md =
        "Here:\n| a | b |\n|---|:-:|\n| 1 | 2 |\nafter\n```\n| not | a table |\n|---|---|\n```";
    assert_eq!(
        format::tables_to_code(md),
        "Here:\n```\n| a | b |\n|---|:-:|\n| 1 | 2 |\n```\nafter\n```\n| not | a table |\n|---|---|\n```"
    );
    assert_eq!(format::tables_to_code("| just a pipe"), "| just a pipe");
    let tall: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    let parts = format::render(&tall, 2000, 17);
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.lines().count() <= 17));
    let code = format!(
        "```rust\n{}```",
        (1..=30)
            .map(|i| format!("let x{i} = {i};\n"))
            .collect::<String>()
    );
    let parts = format::render(&code, 2000, 17);
    assert!(parts.len() >= 2);
    for p in &parts {
        assert!(p.lines().count() <= 17, "{p}");
        assert!(p.starts_with("```rust"), "{p}");
        assert_eq!(p.matches("```").count() % 2, 0, "fence closed: {p}");
    }
    let long = "word ".repeat(1000);
    let parts = format::render(&long, 2000, 17);
    assert!(parts.len() >= 3 && parts.iter().all(|p| p.chars().count() <= 2000));
    let wide = "é".repeat(1990) + "\n" + &"x\n".repeat(20);
    assert!(format::render(&wide, 2000, 17)
        .iter()
        .all(|p| p.chars().count() <= 2000));
    assert_eq!(format::render("  \n ", 2000, 17), Vec::<String>::new());
    assert_eq!(format::render("hi", 2000, 0), vec!["hi".to_string()]);
}

#[test]
fn a_stored_session_resumes_at_start_when_fresh_and_only_then() {
    let mut live = ready_session();
    live.on_frame(&message(7, dm_payload()), 2000, 0);
    let cursor = live.cursor(2000).expect("cursor after READY");
    assert!(
        Session::new(TOKEN, 1).cursor(0).is_none(),
        "none before READY"
    );

    let mut restarted = Session::new(TOKEN, 1);
    assert!(restarted.restore(&cursor, 2000 + codec::RESUME_WITHIN_MS));
    assert_eq!(restarted.bot_id(), Some(BOT), "own messages still known");
    assert_eq!(
        restarted.connect_url("wss://gateway.discord.gg", true),
        "wss://resume.discord.gg/?v=10&encoding=json"
    );
    restarted.on_connected(true, 5000);
    let out = sends(&restarted.on_frame(&hello(41_250), 5000, 0));
    assert_eq!(out[0]["op"], 6, "Resume instead of Identify: {out:?}");
    assert_eq!(out[0]["d"]["seq"], 7);
    assert_eq!(out[0]["d"]["session_id"], live.session_id().expect("id"));

    // not resumable after all: op 9 false → a new session by Identify
    let actions = restarted.on_frame(r#"{"op":9,"d":false}"#, 5100, 0);
    assert!(matches!(
        actions[0],
        Action::Reconnect { resume: false, .. }
    ));
    restarted.on_connected(false, 8000);
    let out = sends(&restarted.on_frame(&hello(41_250), 8000, 0));
    assert_eq!(out[0]["op"], 2);

    // too old, from the future, or damaged: Identify
    for (text, now) in [
        (cursor.as_str(), 2001 + codec::RESUME_WITHIN_MS),
        (cursor.as_str(), 1999),
        ("{\"sessionId\":\"x\"}", 2000),
        ("not json", 2000),
        (&cursor.replace("wss://", "http://"), 2000),
    ] {
        let mut s = Session::new(TOKEN, 1);
        assert!(!s.restore(text, now), "{text} at {now}");
        s.on_connected(true, now);
        assert_eq!(sends(&s.on_frame(&hello(41_250), now, 0))[0]["op"], 2);
    }
}
