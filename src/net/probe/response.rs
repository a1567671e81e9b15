//! HTTP/1.x response heads from a proxy or a server: read up to the end of
//! the head (bounded), then parsed with `httparse`.

use super::Conn;
use std::io::{self, Read};

/// Parses an HTTP/1.x response head: status code and `Date` header.
pub fn parse_response_head(head: &[u8]) -> Result<(u16, Option<String>), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    // A head cut short (the peer closed early) is Partial: the status
    // line may still be complete, and a later header is then ignored.
    if let Err(e) = response.parse(head) {
        let text = String::from_utf8_lossy(head);
        let status_line = text.split("\r\n").next().unwrap_or_default();
        let shown = crate::util::truncate_chars(status_line, 40);
        return Err(match e {
            httparse::Error::Version => format!("not an HTTP/1.x response: '{shown}'"),
            httparse::Error::Status => format!("bad HTTP status line: '{shown}'"),
            other => format!("bad HTTP response head ({other}) after '{shown}'"),
        });
    }
    let code = response
        .code
        .filter(|c| (100..=999).contains(c))
        .ok_or("incomplete HTTP status line")?;
    let date = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("date"))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
    Ok((code, date))
}

/// Reads up to the end of a response head (or EOF), at most 64 KiB.
pub(super) fn read_head(conn: &mut Box<dyn Conn>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = match conn.read(&mut chunk) {
            Ok(n) => n,
            // a TLS peer that closes without close_notify after answering
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head larger than 64 KiB",
            ));
        }
    }
}

pub(super) fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}
