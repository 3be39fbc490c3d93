//! The one error type users see, and its mapping to `io::Error`.

use std::{fmt, io, sync::Arc};

use crate::frame::ErrorCode;

/// Which end of the session did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This process.
    Local,
    /// The peer.
    Remote,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Local => "local side",
            Side::Remote => "peer",
        })
    }
}

/// What timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// A keepalive PING went unanswered (spec §8.1).
    Keepalive,
    /// The peer never acknowledged an opened stream (spec §6).
    Open,
    /// The transport accepted no bytes for `write_timeout`.
    Write,
    /// A dropped, finished stream never got the peer's FIN.
    Linger,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Keepalive => "keepalive ping",
            TimeoutKind::Open => "stream open (no ACK from peer)",
            TimeoutKind::Write => "transport write",
            TimeoutKind::Linger => "stream linger",
        })
    }
}

/// Everything that can go wrong on a session or stream.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream was reset (both directions aborted).
    #[error("stream reset by {by} with {code}")]
    StreamReset {
        /// The code carried by the RESET.
        code: ErrorCode,
        /// Who reset it.
        by: Side,
    },
    /// The peer asked us to stop sending on this stream (STOP_SENDING).
    #[error("peer stopped reading this stream with {code}")]
    StreamStopped {
        /// The code carried by STOP_SENDING.
        code: ErrorCode,
    },
    /// The peer did not process the stream (`REFUSED_STREAM`, `BACKLOG_FULL`, or above its
    /// GOAWAY); nothing was delivered, it is safe to retry on a new stream.
    #[error("stream refused by peer with {code}")]
    StreamRefused {
        /// Why.
        code: ErrorCode,
    },
    /// The session ended; no new streams, and streams still open have failed.
    #[error("session closed by {by} with {code}{}", fmt_reason(reason))]
    SessionClosed {
        /// The GOAWAY code (NO_ERROR for a graceful close).
        code: ErrorCode,
        /// Who closed it.
        by: Side,
        /// The GOAWAY debug text, if any.
        reason: Option<Arc<str>>,
    },
    /// The session is draining after a GOAWAY: existing streams go on, no new ones.
    #[error("session is going away ({by} sent GOAWAY): no new streams")]
    GoingAway {
        /// Who sent the GOAWAY.
        by: Side,
    },
    /// The peer broke the protocol; the session sent GOAWAY with `code` and closed.
    #[error("protocol violation by peer: {reason} ({code})")]
    Protocol {
        /// The code sent in GOAWAY.
        code: ErrorCode,
        /// What the peer did.
        reason: &'static str,
    },
    /// A timer expired.
    #[error("{0} timed out")]
    Timeout(TimeoutKind),
    /// The transport failed, or ended while frames or streams were unfinished.
    #[error("transport error: {0}")]
    Io(Arc<io::Error>),
    /// This side has used every stream id (spec §5).
    #[error("stream ids exhausted on this session")]
    StreamIdsExhausted,
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
}

fn fmt_reason(reason: &Option<Arc<str>>) -> String {
    match reason {
        Some(r) if !r.is_empty() => format!(": {r}"),
        _ => String::new(),
    }
}

impl Error {
    /// The protocol error code behind this error, where there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::StreamReset { code, .. }
            | Error::StreamStopped { code }
            | Error::StreamRefused { code }
            | Error::SessionClosed { code, .. }
            | Error::Protocol { code, .. } => Some(*code),
            Error::Timeout(_) => Some(ErrorCode::TIMEOUT),
            _ => None,
        }
    }

    pub(crate) fn io(err: io::Error) -> Error {
        Error::Io(Arc::new(err))
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::io(err)
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match &err {
            Error::StreamReset { .. } | Error::StreamRefused { .. } => {
                io::ErrorKind::ConnectionReset
            }
            Error::StreamStopped { .. } => io::ErrorKind::BrokenPipe,
            Error::SessionClosed { .. } | Error::GoingAway { .. } => {
                io::ErrorKind::ConnectionAborted
            }
            Error::Protocol { .. } => io::ErrorKind::InvalidData,
            Error::Timeout(_) => io::ErrorKind::TimedOut,
            Error::Io(e) => e.kind(),
            Error::StreamIdsExhausted => io::ErrorKind::Other,
            Error::Config(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
