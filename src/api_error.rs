//! The error of a gateway API call: a typed code (its wire name and HTTP
//! status) and a message that says what to do. Shared by the reactor, the
//! HTTP and WebSocket edges, and the agent's `cron` tool.

use std::fmt;

/// The error codes of the API (`docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    NotFound,
    MethodNotFound,
    TooLarge,
    Unauthorized,
    Busy,
    Store,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotFound => "METHOD_NOT_FOUND",
            ErrorCode::TooLarge => "TOO_LARGE",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Busy => "BUSY",
            ErrorCode::Store => "STORE",
        }
    }

    /// The code named `wire`, if it is one.
    pub fn from_wire(wire: &str) -> Option<ErrorCode> {
        [
            ErrorCode::InvalidRequest,
            ErrorCode::NotFound,
            ErrorCode::MethodNotFound,
            ErrorCode::TooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::Busy,
            ErrorCode::Store,
        ]
        .into_iter()
        .find(|c| c.as_str() == wire)
    }

    /// The HTTP status a plain HTTP endpoint answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound | ErrorCode::MethodNotFound => 404,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Busy => 503,
            ErrorCode::Store => 500,
        }
    }
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_wire_names_and_statuses() {
        assert_eq!(ErrorCode::InvalidRequest.as_str(), "INVALID_REQUEST");
        assert_eq!(ErrorCode::Busy.http_status(), 503);
        assert_eq!(ErrorCode::from_wire("TOO_LARGE"), Some(ErrorCode::TooLarge));
        assert_eq!(ErrorCode::from_wire("NOPE"), None);
        assert_eq!(ErrorCode::Store.http_status(), 500);
        let e = ApiError::new(ErrorCode::NotFound, "no job \"x\"");
        assert_eq!(e.to_string(), "NOT_FOUND: no job \"x\"");
    }
}
