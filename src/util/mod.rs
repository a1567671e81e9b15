//! Small helpers shared by every layer, one file per job: time and dates
//! (`time.rs`), secrets (`secret.rs`), strings (`text.rs`), locking
//! (`lock.rs`), the allocator (`malloc.rs`), the thread stack cache
//! (`stack_cache.rs`), code pages (`code_pages.rs`), when to release
//! memory at rest (`quiet_trim.rs`), a deterministic number stream
//! (`xorshift.rs`) and, in tests, crash injection (`crash.rs`). Callers use the
//! names re-exported here (`crate::util::now_ms`).

mod code_pages;
#[cfg(test)]
pub mod crash;
mod lock;
mod malloc;
mod quiet_trim;
mod secret;
mod stack_cache;
mod text;
mod time;
mod xorshift;

pub use code_pages::release_code_pages;
pub use lock::lock;
pub use malloc::{release_free_memory, rss_kib, tune_malloc};
pub use quiet_trim::QuietTrim;
pub use secret::{ct_eq, random_u64, short_hash};
pub use stack_cache::{disable_thread_stack_cache, NO_STACK_CACHE};
pub use text::{edit_distance, nearest, truncate, truncate_chars};
pub use time::{now_ms, parse_http_date, rfc3339, utc_datetime};
pub use xorshift::xorshift;
#[cfg(test)]
pub use xorshift::xorshift_stream;
