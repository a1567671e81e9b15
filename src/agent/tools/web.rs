//! The `web_search` and `web_fetch` tools: the backend of `tools.webSearch`
//! (`agent::search`) and bounded fetches of public addresses (`agent::fetch`),
//! HTML reduced to text.

use super::html_text::html_to_text;
use super::{cap, Output, Registry};

impl Registry {
    pub(super) fn web_search(
        &self,
        query: Option<&str>,
        max: Option<u64>,
    ) -> Result<Output, String> {
        let searcher = self.searcher.as_ref().ok_or("web_search is disabled")?;
        let query = query.ok_or("missing \"query\"")?;
        let max = max
            .map(|m| m as usize)
            .unwrap_or_else(|| searcher.max_results());
        let (text, summary) = searcher.search(query, max)?;
        Ok(Output::ok(text, summary))
    }

    pub(super) fn web_fetch(&self, url: Option<&str>) -> Result<Output, String> {
        let url = url.ok_or("missing \"url\"")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("only http:// and https:// URLs can be fetched".into());
        }
        let agent = self.fetch_agent.as_ref().ok_or("web_fetch is disabled")?;
        let f = agent.get(url, self.fetch_max, self.fetch_timeout)?;
        let raw = String::from_utf8_lossy(&f.body);
        let text = if f.content_type.contains("html") || raw.trim_start().starts_with('<') {
            html_to_text(&raw)
        } else {
            raw.into_owned()
        };
        let summary = format!(
            "GET {} → {} ({} bytes)",
            crate::util::truncate(&f.url, 60),
            f.status,
            f.body.len()
        );
        if f.status >= 400 {
            return Ok(Output {
                content: cap(format!("HTTP {}\n{text}", f.status)),
                is_error: true,
                summary,
            });
        }
        Ok(Output::ok(text, summary))
    }
}
