//! `pinch doctor` names the filesystem under PINCH_HOME and warns when the
//! delivery queue cannot trust it (no permissions, network share, RAM).
//! The magic-number table is unit-tested in src/filesystem.rs; here the
//! real statfs path runs end to end, on a tmpfs mounted over the home when
//! the test may mount (root), else reported as SKIPPED.

mod common;

use common::*;
use std::process::Command;

fn state_filesystem_check(home: &TempHome) -> serde_json::Value {
    let out = home.run(&["doctor", "--json", "--timeout", "1"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor --json");
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "state filesystem")
        .cloned()
        .expect("a state filesystem check")
}

#[test]
fn doctor_names_the_state_filesystem() {
    let home = TempHome::new("fs-plain");
    home.write_config("{}");
    let c = state_filesystem_check(&home);
    let name = c["probe"]["filesystem"].as_str().unwrap_or("");
    assert!(!name.is_empty(), "{c}");
    assert!(c["probe"]["magic"].as_u64().is_some_and(|m| m != 0), "{c}");
    assert!(
        c["detail"].as_str().unwrap_or("").contains(name),
        "detail names the filesystem: {c}"
    );
}

/// Unmounts on drop, so a failed assertion leaves no mount behind.
struct Mounted(std::path::PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn doctor_warns_when_the_home_is_on_a_ram_filesystem() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: mounting a tmpfs over the test home needs root");
        return;
    }
    let home = TempHome::new("fs-tmpfs");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "pinch-test"])
        .arg(&home.path)
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!(
                "SKIPPED: cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("SKIPPED: cannot run mount: {e}");
            return;
        }
    }
    let _guard = Mounted(home.path.clone());
    home.write_config("{}");
    let c = state_filesystem_check(&home);
    assert_eq!(c["probe"]["filesystem"], "tmpfs", "{c}");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["hint"].as_str().unwrap_or("").contains("lost at reboot"),
        "{c}"
    );
}
