//! The protocol error codes carried by RESET, STOP_SENDING and GOAWAY (spec §9).

use std::fmt;

/// A 32-bit error code (spec §9). Codes below `0x100` are braid's; applications may use any
/// other value in [`crate::Stream::reset`] and friends.
///
/// ```
/// use braid::ErrorCode;
/// assert_eq!(ErrorCode::CANCEL.to_string(), "CANCEL");
/// assert_eq!(ErrorCode(0x1234).to_string(), "application code 0x1234");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful end; no error.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// The peer broke a protocol rule.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// The sender hit an internal failure.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// The peer sent beyond a window, or grew one past 2³¹−1.
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// A frame arrived for a direction the peer had already ended.
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x4);
    /// A frame's length is wrong for its type or above the announced maximum.
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x5);
    /// The stream was not processed (concurrency limit, or above a GOAWAY); safe to retry.
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x6);
    /// The stream is no longer wanted (a handle was dropped, a call cancelled).
    pub const CANCEL: ErrorCode = ErrorCode(0x7);
    /// The peer exceeded an abuse limit (resets, empty frames, ...).
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0x8);
    /// A timer expired (keepalive, open, write, linger).
    pub const TIMEOUT: ErrorCode = ErrorCode(0x9);
    /// The peer speaks another protocol version.
    pub const VERSION_MISMATCH: ErrorCode = ErrorCode(0xa);
    /// The accept backlog was full; the stream was not processed; safe to retry.
    pub const BACKLOG_FULL: ErrorCode = ErrorCode(0xb);

    /// The spec's name for a braid code, `None` for application codes.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "STREAM_CLOSED",
            0x5 => "FRAME_SIZE_ERROR",
            0x6 => "REFUSED_STREAM",
            0x7 => "CANCEL",
            0x8 => "ENHANCE_YOUR_CALM",
            0x9 => "TIMEOUT",
            0xa => "VERSION_MISMATCH",
            0xb => "BACKLOG_FULL",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "application code {:#x}", self.0),
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorCode({self})")
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        ErrorCode(code)
    }
}
