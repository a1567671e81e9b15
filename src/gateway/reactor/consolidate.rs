//! The weekly memory consolidation: a built-in scheduled job
//! (`memory-consolidation`, every `agents.defaults.memoryConsolidation`,
//! default 7 days; `"off"` removes it) whose run gets the recent daily notes
//! and condenses them into MEMORY.md under its size cap with the memory
//! tool. It answers nobody: its reply is neither delivered nor kept. With no
//! notes in the period it is skipped without a model call.

use crate::config::Config;
use crate::sched::{parse_every, JobSpec, Scheduler, Trigger};

pub(super) const JOB: &str = "memory-consolidation";
/// MEMORY.md's cap (the memory tool refuses to grow it past this).
const MEMORY_CAP: usize = 16 * 1024;

/// The configured interval in ms; `None` when off.
fn every_ms(cfg: &Config) -> Option<u64> {
    let every = cfg.agents.defaults.memory_consolidation.trim();
    if every == "off" {
        return None;
    }
    parse_every(every).ok()
}

/// Adds the job when missing (or removes it when off). Returns whether the
/// table changed.
pub(super) fn seed(sched: &mut Scheduler, cfg: &Config, now: u64) -> bool {
    match (every_ms(cfg), sched.get(JOB).is_some()) {
        (None, true) => sched.remove(JOB),
        (Some(millis), false) => {
            let spec = JobSpec::new(
                JOB,
                Trigger::Every {
                    millis,
                    anchor_ms: now,
                },
                "Condense the recent daily notes into MEMORY.md",
            );
            match sched.add(spec, now) {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("cannot schedule the memory consolidation: {e}");
                    false
                }
            }
        }
        _ => false,
    }
}

/// The run's prompt, or `None` (skip) when there are no recent notes.
pub(super) fn prompt(cfg: &Config, workspace: &std::path::Path, now: u64) -> Option<String> {
    let days = every_ms(cfg).unwrap_or(7 * 86_400_000) / 86_400_000;
    crate::agent::memory_search::consolidation_prompt(workspace, now, days.clamp(1, 31), MEMORY_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_is_on_by_default_and_off_removes_it() {
        let mut cfg = Config::default();
        let mut s = Scheduler::new();
        assert!(seed(&mut s, &cfg, 1_000));
        assert!(!seed(&mut s, &cfg, 2_000), "added once");
        let (spec, _) = s.get(JOB).expect("job");
        assert_eq!(
            spec.trigger,
            Trigger::Every {
                millis: 7 * 86_400_000,
                anchor_ms: 1_000
            }
        );
        cfg.agents.defaults.memory_consolidation = "off".into();
        assert!(seed(&mut s, &cfg, 3_000));
        assert!(s.get(JOB).is_none());
    }
}
