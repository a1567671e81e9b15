//! Starting a conversation over without losing it: the session's metadata
//! and transcript move, in one transaction, to an archive key
//! `<key>~<UTC time>` (`main~20261202-0712`), which `pinch sessions list`
//! shows and retention treats like any other session. The live key is then
//! free and the next message starts an empty transcript.

use super::{with_context, SessionMeta, Store, SESSIONS, TURNS};
use redb::ReadableTable;

/// Turns moved per archive at most; a longer transcript keeps its oldest
/// turns under the live key's archive too, in further calls (never lost).
const MAX_MOVED: usize = 100_000;

impl Store {
    /// Moves `key`'s transcript to an archive key and returns that key;
    /// `None` when the session has no transcript.
    pub fn archive(&self, key: &str, now_ms: u64) -> Result<Option<String>, String> {
        let tx = self.db.begin_write().map_err(with_context("begin"))?;
        let archived = {
            let mut sessions = tx.open_table(SESSIONS).map_err(with_context("open"))?;
            let meta: Option<SessionMeta> = sessions
                .get(key)
                .map_err(with_context("read"))?
                .and_then(|v| serde_json::from_slice(v.value()).ok());
            let Some(mut meta) = meta else {
                return Ok(None);
            };
            let stamp = archive_stamp(now_ms);
            let mut new_key = format!("{key}~{stamp}");
            let mut n = 1;
            while sessions
                .get(new_key.as_str())
                .map_err(with_context("read"))?
                .is_some()
                && n < 100
            {
                n += 1;
                new_key = format!("{key}~{stamp}-{n}");
            }
            let mut turns = tx.open_table(TURNS).map_err(with_context("open"))?;
            let mut moved: Vec<(u64, Vec<u8>)> = Vec::new();
            for row in turns
                .range((key, 0u64)..=(key, u64::MAX))
                .map_err(with_context("range"))?
                .take(MAX_MOVED)
            {
                let (k, v) = row.map_err(with_context("read"))?;
                moved.push((k.value().1, v.value().to_vec()));
            }
            for (seq, bytes) in &moved {
                turns
                    .insert((new_key.as_str(), *seq), bytes.as_slice())
                    .map_err(with_context("insert"))?;
                turns.remove((key, *seq)).map_err(with_context("remove"))?;
            }
            let left = turns
                .range((key, 0u64)..=(key, u64::MAX))
                .map_err(with_context("range"))?
                .next()
                .is_some();
            meta.key = new_key.clone();
            let bytes = serde_json::to_vec(&meta).map_err(|x| x.to_string())?;
            sessions
                .insert(new_key.as_str(), bytes.as_slice())
                .map_err(with_context("insert"))?;
            if !left {
                sessions.remove(key).map_err(with_context("remove"))?;
            }
            new_key
        };
        tx.commit().map_err(with_context("commit"))?;
        Ok(Some(archived))
    }
}

/// `20261202-0712` for the archive key.
fn archive_stamp(now_ms: u64) -> String {
    let t = crate::util::rfc3339(now_ms);
    // "2026-12-02T07:12:33.000Z" → "20261202-0712"
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    match (digits.get(0..8), digits.get(8..12)) {
        (Some(d), Some(h)) => format!("{d}-{h}"),
        _ => now_ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, Part, Role};
    use crate::store::Turn;

    #[test]
    fn archive_moves_the_transcript_and_frees_the_key() {
        let dir = std::env::temp_dir().join(format!("pinch-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("state.redb")).unwrap();
        assert_eq!(store.archive("main", 0).unwrap(), None);
        let m = |t: &str| Message {
            role: Role::User,
            parts: vec![Part::Text(t.into())],
        };
        store
            .append(
                "main",
                &[Turn::message(1, m("a")), Turn::message(2, m("b"))],
                crate::llm::types::TokenUsage::default(),
                5,
            )
            .unwrap();
        let now = 1_796_000_000_000;
        let key = store.archive("main", now).unwrap().unwrap();
        assert!(key.starts_with("main~2026"), "{key}");
        assert!(store.session("main").unwrap().is_none());
        assert!(store.recent("main", 10, 10_000).unwrap().is_empty());
        assert_eq!(store.recent(&key, 10, 10_000).unwrap().len(), 2);
        // A second archive in the same minute gets its own key.
        store
            .append(
                "main",
                &[Turn::message(3, m("c"))],
                crate::llm::types::TokenUsage::default(),
                6,
            )
            .unwrap();
        let again = store.archive("main", now).unwrap().unwrap();
        assert_ne!(again, key);
        assert_eq!(store.recent(&again, 10, 10_000).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
