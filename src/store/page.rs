//! History pages for clients: the turns of a session before a cursor,
//! newest page first, so a client shows the latest turns at once and loads
//! older ones on demand instead of everything at connect.

use super::{with_context, Store, Turn, TURNS};

impl Store {
    /// Up to `limit` turns with a sequence number below `before` (all when
    /// `None`), oldest-first, and the cursor for the page before them
    /// (`None` when there is nothing older).
    pub fn page(
        &self,
        key: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<(u64, Turn)>, Option<u64>), String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(TURNS).map_err(with_context("open"))?;
        let end = before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut more = false;
        for row in t
            .range((key, 0u64)..(key, end))
            .map_err(with_context("range"))?
            .rev()
        {
            let (k, v) = row.map_err(with_context("read"))?;
            if out.len() >= limit.max(1) {
                more = true;
                break;
            }
            if let Ok(turn) = serde_json::from_slice::<Turn>(v.value()) {
                out.push((k.value().1, turn));
            }
        }
        out.reverse();
        let cursor = if more {
            out.first().map(|(s, _)| *s)
        } else {
            None
        };
        Ok((out, cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, Part, Role};

    #[test]
    fn pages_walk_back_to_the_first_turn() {
        let dir = std::env::temp_dir().join(format!("pinch-page-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("state.redb")).unwrap();
        let turns: Vec<Turn> = (0..7)
            .map(|i| {
                Turn::message(
                    i,
                    Message {
                        role: Role::User,
                        parts: vec![Part::Text(format!("m{i}"))],
                    },
                )
            })
            .collect();
        store
            .append("s", &turns, crate::llm::types::TokenUsage::default(), 1)
            .unwrap();
        let (p1, c1) = store.page("s", None, 3).unwrap();
        assert_eq!(p1.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(c1, Some(4));
        let (p2, c2) = store.page("s", c1, 3).unwrap();
        assert_eq!(p2.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3]);
        let (p3, c3) = store.page("s", c2, 3).unwrap();
        assert_eq!(p3.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0]);
        assert_eq!(c3, None);
        assert!(store.page("other", None, 3).unwrap().0.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
