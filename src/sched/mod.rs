//! Scheduling for pinch: cron/interval/one-shot triggers, the job scheduler
//! core (catch-up, overlap prevention, jitter) and the heartbeat timing rules.
//! Everything here is pure logic: the caller passes the time in (unix ms) and
//! a jitter source, and does all I/O (persisting jobs, running the agent).

pub mod heartbeat;
pub mod job;
pub mod trigger;

pub use heartbeat::{ActiveHours, HeartbeatConfig, NOTHING_TO_REPORT};
pub use job::{JobSpec, JobState, Outcome, Scheduler, SessionTarget};
pub use trigger::{parse_at, parse_every, validate_cron, Trigger};
