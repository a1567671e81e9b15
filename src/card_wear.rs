//! SD-card wear: what on this machine writes to an SD card more often than
//! it must. A Pi keeps everything on one card, and a card worn out by swap,
//! an uncapped on-disk journal or access-time updates is the usual way such
//! a box dies. `pinch doctor` reports it; the parsing and the verdict are
//! pure functions of `/proc/self/mountinfo`, `/proc/swaps` and journald's
//! configuration text, so they are tested without a card.

/// One line of `/proc/self/mountinfo`, the parts that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub options: String,
    pub source: String,
}

/// The mount that holds `path` (an absolute, canonical path): the longest
/// mount point that is `path` itself or one of its parent directories.
pub fn mount_of(mountinfo: &str, path: &str) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let (Some(mount_point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let source = right.split(' ').nth(1).unwrap_or("");
        let mount_point = unescape(mount_point);
        let holds = mount_point == "/"
            || path == mount_point
            || path
                .strip_prefix(mount_point.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        let longer = best
            .as_ref()
            .is_none_or(|b| mount_point.len() >= b.mount_point.len());
        if holds && longer {
            best = Some(Mount {
                mount_point,
                options: options.to_string(),
                source: unescape(source),
            });
        }
    }
    best
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let digits: String = chars.clone().take(3).collect();
        match u8::from_str_radix(&digits, 8) {
            Ok(b) if digits.len() == 3 => {
                out.push(char::from(b));
                for _ in 0..3 {
                    chars.next();
                }
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// The devices and files `/proc/swaps` lists as active swap.
pub fn swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// journald's `Storage=` and `SystemMaxUse=`, the later text winning, as
/// journald reads journald.conf and then its drop-ins in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    pub storage: Option<String>,
    pub system_max_use: Option<String>,
}

pub fn journal(texts: &[String]) -> Journal {
    let mut j = Journal::default();
    for text in texts {
        let mut in_journal = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_journal = line == "[Journal]";
                continue;
            }
            if !in_journal || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                let value = value.trim().to_string();
                match key.trim() {
                    "Storage" => j.storage = Some(value),
                    "SystemMaxUse" => j.system_max_use = Some(value),
                    _ => {}
                }
            }
        }
    }
    j
}

/// An SD or eMMC card as the kernel names it.
pub fn is_card(source: &str) -> bool {
    source.starts_with("/dev/mmcblk")
}

/// The doctor's verdict: `warnings` empty means nothing wears the card
/// needlessly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub on_card: bool,
    pub detail: String,
    pub warnings: Vec<String>,
}

/// `persistent_journal_dir`: whether /var/log/journal exists (with
/// `Storage=auto`, journald then writes to disk).
pub fn assess(
    state: &Mount,
    swaps: &[String],
    journal: &Journal,
    persistent_journal_dir: bool,
) -> Verdict {
    if !is_card(&state.source) {
        return Verdict {
            on_card: false,
            detail: format!("state on {} (not an SD card)", state.source),
            warnings: Vec::new(),
        };
    }
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let opts: Vec<&str> = state.options.split(',').collect();
    if opts.contains(&"strictatime") {
        warnings.push(format!(
            "{} is mounted strictatime: every read is a write; mount it noatime",
            state.mount_point
        ));
    } else if opts.contains(&"noatime") {
        notes.push("noatime".to_string());
    } else {
        notes.push("relatime".to_string());
    }
    let card_swap: Vec<&String> = swaps
        .iter()
        .filter(|s| is_card(s) || !s.starts_with("/dev/"))
        .collect();
    if card_swap.is_empty() {
        notes.push("no swap on the card".into());
    } else {
        let list: Vec<&str> = card_swap.iter().map(|s| s.as_str()).collect();
        warnings.push(format!(
            "swap on the card ({}): turn it off (e.g. `sudo dphys-swapfile swapoff && sudo systemctl disable dphys-swapfile`) or use zram",
            list.join(", ")
        ));
    }
    let storage = journal.storage.as_deref().unwrap_or("auto");
    let on_disk = storage == "persistent" || (storage == "auto" && persistent_journal_dir);
    if !on_disk {
        notes.push(format!("journal in RAM (Storage={storage})"));
    } else if let Some(cap) = &journal.system_max_use {
        notes.push(format!("journal on the card, capped at {cap}"));
    } else {
        warnings.push(
            "the journal is written to the card without a cap: set Storage=volatile (or SystemMaxUse=32M) in /etc/systemd/journald.conf.d/"
                .into(),
        );
    }
    Verdict {
        on_card: true,
        detail: format!("state on {} (SD card): {}", state.source, notes.join(", ")),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
23 22 179:1 / /boot/firmware rw,noatime shared:2 - vfat /dev/mmcblk0p1 rw,fmask=0077
40 22 8:1 / /mnt/usb\\040disk rw,relatime shared:3 - ext4 /dev/sda1 rw
41 22 0:5 / /var/lib/pinchy rw - tmpfs tmpfs rw
broken line without separator
";

    #[test]
    fn the_longest_mount_point_holding_the_path_wins() {
        let m = mount_of(MOUNTINFO, "/var/lib/pinch").expect("root");
        assert_eq!(
            (m.mount_point.as_str(), m.source.as_str()),
            ("/", "/dev/mmcblk0p2")
        );
        let m = mount_of(MOUNTINFO, "/mnt/usb disk/pinch").expect("usb");
        assert_eq!(m.source, "/dev/sda1");
        assert_eq!(
            mount_of(MOUNTINFO, "/var/lib/pinchy")
                .expect("tmpfs")
                .source,
            "tmpfs"
        );
        assert_eq!(mount_of("", "/x"), None);
    }

    #[test]
    fn swaps_and_journal_settings_are_read() {
        let s = swaps("Filename\tType\tSize\tUsed\tPriority\n/var/swap file 102396 0 -2\n/dev/zram0 partition 1 0 100\n");
        assert_eq!(s, vec!["/var/swap".to_string(), "/dev/zram0".to_string()]);
        let j = journal(&[
            "[Journal]\n#Storage=auto\nStorage=persistent\n".into(),
            "[Journal]\nSystemMaxUse=32M\n[Other]\nStorage=none\n".into(),
        ]);
        assert_eq!(j.storage.as_deref(), Some("persistent"));
        assert_eq!(j.system_max_use.as_deref(), Some("32M"));
    }

    #[test]
    fn a_card_image_as_shipped_has_no_warnings() {
        let state = mount_of(MOUNTINFO, "/var/lib/pinch").expect("root");
        let j = journal(&["[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n".into()]);
        let v = assess(&state, &["/dev/zram0".into()], &j, false);
        assert!(v.on_card && v.warnings.is_empty(), "{v:?}");
        assert!(
            v.detail.contains("noatime") && v.detail.contains("journal in RAM"),
            "{v:?}"
        );
    }

    #[test]
    fn swap_files_and_an_uncapped_journal_on_the_card_are_warned_about() {
        let state = Mount {
            mount_point: "/".into(),
            options: "rw,strictatime".into(),
            source: "/dev/mmcblk0p2".into(),
        };
        let v = assess(&state, &["/var/swap".into()], &Journal::default(), true);
        assert_eq!(v.warnings.len(), 3, "{v:?}");
        let off_card = Mount {
            source: "/dev/sda1".into(),
            ..state
        };
        let v = assess(&off_card, &["/var/swap".into()], &Journal::default(), true);
        assert!(!v.on_card && v.warnings.is_empty(), "{v:?}");
    }
}
