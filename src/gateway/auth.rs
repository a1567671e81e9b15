//! Gateway token checks and the per-address failure throttle.
//!
//! Tokens are compared in constant time. An address that sends wrong
//! tokens repeatedly is locked out for a while (its wrong guesses get 429);
//! the right token always passes. The table of addresses is bounded. The clock
//! is passed in, so the throttle is tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

const WINDOW_MS: u64 = 60_000;
const MAX_FAILURES: u32 = 5;
const LOCKOUT_MS: u64 = 60_000;
const MAX_TRACKED: usize = 1024;
/// The pause before a refusal while an address is locked out.
pub const LOCKED_DELAY_MS: u64 = 1000;

#[derive(Debug, PartialEq)]
pub enum Check {
    Ok,
    /// Wrong or missing token; the caller should answer 401 after `delay_ms`.
    Denied {
        delay_ms: u64,
    },
    /// Too many failures from this address: 429 with Retry-After.
    Locked {
        retry_after_s: u64,
    },
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    window_start: u64,
    locked_until: u64,
}

pub struct Auth {
    token: Option<String>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Auth {
    pub fn new(token: Option<String>) -> Auth {
        Auth {
            token: token.filter(|t| !t.is_empty()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Checks a presented token (`None` when the client sent none).
    ///
    /// The right token always passes, even from an address that is locked
    /// out (several users behind one proxy share an address; guessing is
    /// made hopeless by the token's length, and slow by the delays). Only a
    /// wrong token counts as a failure; a missing one is just refused.
    pub fn check(&self, addr: IpAddr, presented: Option<&str>, now_ms: u64) -> Check {
        let Some(expected) = &self.token else {
            return Check::Ok;
        };
        let Some(presented) = presented else {
            return Check::Denied { delay_ms: 0 };
        };
        if crate::util::ct_eq(presented.as_bytes(), expected.as_bytes()) {
            return Check::Ok;
        }
        let mut map = crate::util::lock(&self.failures);
        fail(&mut map, addr, now_ms)
    }

    /// Whether `presented` is the gateway token (nothing is counted).
    pub fn matches(&self, presented: Option<&str>) -> bool {
        match (&self.token, presented) {
            (None, _) => true,
            (Some(expected), Some(p)) => crate::util::ct_eq(p.as_bytes(), expected.as_bytes()),
            (Some(_), None) => false,
        }
    }

    /// Seconds until `addr` may try again, if it is locked out.
    pub fn locked_for(&self, addr: IpAddr, now_ms: u64) -> Option<u64> {
        let map = crate::util::lock(&self.failures);
        map.get(&addr)
            .filter(|f| f.locked_until > now_ms)
            .map(|f| (f.locked_until - now_ms).div_ceil(1000))
    }

    /// Counts a failed secret check made elsewhere (a webhook token) against
    /// `addr`, with the same slow-down and lockout as the gateway token.
    pub fn record_failure(&self, addr: IpAddr, now_ms: u64) -> Check {
        let mut map = crate::util::lock(&self.failures);
        fail(&mut map, addr, now_ms)
    }
}

/// Counts one wrong secret. During a lockout it answers `Locked` (after
/// the longest delay, so a locked-out guesser stays slow) without extending
/// the lockout.
fn fail(map: &mut HashMap<IpAddr, Failures>, addr: IpAddr, now_ms: u64) -> Check {
    if let Some(f) = map.get(&addr) {
        if f.locked_until > now_ms {
            return Check::Locked {
                retry_after_s: (f.locked_until - now_ms).div_ceil(1000),
            };
        }
    }
    if map.len() >= MAX_TRACKED && !map.contains_key(&addr) {
        // Forget the entry whose window is oldest; an attacker cycling
        // addresses only evicts its own older entries.
        if let Some(oldest) = map
            .iter()
            .min_by_key(|(_, f)| f.window_start)
            .map(|(a, _)| *a)
        {
            map.remove(&oldest);
        }
    }
    let f = map.entry(addr).or_insert(Failures {
        count: 0,
        window_start: now_ms,
        locked_until: 0,
    });
    if now_ms.saturating_sub(f.window_start) > WINDOW_MS {
        *f = Failures {
            count: 0,
            window_start: now_ms,
            locked_until: 0,
        };
    }
    f.count = f.count.saturating_add(1);
    if f.count >= MAX_FAILURES {
        f.locked_until = now_ms.saturating_add(LOCKOUT_MS);
    }
    Check::Denied {
        delay_ms: LOCKED_DELAY_MS.min(100 * u64::from(f.count.min(10))),
    }
}

/// Extracts the token from `Authorization: Bearer …`.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let rest = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))?;
    Some(rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_token_configured_allows_all() {
        let a = Auth::new(None);
        assert_eq!(
            a.check("127.0.0.1".parse().expect("ip"), None, 0),
            Check::Ok
        );
    }

    #[test]
    fn wrong_tokens_slow_down_then_lock_out_then_expire() {
        let a = Auth::new(Some("secret".into()));
        let ip: IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(a.check(ip, Some("secret"), 0), Check::Ok);
        assert_eq!(a.check(ip, None, 0), Check::Denied { delay_ms: 0 });
        assert_eq!(
            a.check(ip, Some("secreT"), 1),
            Check::Denied { delay_ms: 100 }
        );
        for i in 0..4 {
            a.check(ip, Some("x"), 2 + i);
        }
        assert_eq!(
            a.check(ip, Some("guess"), 10),
            Check::Locked { retry_after_s: 60 }
        );
        assert_eq!(
            a.check(ip, Some("secret"), 10),
            Check::Ok,
            "the right token is never locked out"
        );
        assert_eq!(a.locked_for(ip, 10), Some(60));
        let other: IpAddr = "10.0.0.3".parse().expect("ip");
        assert_eq!(
            a.check(other, Some("y"), 10),
            Check::Denied { delay_ms: 100 },
            "lockout is per address"
        );
        assert_eq!(
            a.check(ip, Some("x"), 5 + LOCKOUT_MS + 1),
            Check::Denied { delay_ms: 100 },
            "expired"
        );
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }
}
