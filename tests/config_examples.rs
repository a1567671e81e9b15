//! Every example in the top-level `config/` folder loads with `pinch config
//! check` (the variables it names set to dummy values in `.env`), so none
//! can rot. Only the OpenClaw example may print warnings, and only the
//! "ignored: not supported by pinch" kind.

mod common;

use common::*;

const DUMMY_ENV: &str = "OPENAI_API_KEY=sk-dummy\nMINIMAX_API_KEY=mm-dummy\nGEMINI_API_KEY=gm-dummy\nNVIDIA_API_KEY=nv-dummy\nTELEGRAM_BOT_TOKEN=123456:dummy\nPINCH_GATEWAY_TOKEN=9f4c2b7e1a8d6c3f5e0b4a7d2c9e8f1a\n";

#[test]
fn every_example_passes_config_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("config/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json5"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "appliance.json5",
            "cloud-with-local-fallback.json5",
            "local-llama.json5",
            "openclaw-article.json5",
            "telegram-pi.json5"
        ],
        "config/README.md lists these; update both together"
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("config/README.md");
    for name in &names {
        assert!(
            readme.contains(name.as_str()),
            "README.md must describe {name}"
        );
        let home = TempHome::new("example");
        write_private(&home.path.join(".env"), DUMMY_ENV);
        let text = std::fs::read_to_string(dir.join(name)).expect("read example");
        // pinch refuses config files others can read; copy with mode 0600.
        let file = home.path.join(name);
        write_private(&file, &text);
        let out = home
            .cmd()
            .arg("--config")
            .arg(&file)
            .args(["config", "check"])
            .output()
            .expect("run pinch");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}:\n{stdout}{stderr}");
        assert!(stdout.contains("ok: "), "{name}: {stdout}");
        let warnings: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("warning:"))
            .collect();
        if name == "openclaw-article.json5" {
            assert!(warnings.len() >= 5, "{name}: {stdout}");
            for w in &warnings {
                assert!(w.contains(": ignored: not supported by pinch"), "{w}");
            }
        } else {
            assert!(warnings.is_empty(), "{name} should load cleanly:\n{stdout}");
        }
    }
}
