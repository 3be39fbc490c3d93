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
    /// A write after this side finished its direction of the stream (`shutdown()` or
    /// `finish()`, spec §6.2): the bytes were not queued. Maps to `io::ErrorKind::BrokenPipe`.
    #[error("write after the stream was finished")]
    Finished,
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

    /// Whether the whole session is gone: it ended (GOAWAY either way, a protocol violation,
    /// a keepalive or write timeout, a failed transport), so every stream on it has failed and
    /// a new one needs a new session. `false` for errors that end one stream only (reset,
    /// stop, refusal, open or linger timeout, a write after finish) and for
    /// [`Error::GoingAway`], where streams already open go on.
    ///
    /// ```
    /// use braid::{Error, ErrorCode, Side};
    ///
    /// let reset = Error::StreamReset { code: ErrorCode::CANCEL, by: Side::Remote };
    /// assert!(!reset.is_session_gone()); // retry on a new stream of the same session
    /// let closed = Error::SessionClosed { code: ErrorCode::NO_ERROR, by: Side::Remote, reason: None };
    /// assert!(closed.is_session_gone()); // reconnect
    /// ```
    pub fn is_session_gone(&self) -> bool {
        match self {
            Error::SessionClosed { .. } | Error::Protocol { .. } | Error::Io(_) => true,
            Error::Timeout(kind) => matches!(kind, TimeoutKind::Keepalive | TimeoutKind::Write),
            Error::StreamReset { .. }
            | Error::StreamStopped { .. }
            | Error::StreamRefused { .. }
            | Error::GoingAway { .. }
            | Error::StreamIdsExhausted
            | Error::Finished
            | Error::Config(_) => false,
        }
    }

    /// Which end caused the error, where the error says: the resetting, stopping, refusing,
    /// GOAWAY-sending or violating side. `None` for timeouts, transport failures and local
    /// misuse (a write after finish, an invalid config, exhausted ids).
    pub fn caused_by(&self) -> Option<Side> {
        match self {
            Error::StreamReset { by, .. }
            | Error::SessionClosed { by, .. }
            | Error::GoingAway { by } => Some(*by),
            Error::StreamStopped { .. } | Error::StreamRefused { .. } | Error::Protocol { .. } => {
                Some(Side::Remote)
            }
            _ => None,
        }
    }

    /// The braid [`Error`] inside an `io::Error` that a stream's `AsyncRead`/`AsyncWrite` (or
    /// anything converting with `From<Error> for io::Error`) returned; `None` for other
    /// `io::Error`s.
    ///
    /// ```
    /// use braid::{Error, ErrorCode, Side};
    ///
    /// let io: std::io::Error = Error::StreamReset { code: ErrorCode::CANCEL, by: Side::Remote }.into();
    /// assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
    /// let err = Error::from_io(&io).expect("a braid error");
    /// assert_eq!(err.code(), Some(ErrorCode::CANCEL));
    /// assert!(Error::from_io(&std::io::Error::other("not ours")).is_none());
    /// ```
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref::<Error>()
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
            Error::StreamStopped { .. } | Error::Finished => io::ErrorKind::BrokenPipe,
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
