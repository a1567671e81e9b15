//! Percent-encoding (RFC 3986) for the whole crate, on the
//! `percent-encoding` crate: one place that turns untrusted `%xx` text
//! into bytes, and one that escapes text for a URL path or query.
//!
//! Decoding never panics on any input: a `%` not followed by two hex digits
//! is kept literally by the lenient decoder and refused by the strict one.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Escapes everything but unreserved characters: safe as one path segment
/// or one query value.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// Decodes `%xx` escapes; malformed escapes stay as they are and bytes that
/// are not UTF-8 once decoded become U+FFFD. For names taken from a request
/// path, where the lookup that follows rejects what does not exist.
pub fn decode_lossy(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Why `decode_strict` refused its input.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Decodes `%xx` escapes, refusing a malformed escape or a result that is
/// not UTF-8 (for credentials, where guessing would send the wrong secret).
pub fn decode_strict(text: &str) -> Result<String, DecodeError> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = bytes.get(i + 1..i + 3).unwrap_or(&[]);
            if hex.len() != 2 || !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(DecodeError::BadEscape);
            }
        }
    }
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| DecodeError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_decode_takes_any_input_without_panicking() {
        for s in [
            "%€", "x%1é", "%1é", "%", "%%", "%é1", "%1", "a%2", "%ff%fe", "€%", "%G0", "%0€",
        ] {
            let _ = decode_lossy(s);
            let _ = decode_strict(s);
        }
        assert_eq!(decode_lossy("a%20b"), "a b");
        assert_eq!(decode_lossy("x%1é"), "x%1é");
        assert_eq!(decode_lossy("%C3%BC"), "ü");
        assert_eq!(decode_lossy("%ff"), "\u{fffd}");
        assert_eq!(decode_lossy("web%3At1"), "web:t1");
    }

    #[test]
    fn strict_decode_refuses_bad_escapes_and_non_utf8() {
        assert_eq!(decode_strict("p%40ss"), Ok("p@ss".to_string()));
        assert_eq!(decode_strict("50%"), Err(DecodeError::BadEscape));
        assert_eq!(decode_strict("%zz"), Err(DecodeError::BadEscape));
        assert_eq!(decode_strict("%1é"), Err(DecodeError::BadEscape));
        assert_eq!(decode_strict("%ff"), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn encode_keeps_only_unreserved_characters() {
        assert_eq!(encode("c++ & rust/ü?"), "c%2B%2B%20%26%20rust%2F%C3%BC%3F");
        assert_eq!(encode("web:t1"), "web%3At1");
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(
            decode_lossy(&encode("telegram:dm:42 ü/x")),
            "telegram:dm:42 ü/x"
        );
    }
}
