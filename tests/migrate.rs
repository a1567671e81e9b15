//! `pinch migrate openclaw` on a fixture OpenClaw home built from OpenClaw's
//! docs (tests/data/openclaw-home: JSON5 config with comments, .env with
//! proxies, workspace files and memory notes, a skill with multi-line YAML
//! frontmatter and a script, cron/jobs.json, allowFrom and pairing files,
//! JSONL transcripts). Then the migrated assistant is used for real: a chat
//! through a fake model whose request must carry the persona, the memory
//! and the imported conversation; the migrated skill's script runs through
//! the skill tool; the migrated cron job is listed with its next run.

mod common;

use common::{FakeLlm, Gateway, Reply, TempHome};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/openclaw-home"
    ))
}

/// Copies the fixture (modes included) so a run can never touch the tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

#[test]
fn migrates_the_fixture_home_and_the_assistant_is_the_same() {
    let oc = TempHome::new("oc-home");
    copy_tree(fixture(), &oc.path);
    let home = TempHome::new("migrated");
    let llm = FakeLlm::openai();
    let migrate = |extra: &[&str]| {
        let mut c = home.cmd();
        c.args(["migrate", "openclaw", "--from"])
            .arg(&oc.path)
            .args(extra)
            .env("LOCAL_LLM_URL", llm.base_url());
        c.output().expect("run migrate")
    };

    // A dry run prints the plan and writes nothing.
    let dry = migrate(&["--dry-run"]);
    let out = text(&dry);
    assert!(dry.status.success(), "{out}");
    assert!(out.contains("would write"), "{out}");
    assert!(out.contains("pinch.json"), "{out}");
    assert!(out.contains("dry run: nothing was written"), "{out}");
    assert!(
        files_under(&home.path).is_empty(),
        "dry run wrote {:?}",
        files_under(&home.path)
    );

    // The real run.
    let run = migrate(&[]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    // Every key not carried is named with a reason.
    for dropped in [
        "gateway.mode: pinch always runs the gateway locally",
        "agents.defaults.imageModel: not supported by pinch",
        "agents.defaults.musicGenerationModel",
        "agents.list: pinch runs one agent",
        "models.providers.vertex: api \"google-vertex\" is not supported",
        "agents.defaults.model.fallbacks \"vertex/gemini-pro\"",
        "models.providers.minimax.models[0].cost",
        "channels.telegram.streaming",
        "channels.signal: pinch has no such channel",
        "messages",
        "tts",
        "session:",
        "proxy.proxyUrl: the proxy is disabled",
    ] {
        assert!(out.contains(dropped), "report lacks {dropped:?}:\n{out}");
    }
    // What is not carried at all is said plainly.
    assert!(
        out.contains("workspace/BOOTSTRAP.md: not used by pinch"),
        "{out}"
    );
    assert!(
        out.contains("telegram-pairing.json: pending pairing codes"),
        "{out}"
    );
    assert!(
        out.contains("cron job \"Queue depth probe\": payload kind \"command\""),
        "{out}"
    );

    // Config and secrets: private files, proxies carried.
    assert_eq!(mode(&home.path.join("pinch.json")), 0o600);
    assert_eq!(mode(&home.path.join(".env")), 0o600);
    let env = std::fs::read_to_string(home.path.join(".env")).expect(".env");
    for line in [
        "HTTPS_PROXY=http://127.0.0.1:3128",
        "NO_PROXY=127.0.0.1,localhost,::1",
        "TODO_TOKEN=todo-secret",
        "SEARCH_REGION=de-DE",
    ] {
        assert!(env.contains(line), "{line} missing from .env:\n{env}");
    }
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.path.join("pinch.json")).expect("pinch.json"),
    )
    .expect("pinch.json is JSON");
    assert_eq!(
        cfg["agents"]["defaults"]["model"]["primary"],
        "local/smollm"
    );
    assert_eq!(
        cfg["agents"]["defaults"]["model"]["fallbacks"],
        serde_json::json!(["minimax/MiniMax-M2", "gemini/gemini-2.5-flash"])
    );
    assert_eq!(
        cfg["models"]["providers"]["gemini"]["network"]["proxy"],
        "http://127.0.0.1:3128"
    );
    assert_eq!(
        cfg["channels"]["telegram"]["network"]["proxy"],
        "socks5://127.0.0.1:1080"
    );
    assert_eq!(
        cfg["channels"]["telegram"]["allowFrom"],
        serde_json::json!(["111111111"])
    );
    let check = home
        .cmd()
        .args(["config", "check"])
        .env("LOCAL_LLM_URL", llm.base_url())
        .output()
        .expect("config check");
    assert!(check.status.success(), "{}", text(&check));

    // Workspace, memory notes and skills (the script keeps its exec bit).
    let ws = home.path.join("workspace");
    for f in [
        "SOUL.md",
        "IDENTITY.md",
        "MEMORY.md",
        "HEARTBEAT.md",
        "memory/2026-11-20.md",
    ] {
        assert!(ws.join(f).is_file(), "{f} not migrated");
    }
    assert!(!ws.join("BOOTSTRAP.md").exists());
    let script = ws.join("skills/todo-list/scripts/list.sh");
    assert_eq!(mode(&script) & 0o100, 0o100, "script lost its exec bit");
    assert!(home.path.join("skills/weather/SKILL.md").is_file());

    // A second run refuses to overwrite, and changes nothing.
    let soul_before = std::fs::read(ws.join("SOUL.md")).expect("soul");
    std::fs::write(ws.join("SOUL.md"), "# edited after migration\n").expect("edit");
    let again = migrate(&[]);
    assert!(!again.status.success(), "second run must refuse");
    assert!(text(&again).contains("--force"), "{}", text(&again));
    assert_eq!(
        std::fs::read_to_string(ws.join("SOUL.md")).expect("soul"),
        "# edited after migration\n"
    );
    // --force replaces (and keeps the old config as .bak).
    let forced = migrate(&["--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(
        std::fs::read(ws.join("SOUL.md")).expect("soul"),
        soul_before
    );
    assert!(home.path.join("pinch.json.bak").is_file());

    // Skills as the user sees them: the migrated one eligible (its variable
    // comes from .env), the managed weather skill listed with the reason.
    let list = home
        .cmd()
        .args(["skills", "list"])
        .env_remove("WEATHER_API_KEY")
        .env_remove("TODO_TOKEN")
        .env("LOCAL_LLM_URL", llm.base_url())
        .output()
        .expect("skills list");
    let listed = text(&list);
    assert!(list.status.success(), "{listed}");
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listed}"))
            .to_string()
    };
    assert!(line("todo-list").contains("workspace"), "{listed}");
    assert!(line("todo-list").contains("eligible"), "{listed}");
    assert!(line("weather").contains("managed"), "{listed}");
    assert!(
        line("weather").contains("not offered: $WEATHER_API_KEY not set"),
        "{listed}"
    );

    // Imported transcripts, readable offline.
    let show = home
        .cmd()
        .args(["sessions", "show", "telegram:111111111", "--json"])
        .env("LOCAL_LLM_URL", llm.base_url())
        .output()
        .expect("sessions show");
    let shown = text(&show);
    assert!(shown.contains("Light rain after 3 pm"), "{shown}");

    // The migrated assistant: persona, memory, history, a skill that runs.
    llm.push(Reply::ToolCall {
        id: "call_1".into(),
        name: "skill".into(),
        args: r#"{"name": "todo-list", "run": "scripts/list.sh"}"#.into(),
    });
    llm.push(Reply::Text(vec!["Oat milk, and the vet for Pixel.".into()]));
    let local_url = llm.base_url();
    let gw = Gateway::start_with_env(&home, &[], &[("LOCAL_LLM_URL", Path::new(&local_url))]);
    let chat = home
        .cmd()
        .args([
            "chat",
            "--url",
            &gw.url(),
            "--session",
            "main",
            "what is on my list?",
        ])
        .env("LOCAL_LLM_URL", llm.base_url())
        .output()
        .expect("chat");
    let said = text(&chat);
    assert!(chat.status.success(), "{said}\n{}", gw.log());
    assert!(said.contains("Oat milk, and the vet for Pixel."), "{said}");
    let reqs = llm.requests();
    assert!(
        reqs.len() >= 2,
        "expected two model calls, saw {}",
        reqs.len()
    );
    let first = reqs[0].body.to_string();
    for needle in [
        "calm lighthouse keeper",     // SOUL.md
        "Creature: a space lobster",  // IDENTITY.md
        "Pixel and hates the vacuum", // MEMORY.md
        "todo-list",                  // the skill index
        "The cat tree is for Pixel",  // the imported main conversation
    ] {
        assert!(
            first.contains(needle),
            "first request lacks {needle:?}: {first}"
        );
    }
    assert!(
        !first.contains("weather: Current weather"),
        "an ineligible skill is in the index: {first}"
    );
    let second = reqs[1].body.to_string();
    assert!(
        second.contains("TODO: buy oat milk"),
        "the skill's script output did not reach the model: {second}"
    );

    // The migrated cron job, with its next run.
    let cron = home
        .cmd()
        .args(["cron", "list", "--url", &gw.url()])
        .env("LOCAL_LLM_URL", llm.base_url())
        .output()
        .expect("cron list");
    let jobs = text(&cron);
    assert!(cron.status.success(), "{jobs}");
    let row = jobs
        .lines()
        .find(|l| l.contains("morning-brief"))
        .unwrap_or_else(|| panic!("morning-brief not listed:\n{jobs}"));
    assert!(row.contains("0 7 * * *"), "{row}");
    assert!(row.contains("20"), "no next run date in {row:?}");

    // `pinch status` names the skill that is not offered, and why.
    let status = home
        .cmd()
        .args(["status", "--url", &gw.url()])
        .env_remove("WEATHER_API_KEY")
        .env("LOCAL_LLM_URL", llm.base_url())
        .output()
        .expect("status");
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    assert!(
        st.contains("weather (managed): not offered: $WEATHER_API_KEY not set"),
        "{st}"
    );
    gw.stop();
}

#[test]
fn a_missing_openclaw_home_is_a_clear_error() {
    let home = TempHome::new("migrate-missing");
    let out = home
        .cmd()
        .args(["migrate", "openclaw", "--from"])
        .arg(home.path.join("nope"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not an OpenClaw home"),
        "{}",
        text(&out)
    );
    assert!(files_under(&home.path).is_empty());
}

#[test]
fn a_fresh_pinch_home_with_starter_files_is_not_a_conflict() {
    let oc = TempHome::new("oc-starter");
    copy_tree(fixture(), &oc.path);
    let home = TempHome::new("starter");
    // What a first `pinch gateway run` leaves: the starter workspace files.
    pinch::workspace::ensure(&home.path.join("workspace")).expect("starter files");
    std::fs::write(
        home.path.join("workspace/USER.md"),
        "# User\nedited by hand\n",
    )
    .expect("edit");
    let out = home
        .cmd()
        .args(["migrate", "openclaw", "--from"])
        .arg(&oc.path)
        .env("LOCAL_LLM_URL", "http://127.0.0.1:9/v1")
        .output()
        .expect("run");
    // Only the hand-edited file is a conflict.
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("[EXISTS]") && said.contains("USER.md"),
        "{said}"
    );
    assert_eq!(said.matches("[EXISTS]").count(), 1, "{said}");
    std::fs::remove_file(home.path.join("workspace/USER.md")).expect("rm");
    let out = home
        .cmd()
        .args(["migrate", "openclaw", "--from"])
        .arg(&oc.path)
        .env("LOCAL_LLM_URL", "http://127.0.0.1:9/v1")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let soul = std::fs::read_to_string(home.path.join("workspace/SOUL.md")).expect("soul");
    assert!(soul.contains("lighthouse keeper"), "{soul}");
}
