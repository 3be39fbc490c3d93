//! Session configuration: every window, limit and timer in one place, with the defaults and
//! reasons of spec §11 ("Resource limits").

use std::time::Duration;

use crate::frame::{Preface, MAX_FRAME_PAYLOAD_LIMIT, MAX_WINDOW, MIN_FRAME_PAYLOAD_LIMIT};

/// Session settings. Start from [`Config::default`] and chain `with_*` setters (or assign
/// fields); [`Config::validated`] / [`Config::validate`] say what is inconsistent, and
/// sessions validate on creation.
///
/// The struct is `#[non_exhaustive]`: new settings arrive as new fields with defaults, so
/// code outside braid can't build it with a struct literal, which keeps adding a setting from
/// being a breaking change.
///
/// ```
/// use std::time::Duration;
///
/// let config = braid::Config::default()
///     .with_max_stream_window(8 << 20)
///     .with_session_window(128 << 20)
///     .with_keepalive_interval(Some(Duration::from_secs(10)))
///     .validated()?;
/// assert_eq!(config.session_window, 128 << 20);
///
/// // Inconsistent settings are refused with the rule they break.
/// let err = braid::Config::default().with_session_window(4096).validated().unwrap_err();
/// assert!(err.to_string().contains("session_window"));
/// # Ok::<(), braid::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Receive window each new stream starts with (spec §7.1). Default 256 KiB.
    pub initial_stream_window: u32,
    /// Largest receive window a stream grows to when its reader keeps up (spec §7.4); all
    /// streams' growth together stays within `session_window - 16 × initial_stream_window`.
    /// Default 64 MiB (the session window: with the defaults the growth budget, 60 MiB, is the
    /// binding cap, so one stream on a long link can use most of the session).
    pub max_stream_window: u32,
    /// Session receive window: all streams' unread bytes together, so the bound on memory
    /// buffered per session (spec §7.2). Must be at least 16 × `initial_stream_window` so
    /// stalled streams can't starve the rest (§7.5). Default 64 MiB.
    pub session_window: u32,
    /// Inbound streams open at once; more are refused with `REFUSED_STREAM` (spec §6).
    /// Default 32,768.
    pub max_inbound_streams: u32,
    /// Outbound streams open at once; `open()` waits beyond it (spec §6). Default 32,768.
    pub max_outbound_streams: u32,
    /// Inbound streams waiting for [`crate::Session::accept`]; more are refused with
    /// `BACKLOG_FULL`. Default 1,024.
    pub accept_backlog: u32,
    /// Largest DATA payload accepted, and the largest this side sends. Default 64 KiB.
    pub max_frame_payload: u32,
    /// Bytes a stream buffers for sending beyond what is on the wire; writers wait beyond it.
    /// Default 256 KiB. A write of 16 KiB or more from a slice (`AsyncWrite::poll_write`)
    /// queues at most 64 KiB (one frame) while the stream's credit would let the queued bytes
    /// go at once, so that its next write can go straight to the transport from the
    /// caller's buffer instead of being copied; bytes that wait for the peer's credit fill
    /// the whole buffer.
    pub stream_send_buffer: u32,
    /// Bytes all streams buffer for sending together. Default 16 MiB.
    pub session_send_buffer: u32,
    /// How often to ping an otherwise quiet peer; `None` turns keepalive off. Default 30 s.
    pub keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the session fails with a timeout. Default 30 s.
    pub keepalive_timeout: Duration,
    /// How long an opened stream may wait for the peer's ACK. Default 30 s.
    pub open_timeout: Duration,
    /// How long the transport may accept no bytes while we have some to write. Default 30 s.
    pub write_timeout: Duration,
    /// How long a stream the application dropped after finishing waits for the peer's FIN
    /// before it is reset. Default 60 s.
    pub linger_timeout: Duration,
    /// How long a session that has ended keeps reading (and discarding) input after it shut
    /// down its write side, waiting for the peer's EOF before it closes the transport (spec
    /// §8.2, §8.3, L22). Closing with unread input makes the kernel answer with a TCP RST,
    /// which destroys bytes the peer has not read yet (our last replies, our GOAWAY); a peer
    /// that keeps reading closes its side as soon as it has everything, so the drain usually
    /// ends within a round trip. `Duration::ZERO` closes at once after the shutdown.
    /// Default 30 s (the keepalive timeout).
    pub close_drain_timeout: Duration,
    /// After how long without traffic either way a session gives its buffers back (spec
    /// §11 L23): the driver's read buffers shrink to a few KiB (they grow again on the next
    /// full read), its spare read buffers, the write queue's allocation and the core's pools
    /// and spare capacity are freed. A server holding thousands of mostly quiet sessions then
    /// pays for what they hold now, not for what their busiest moment needed. `None` keeps
    /// the buffers for the life of the session. Default 250 ms: long against the gaps inside
    /// a burst, short against a client's think time; releasing costs one allocation when
    /// traffic resumes.
    pub idle_release: Option<Duration>,
    /// A receive-memory budget shared with other sessions (spec §7.6): beyond its floor,
    /// `min(session_window, 16 × initial_stream_window)`, a session grants session credit
    /// only from the budget, so all the sessions holding it buffer at most the budget plus
    /// their floors plus what their prefaces promised and they have not yet consumed. See
    /// [`MemoryBudget`](crate::MemoryBudget). Default `None` (each session bounded by its own
    /// `session_window` only).
    pub memory_budget: Option<std::sync::Arc<crate::MemoryBudget>>,
    /// RESETs braid itself may send for the peer's faults before it ends the session with
    /// `ENHANCE_YOUR_CALM`; each stream the application accepts earns one back. Default 1,000.
    pub max_local_resets: u32,
    /// Streams the peer may reset while they wait in the accept backlog (rapid reset, spec
    /// §11 L17): each stays as a tombstone until `accept` walks past it, and more than this
    /// many at once ends the session with `ENHANCE_YOUR_CALM`. A flood of SYN+RESET pairs
    /// arrives ahead of any accept and trips it; a client cancelling while the application
    /// keeps accepting never accumulates. Default 1,000.
    pub max_unaccepted_resets: u32,
    /// Empty DATA frames (no flag) and zero-increment WINDOW_UPDATEs tolerated per session.
    /// Default 10,000.
    pub max_empty_frames: u32,
    /// Closed stream ids remembered to tell late frames from protocol errors. Default 4,096.
    pub closed_stream_memory: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_stream_window: 256 * 1024,
            max_stream_window: 64 * 1024 * 1024,
            session_window: 64 * 1024 * 1024,
            max_inbound_streams: 32_768,
            max_outbound_streams: 32_768,
            accept_backlog: 1024,
            max_frame_payload: 64 * 1024,
            stream_send_buffer: 256 * 1024,
            session_send_buffer: 16 * 1024 * 1024,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(30),
            open_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            linger_timeout: Duration::from_secs(60),
            close_drain_timeout: Duration::from_secs(30),
            idle_release: Some(Duration::from_millis(250)),
            memory_budget: None,
            max_local_resets: 1000,
            max_unaccepted_resets: 1000,
            max_empty_frames: 10_000,
            closed_stream_memory: 4096,
        }
    }
}

/// A [`Config`] that contradicts itself or the protocol's ranges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {0}")]
pub struct ConfigError(pub &'static str);

/// One chainable setter per field: `with_<field>(value)` sets [`Config::<field>`].
macro_rules! setters {
    ($($setter:ident => $field:ident: $ty:ty),* $(,)?) => {
        impl Config {
            $(
                #[doc = concat!("Sets [`Config::", stringify!($field), "`] (see the field for its default and meaning).")]
                #[must_use]
                pub fn $setter(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    with_initial_stream_window => initial_stream_window: u32,
    with_max_stream_window => max_stream_window: u32,
    with_session_window => session_window: u32,
    with_max_inbound_streams => max_inbound_streams: u32,
    with_max_outbound_streams => max_outbound_streams: u32,
    with_accept_backlog => accept_backlog: u32,
    with_max_frame_payload => max_frame_payload: u32,
    with_stream_send_buffer => stream_send_buffer: u32,
    with_session_send_buffer => session_send_buffer: u32,
    with_keepalive_interval => keepalive_interval: Option<Duration>,
    with_keepalive_timeout => keepalive_timeout: Duration,
    with_open_timeout => open_timeout: Duration,
    with_write_timeout => write_timeout: Duration,
    with_linger_timeout => linger_timeout: Duration,
    with_close_drain_timeout => close_drain_timeout: Duration,
    with_idle_release => idle_release: Option<Duration>,
    with_memory_budget => memory_budget: Option<std::sync::Arc<crate::MemoryBudget>>,
    with_max_local_resets => max_local_resets: u32,
    with_max_unaccepted_resets => max_unaccepted_resets: u32,
    with_max_empty_frames => max_empty_frames: u32,
    with_closed_stream_memory => closed_stream_memory: u32,
}

impl Config {
    /// Checks ranges and relations between fields and returns the config, so a chain of
    /// setters can end in `?`.
    pub fn validated(self) -> Result<Self, ConfigError> {
        self.validate()?;
        Ok(self)
    }

    /// Checks ranges and relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, what: &'static str| if ok { Ok(()) } else { Err(ConfigError(what)) };
        check(
            (1024..=MAX_WINDOW).contains(&self.initial_stream_window),
            "initial_stream_window must be in 1 KiB ..= 2^31-1",
        )?;
        check(
            self.max_stream_window >= self.initial_stream_window,
            "max_stream_window must be >= initial_stream_window",
        )?;
        check(
            self.session_window <= MAX_WINDOW,
            "session_window must be <= 2^31-1",
        )?;
        check(
            self.max_stream_window <= MAX_WINDOW,
            "max_stream_window must be <= 2^31-1",
        )?;
        check(
            self.session_window as u64 >= 16 * self.initial_stream_window as u64,
            "session_window must be >= 16 * initial_stream_window (spec §7.5)",
        )?;
        check(
            self.max_inbound_streams >= 1,
            "max_inbound_streams must be >= 1",
        )?;
        check(
            self.max_outbound_streams >= 1,
            "max_outbound_streams must be >= 1",
        )?;
        check(self.accept_backlog >= 1, "accept_backlog must be >= 1")?;
        check(
            (MIN_FRAME_PAYLOAD_LIMIT..=MAX_FRAME_PAYLOAD_LIMIT).contains(&self.max_frame_payload),
            "max_frame_payload must be in 1 KiB ..= 16 MiB",
        )?;
        check(
            self.stream_send_buffer >= 1024,
            "stream_send_buffer must be >= 1 KiB",
        )?;
        check(
            self.session_send_buffer >= self.stream_send_buffer,
            "session_send_buffer must be >= stream_send_buffer",
        )?;
        check(
            self.keepalive_interval != Some(Duration::ZERO),
            "keepalive_interval must be non-zero (use None to disable)",
        )?;
        check(
            self.closed_stream_memory >= 1,
            "closed_stream_memory must be >= 1",
        )?;
        Ok(())
    }

    /// The preface this config announces (spec §2).
    pub(crate) fn preface(&self) -> Preface {
        Preface {
            initial_stream_window: self.initial_stream_window,
            session_window: self.session_window,
            max_concurrent_streams: self.max_inbound_streams,
            accept_backlog: self.accept_backlog,
            max_frame_payload: self.max_frame_payload,
        }
    }
}
