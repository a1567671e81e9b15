//! Bounded disk: which stored data retention removes, and when the store is
//! compacted. Pure: given sizes, ages and `now`, [`plan`] returns actions;
//! the reactor's I/O shell (`Store::apply_retention`) carries them out at
//! an idle moment.
//!
//! What may go, in this order:
//! 1. archived transcript turns (turns a compaction summary replaced: they
//!    never reach a prompt again) older than `storage.transcriptDays`;
//! 2. dead letters older than `storage.deadLetterDays`;
//! 3. above 90 % of the budget (`storage.maxBytes`): more archived turns,
//!    oldest session first, whatever their age, then the oldest dead
//!    letters, down to 70 %.
//!
//! Never: a session's summary or any turn after it, queued outbound
//! messages, pending inbound messages, the job table or pairings. If the
//! budget is still exceeded with nothing left to remove, the plan says so
//! (shown by `pinch status` and `pinch doctor`).

/// Retention settings (from `storage.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub max_bytes: u64,
    /// 0 keeps archived turns until the budget needs the room.
    pub transcript_days: u64,
    pub dead_letter_days: u64,
    /// Compact when this much of the store file is free pages.
    pub compact_min_bytes: u64,
}

/// The archived (summary-replaced) turns of one session still stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Archived {
    pub session: String,
    /// First archived turn still stored.
    pub from_seq: u64,
    /// The summary's sequence number: turns below it are archived.
    pub below_seq: u64,
    /// Time of the first archived turn still stored.
    pub oldest_ms: u64,
    /// Estimated bytes of those turns.
    pub bytes: u64,
}

/// One dead letter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dead {
    pub seq: u64,
    pub dead_ms: u64,
    pub bytes: u64,
}

/// What the shell measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// Everything under `$PINCH_HOME`.
    pub home_bytes: u64,
    /// Free pages inside the store file (returned by compaction).
    pub reclaimable_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete the session's turns in `[from_seq, below_seq)` whose time is
    /// before `before_ms` (`u64::MAX`: all of them).
    PruneTurns {
        session: String,
        from_seq: u64,
        below_seq: u64,
        before_ms: u64,
    },
    DropDead {
        seq: u64,
    },
    Compact,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Over the budget even after every allowed removal.
    pub over_budget: bool,
}

const DAY_MS: u64 = 86_400_000;

/// Decides what to remove. `archived` and `dead` may come in any order.
pub fn plan(
    policy: &Policy,
    now_ms: u64,
    usage: &Usage,
    archived: &[Archived],
    dead: &[Dead],
) -> Plan {
    let mut actions = Vec::new();
    // Bytes the plan will free, for the budget. Free pages already in the
    // file are not counted: compaction cannot always return them (redb
    // reuses them instead), so only removals move the file toward the
    // low-water mark.
    let mut freed = 0u64;
    let mut pruned_whole = vec![false; archived.len()];
    let mut dropped = vec![false; dead.len()];

    if policy.transcript_days > 0 {
        let cutoff = now_ms.saturating_sub(policy.transcript_days.saturating_mul(DAY_MS));
        for (i, a) in archived.iter().enumerate() {
            if a.oldest_ms < cutoff {
                actions.push(Action::PruneTurns {
                    session: a.session.clone(),
                    from_seq: a.from_seq,
                    below_seq: a.below_seq,
                    before_ms: cutoff,
                });
                pruned_whole[i] = false;
            }
        }
    }
    if policy.dead_letter_days > 0 {
        let cutoff = now_ms.saturating_sub(policy.dead_letter_days.saturating_mul(DAY_MS));
        for (i, d) in dead.iter().enumerate() {
            if d.dead_ms < cutoff {
                actions.push(Action::DropDead { seq: d.seq });
                dropped[i] = true;
                freed = freed.saturating_add(d.bytes);
            }
        }
    }
    // The budget, with a low-water mark so one pass frees enough room for a
    // while instead of trimming a little on every pass.
    // Pruning starts at 90 % of the budget and goes down to 70 %: the file
    // grows between passes, and freed pages are reused before the file
    // grows again.
    let high = policy.max_bytes / 10 * 9;
    let low = policy.max_bytes / 10 * 7;
    let mut over_budget = false;
    if usage.home_bytes > high {
        let mut order: Vec<usize> = (0..archived.len()).collect();
        crate::sort::sort_by_key(&mut order, |&i| archived[i].oldest_ms);
        for i in order {
            if usage.home_bytes.saturating_sub(freed) <= low {
                break;
            }
            let a = &archived[i];
            if pruned_whole[i] {
                continue;
            }
            // A whole prune supersedes the age-based one for this session.
            actions.retain(
                |x| !matches!(x, Action::PruneTurns { session, .. } if *session == a.session),
            );
            actions.push(Action::PruneTurns {
                session: a.session.clone(),
                from_seq: a.from_seq,
                below_seq: a.below_seq,
                before_ms: u64::MAX,
            });
            pruned_whole[i] = true;
            freed = freed.saturating_add(a.bytes);
        }
        let mut order: Vec<usize> = (0..dead.len()).collect();
        crate::sort::sort_by_key(&mut order, |&i| dead[i].dead_ms);
        for i in order {
            if usage.home_bytes.saturating_sub(freed) <= low {
                break;
            }
            if dropped[i] {
                continue;
            }
            actions.push(Action::DropDead { seq: dead[i].seq });
            dropped[i] = true;
            freed = freed.saturating_add(dead[i].bytes);
        }
        over_budget = usage.home_bytes.saturating_sub(freed) > policy.max_bytes;
    }
    let removes = !actions.is_empty();
    if usage.reclaimable_bytes >= policy.compact_min_bytes.max(1)
        || (removes && usage.home_bytes > low)
    {
        actions.push(Action::Compact);
    }
    Plan {
        actions,
        over_budget,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 400 * DAY_MS;

    fn policy() -> Policy {
        Policy {
            max_bytes: 1_000_000,
            transcript_days: 90,
            dead_letter_days: 30,
            compact_min_bytes: 100_000,
        }
    }

    fn arch(session: &str, age_days: u64, bytes: u64) -> Archived {
        Archived {
            session: session.into(),
            from_seq: 0,
            below_seq: 10,
            oldest_ms: NOW - age_days * DAY_MS,
            bytes,
        }
    }

    #[test]
    fn under_budget_only_old_archived_turns_and_old_dead_letters_go() {
        let usage = Usage {
            home_bytes: 500_000,
            reclaimable_bytes: 0,
        };
        let archived = [arch("old", 100, 10), arch("new", 10, 10)];
        let dead = [
            Dead {
                seq: 1,
                dead_ms: NOW - 31 * DAY_MS,
                bytes: 5,
            },
            Dead {
                seq: 2,
                dead_ms: NOW - DAY_MS,
                bytes: 5,
            },
        ];
        let p = plan(&policy(), NOW, &usage, &archived, &dead);
        assert_eq!(
            p.actions,
            vec![
                Action::PruneTurns {
                    session: "old".into(),
                    from_seq: 0,
                    below_seq: 10,
                    before_ms: NOW - 90 * DAY_MS
                },
                Action::DropDead { seq: 1 },
            ]
        );
        assert!(!p.over_budget);
    }

    #[test]
    fn over_budget_prunes_oldest_archived_first_down_to_the_low_water_mark() {
        let usage = Usage {
            home_bytes: 1_200_000,
            reclaimable_bytes: 0,
        };
        let archived = [
            arch("b", 20, 200_000),
            arch("a", 30, 200_000),
            arch("c", 10, 200_000),
        ];
        let p = plan(&policy(), NOW, &usage, &archived, &[]);
        let sessions: Vec<&str> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::PruneTurns {
                    session,
                    before_ms: u64::MAX,
                    ..
                } => Some(session.as_str()),
                _ => None,
            })
            .collect();
        // 1.2 MB - 0.2 - 0.2 - 0.2 = 0.6 MB <= 0.7 MB low-water: all three,
        // oldest first.
        assert_eq!(sessions, vec!["a", "b", "c"]);
        assert_eq!(p.actions.last(), Some(&Action::Compact));
        assert!(!p.over_budget);
    }

    #[test]
    fn nothing_removable_is_reported_over_budget_and_nothing_else_is_touched() {
        let usage = Usage {
            home_bytes: 2_000_000,
            reclaimable_bytes: 0,
        };
        let p = plan(&policy(), NOW, &usage, &[], &[]);
        assert!(p.actions.is_empty());
        assert!(p.over_budget);
    }

    #[test]
    fn free_pages_past_the_threshold_compact_alone() {
        let usage = Usage {
            home_bytes: 300_000,
            reclaimable_bytes: 150_000,
        };
        let p = plan(&policy(), NOW, &usage, &[], &[]);
        assert_eq!(p.actions, vec![Action::Compact]);
        let usage = Usage {
            reclaimable_bytes: 50_000,
            ..usage
        };
        assert!(plan(&policy(), NOW, &usage, &[], &[]).actions.is_empty());
    }

    #[test]
    fn zero_days_keep_everything_until_the_budget_needs_room_and_huge_days_do_not_overflow() {
        let mut pol = policy();
        pol.transcript_days = 0;
        pol.dead_letter_days = u64::MAX;
        let usage = Usage {
            home_bytes: 10,
            reclaimable_bytes: 0,
        };
        let dead = [Dead {
            seq: 1,
            dead_ms: 0,
            bytes: 5,
        }];
        let p = plan(&pol, NOW, &usage, &[arch("x", 399, 1)], &dead);
        assert!(p.actions.is_empty());
    }
}
