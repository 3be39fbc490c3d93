//! [`Status`] and [`Code`]: how a call ended, with gRPC's 17 status codes.

use std::fmt;

use bytes::Bytes;

/// A gRPC status code (`0..=16`). On the wire it is one byte (spec/RPC.md §4.3); a value
/// above 16 from a peer is read as [`Code::Unknown`].
///
/// ```
/// use braid::rpc::Code;
/// assert_eq!(Code::from_u8(5), Code::NotFound);
/// assert_eq!(Code::from_u8(200), Code::Unknown);
/// assert_eq!(Code::DeadlineExceeded.to_string(), "DEADLINE_EXCEEDED");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// Not an error: the call succeeded.
    Ok = 0,
    /// The call was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, e.g. a status from another error space.
    Unknown = 2,
    /// The client sent an invalid argument.
    InvalidArgument = 3,
    /// The deadline passed before the call completed.
    DeadlineExceeded = 4,
    /// A requested entity was not found.
    NotFound = 5,
    /// The entity the client tried to create already exists.
    AlreadyExists = 6,
    /// The caller may not run this operation.
    PermissionDenied = 7,
    /// A resource ran out: a quota, or a message or metadata size limit.
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, e.g. by a concurrency conflict.
    Aborted = 10,
    /// The operation went past the valid range.
    OutOfRange = 11,
    /// The method is not implemented or not known to the server.
    Unimplemented = 12,
    /// An internal invariant broke, e.g. the peer violated the RPC wire format.
    Internal = 13,
    /// The service is unavailable, e.g. the connection broke; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request lacks valid authentication credentials.
    Unauthenticated = 16,
}

impl Code {
    /// The code for a wire value; values above 16 become [`Code::Unknown`].
    pub fn from_u8(value: u8) -> Code {
        use Code::*;
        match value {
            0 => Ok,
            1 => Cancelled,
            2 => Unknown,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }

    /// The wire value (`0..=16`).
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// gRPC's name for the code, e.g. `"NOT_FOUND"`.
    pub fn name(self) -> &'static str {
        use Code::*;
        match self {
            Ok => "OK",
            Cancelled => "CANCELLED",
            Unknown => "UNKNOWN",
            InvalidArgument => "INVALID_ARGUMENT",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            PermissionDenied => "PERMISSION_DENIED",
            ResourceExhausted => "RESOURCE_EXHAUSTED",
            FailedPrecondition => "FAILED_PRECONDITION",
            Aborted => "ABORTED",
            OutOfRange => "OUT_OF_RANGE",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
            Unavailable => "UNAVAILABLE",
            DataLoss => "DATA_LOSS",
            Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a call ended: a [`Code`], a human-readable message and optional binary details
/// (e.g. an encoded `google.rpc.Status`).
///
/// A handler returns `Err(Status)` to fail a call; the client reads it from
/// [`Call::recv`](super::Call::recv).
///
/// ```
/// use braid::rpc::{Code, Status};
/// let status = Status::not_found("no such user").with_details(&b"\x01\x02"[..]);
/// assert_eq!(status.code(), Code::NotFound);
/// assert_eq!(status.message(), "no such user");
/// assert_eq!(status.details(), b"\x01\x02");
/// assert_eq!(status.to_string(), "NOT_FOUND: no such user");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    details: Bytes,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {$(
        $(#[$doc])*
        pub fn $name(message: impl Into<String>) -> Status {
            Status::new(Code::$code, message)
        }
    )*};
}

impl Status {
    /// A status with `code` and `message` and no details.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: Bytes::new(),
        }
    }

    /// The OK status (empty message).
    pub fn ok() -> Status {
        Status::new(Code::Ok, "")
    }

    constructors! {
        /// A [`Code::Cancelled`] status.
        cancelled => Cancelled,
        /// A [`Code::Unknown`] status.
        unknown => Unknown,
        /// A [`Code::InvalidArgument`] status.
        invalid_argument => InvalidArgument,
        /// A [`Code::DeadlineExceeded`] status.
        deadline_exceeded => DeadlineExceeded,
        /// A [`Code::NotFound`] status.
        not_found => NotFound,
        /// A [`Code::AlreadyExists`] status.
        already_exists => AlreadyExists,
        /// A [`Code::PermissionDenied`] status.
        permission_denied => PermissionDenied,
        /// A [`Code::ResourceExhausted`] status.
        resource_exhausted => ResourceExhausted,
        /// A [`Code::FailedPrecondition`] status.
        failed_precondition => FailedPrecondition,
        /// A [`Code::Aborted`] status.
        aborted => Aborted,
        /// A [`Code::OutOfRange`] status.
        out_of_range => OutOfRange,
        /// A [`Code::Unimplemented`] status.
        unimplemented => Unimplemented,
        /// A [`Code::Internal`] status.
        internal => Internal,
        /// A [`Code::Unavailable`] status.
        unavailable => Unavailable,
        /// A [`Code::DataLoss`] status.
        data_loss => DataLoss,
        /// A [`Code::Unauthenticated`] status.
        unauthenticated => Unauthenticated,
    }

    /// Attaches binary details (sent in the trailer; empty means none).
    pub fn with_details(mut self, details: impl Into<Bytes>) -> Status {
        self.details = details.into();
        self
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message (may be empty).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The binary details (empty if none).
    pub fn details(&self) -> &[u8] {
        &self.details
    }

    /// The binary details as shared bytes.
    pub fn details_bytes(&self) -> &Bytes {
        &self.details
    }

    /// Whether the code is [`Code::Ok`].
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for v in 0..=16u8 {
            assert_eq!(Code::from_u8(v).as_u8(), v);
        }
        assert_eq!(Code::from_u8(17), Code::Unknown);
        assert_eq!(Status::ok().to_string(), "OK");
    }
}
