//! xorshift64: a fast, deterministic, non-cryptographic number stream, for
//! jitter and for generated test inputs (secrets use `secret.rs`).

/// Advances `state` (never 0) and returns the new value.
pub fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A stream of values from `seed` (0 counts as 1), for tests.
#[cfg(test)]
pub fn xorshift_stream(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.max(1);
    move || xorshift(&mut state)
}
