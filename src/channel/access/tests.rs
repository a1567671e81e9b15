//! Tests for the access policy: the full policy matrix plus the precedence rules.

use super::*;
use crate::channel::envelope::{ChatKind, Envelope};
use DropReason::*;
use Verdict::*;

const SENDER: &str = "111";
const GROUP: &str = "-100200";

fn env(kind: ChatKind, mentioned: bool) -> Envelope {
    Envelope {
        channel: "telegram".into(),
        account: "default".into(),
        chat_id: if kind == ChatKind::Direct {
            SENDER.into()
        } else {
            GROUP.into()
        },
        chat_kind: kind,
        sender_id: SENDER.into(),
        sender_username: Some("Alice_Bob".into()),
        sender_name: "Alice".into(),
        mentioned,
        reply_to_bot: false,
        text: "hello".into(),
        attachments: vec![],
        platform_id: "1".into(),
        time_ms: 0,
        thread_id: None,
        parent_group: None,
    }
}

fn never(_: &str) -> bool {
    false
}

fn cfg(dm: DmPolicy, gp: GroupPolicy, require_mention: bool, listed: bool) -> AccessConfig {
    let mut allow_from = vec![if listed { SENDER } else { "999" }.to_string()];
    if dm == DmPolicy::Open {
        allow_from.push("*".into()); // the only valid form of "open"
    }
    let mut groups = BTreeMap::new();
    groups.insert(
        if listed { GROUP } else { "-100999" }.to_string(),
        GroupRule::default(),
    );
    AccessConfig {
        dm_policy: dm,
        allow_from,
        group_policy: gp,
        groups,
        require_mention,
    }
}

/// Expected DM verdict by (dmPolicy, sender allowlisted).
const DM_TABLE: &[(DmPolicy, bool, Verdict)] = &[
    (DmPolicy::Pairing, true, Accept),
    (DmPolicy::Pairing, false, Pair),
    (DmPolicy::Allowlist, true, Accept),
    (DmPolicy::Allowlist, false, Drop(NotAllowlisted)),
    (DmPolicy::Open, true, Accept),
    (DmPolicy::Open, false, Accept),
    (DmPolicy::Disabled, true, Drop(DmDisabled)),
    (DmPolicy::Disabled, false, Drop(DmDisabled)),
];

/// Expected group verdict by (groupPolicy, requireMention, mentioned, group allowlisted).
const GROUP_TABLE: &[(GroupPolicy, bool, bool, bool, Verdict)] = &[
    (GroupPolicy::Open, true, true, true, Accept),
    (GroupPolicy::Open, true, true, false, Accept),
    (GroupPolicy::Open, true, false, true, Drop(NoMention)),
    (GroupPolicy::Open, true, false, false, Drop(NoMention)),
    (GroupPolicy::Open, false, true, true, Accept),
    (GroupPolicy::Open, false, true, false, Accept),
    (GroupPolicy::Open, false, false, true, Accept),
    (GroupPolicy::Open, false, false, false, Accept),
    (GroupPolicy::Allowlist, true, true, true, Accept),
    (
        GroupPolicy::Allowlist,
        true,
        true,
        false,
        Drop(GroupNotAllowed),
    ),
    (GroupPolicy::Allowlist, true, false, true, Drop(NoMention)),
    (
        GroupPolicy::Allowlist,
        true,
        false,
        false,
        Drop(GroupNotAllowed),
    ),
    (GroupPolicy::Allowlist, false, true, true, Accept),
    (
        GroupPolicy::Allowlist,
        false,
        true,
        false,
        Drop(GroupNotAllowed),
    ),
    (GroupPolicy::Allowlist, false, false, true, Accept),
    (
        GroupPolicy::Allowlist,
        false,
        false,
        false,
        Drop(GroupNotAllowed),
    ),
    (GroupPolicy::Disabled, true, true, true, Drop(GroupDisabled)),
    (
        GroupPolicy::Disabled,
        true,
        true,
        false,
        Drop(GroupDisabled),
    ),
    (
        GroupPolicy::Disabled,
        true,
        false,
        true,
        Drop(GroupDisabled),
    ),
    (
        GroupPolicy::Disabled,
        true,
        false,
        false,
        Drop(GroupDisabled),
    ),
    (
        GroupPolicy::Disabled,
        false,
        true,
        true,
        Drop(GroupDisabled),
    ),
    (
        GroupPolicy::Disabled,
        false,
        true,
        false,
        Drop(GroupDisabled),
    ),
    (
        GroupPolicy::Disabled,
        false,
        false,
        true,
        Drop(GroupDisabled),
    ),
    (
        GroupPolicy::Disabled,
        false,
        false,
        false,
        Drop(GroupDisabled),
    ),
];

#[test]
fn full_access_matrix() {
    let dms = [
        DmPolicy::Pairing,
        DmPolicy::Allowlist,
        DmPolicy::Open,
        DmPolicy::Disabled,
    ];
    let gps = [
        GroupPolicy::Open,
        GroupPolicy::Allowlist,
        GroupPolicy::Disabled,
    ];
    let mut checked = 0;
    for &dm in &dms {
        for &gp in &gps {
            for &rm in &[true, false] {
                for &mentioned in &[true, false] {
                    for &listed in &[true, false] {
                        let c = cfg(dm, gp, rm, listed);
                        let want_dm = DM_TABLE
                            .iter()
                            .find(|r| r.0 == dm && r.1 == listed)
                            .map(|r| r.2);
                        let got = decide(&c, &env(ChatKind::Direct, mentioned), &never);
                        assert_eq!(
                            Some(got),
                            want_dm,
                            "dm {dm:?} {gp:?} rm={rm} m={mentioned} l={listed}"
                        );
                        let want_g = GROUP_TABLE
                            .iter()
                            .find(|r| r.0 == gp && r.1 == rm && r.2 == mentioned && r.3 == listed)
                            .map(|r| r.4);
                        let got = decide(&c, &env(ChatKind::Group, mentioned), &never);
                        assert_eq!(
                            Some(got),
                            want_g,
                            "group {dm:?} {gp:?} rm={rm} m={mentioned} l={listed}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 4 * 3 * 2 * 2 * 2);
}

#[test]
fn pairing_approval_opens_dm_but_never_group() {
    let approved = |s: &str| s == SENDER;
    let mut c = cfg(DmPolicy::Pairing, GroupPolicy::Allowlist, true, false);
    assert_eq!(decide(&c, &env(ChatKind::Direct, false), &approved), Accept);
    // Group listed with a sender list that does not name the approved sender.
    c.groups.insert(
        GROUP.into(),
        GroupRule {
            allow_from: Some(vec!["222".into()]),
            ..GroupRule::default()
        },
    );
    let g = env(ChatKind::Group, true);
    assert_eq!(decide(&c, &g, &approved), Drop(SenderNotAllowedInGroup));
    // Group not listed at all: approval does not help either.
    c.groups.clear();
    assert_eq!(decide(&c, &g, &approved), Drop(GroupNotAllowed));
    // Allowlist policy merges approvals for DMs, as OpenClaw's pairing store does.
    c.dm_policy = DmPolicy::Allowlist;
    assert_eq!(decide(&c, &env(ChatKind::Direct, false), &approved), Accept);
}

#[test]
fn group_rule_precedence() {
    let mut c = AccessConfig {
        group_policy: GroupPolicy::Allowlist,
        require_mention: true,
        ..AccessConfig::default()
    };
    c.groups.insert(
        "*".into(),
        GroupRule {
            require_mention: Some(false),
            allow_from: Some(vec!["@alice_bob".into()]),
            enabled: None,
        },
    );
    let quiet = env(ChatKind::Group, false);
    // "*" overrides the channel default requireMention and gates senders by username.
    assert_eq!(decide(&c, &quiet, &never), Accept);
    let mut other = quiet.clone();
    other.sender_id = "5".into();
    other.sender_username = Some("mallory".into());
    assert_eq!(decide(&c, &other, &never), Drop(SenderNotAllowedInGroup));
    // A per-group rule overrides "*".
    c.groups.insert(
        GROUP.into(),
        GroupRule {
            require_mention: Some(true),
            allow_from: Some(vec!["*".into()]),
            enabled: None,
        },
    );
    assert_eq!(decide(&c, &other, &never), Drop(NoMention));
    let mut reply = other.clone();
    reply.reply_to_bot = true; // a reply to the bot counts as a mention
    assert_eq!(decide(&c, &reply, &never), Accept);
    // enabled: false on the group wins over an enabled "*".
    if let Some(r) = c.groups.get_mut(GROUP) {
        r.enabled = Some(false);
    }
    assert_eq!(decide(&c, &reply, &never), Drop(GroupDisabled));
}

#[test]
fn allow_entries_forms() {
    let e = env(ChatKind::Direct, false);
    for ok in [
        "111",
        "telegram:111",
        "tg:111",
        "TG:111",
        "@alice_bob",
        "ALICE_BOB",
        "*",
        " 111 ",
    ] {
        assert!(entry_matches(ok, &e), "{ok}");
    }
    for bad in ["11", "discord:111", "@alice", "", "tg:", "@"] {
        assert!(!entry_matches(bad, &e), "{bad}");
    }
    let mut d = e.clone();
    d.channel = "discord".into();
    assert!(!entry_matches("@alice_bob", &d)); // no username matching off Telegram
    assert!(entry_matches("discord:111", &d));
}

#[test]
fn empty_and_open_without_star() {
    let c = AccessConfig {
        dm_policy: DmPolicy::Open,
        allow_from: vec!["5".into()],
        ..AccessConfig::default()
    };
    assert_eq!(
        decide(&c, &env(ChatKind::Direct, false), &never),
        Drop(NotAllowlisted)
    );
    let mut blank = env(ChatKind::Direct, false);
    blank.text = " \n".into();
    assert_eq!(decide(&c, &blank, &never), Drop(Empty));
}

#[test]
fn defaults_and_serde() {
    // Policy combinations are checked by config validation
    // (`config::tests::channel_policy_combinations`).
    let d = AccessConfig::default();
    assert_eq!(d.dm_policy, DmPolicy::Pairing);
    assert_eq!(d.group_policy, GroupPolicy::Allowlist);
    assert!(d.require_mention);
    assert!(serde_json::from_str::<AccessConfig>(r#"{"dmpolicy":"open"}"#).is_err());
    assert!(serde_json::from_str::<AccessConfig>(r#"{"groups":{"1":{"mention":true}}}"#).is_err());
    let block = serde_json::json!({"botToken":"x","dmPolicy":"disabled","requireMention":false});
    let parsed =
        AccessConfig::from_channel_block(block.as_object().expect("object")).expect("from block");
    assert_eq!(parsed.dm_policy, DmPolicy::Disabled);
    assert!(!parsed.require_mention);
}

#[test]
fn mention_or_reply_needed_in_groups_by_default() {
    let c = AccessConfig {
        group_policy: GroupPolicy::Open,
        ..AccessConfig::default()
    };
    let mut e = env(ChatKind::Group, false);
    assert_eq!(decide(&c, &e, &never), Drop(NoMention));
    e.reply_to_bot = true;
    assert_eq!(decide(&c, &e, &never), Accept);
    e.reply_to_bot = false;
    e.mentioned = true;
    assert_eq!(decide(&c, &e, &never), Accept);
    // Attachments alone are not empty.
    e.text.clear();
    e.attachments.push(crate::channel::envelope::Attachment {
        reference: "f".into(),
        kind: crate::channel::envelope::AttachmentKind::Image,
        size: None,
    });
    assert_eq!(decide(&c, &e, &never), Accept);
}

#[test]
fn the_typed_channel_block_gives_the_same_rules_as_its_json() {
    let block = serde_json::json!({
        "botToken": "x",
        "dmPolicy": "allowlist",
        "allowFrom": ["42", "@ann"],
        "groupPolicy": "open",
        "groups": {"-100": {"requireMention": false}, "*": {"allowFrom": ["7"]}},
        "requireMention": false,
        "guilds": {
            "33": {"requireMention": true, "users": ["discord:22"]},
            "44": {"channels": {"55": {"requireMention": false}, "*": {"allow": true}}}
        }
    });
    let typed: crate::config::Channel = serde_json::from_value(block.clone()).expect("typed");
    let from_json =
        AccessConfig::from_channel_block(block.as_object().expect("object")).expect("from json");
    let from_typed = AccessConfig::from_channel(&typed).expect("from typed");
    assert_eq!(from_typed, from_json);
    assert_eq!(from_typed.dm_policy, DmPolicy::Allowlist);
    assert_eq!(from_typed.groups.len(), 5, "{:?}", from_typed.groups);
    let bad = crate::config::Channel {
        dm_policy: "everyone".into(),
        ..Default::default()
    };
    assert!(AccessConfig::from_channel(&bad).is_err());
}
