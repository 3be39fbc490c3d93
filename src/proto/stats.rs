//! What a session reports about itself: the counters snapshot ([`Stats`]), one stream's
//! receive side ([`StreamRecv`]), and the defences' counts the runtime's log compares turn by
//! turn ([`Defences`]); the core only counts, the runtime logs.

use std::time::Duration;

use super::Core;

/// The receive side of one stream ([`Core::stream_recv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamRecv {
    /// Bytes received and not yet read by the application.
    pub buffered: usize,
    /// The stream's receive window: what the peer may have in flight (spec §7.1, grown by
    /// §7.4).
    pub window: u32,
}

/// A snapshot of a session's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Streams open on the wire (both directions not yet ended), both initiators.
    pub open_streams: usize,
    /// Of those, opened by the peer.
    pub inbound_streams: usize,
    /// Of those, opened by us.
    pub outbound_streams: usize,
    /// Streams in the table, including closed ones whose handles are still alive.
    pub tracked_streams: usize,
    /// Inbound streams waiting for `accept` (live ones; not the tombstones of streams the
    /// peer reset meanwhile, spec §11 L17).
    pub backlog: usize,
    /// Bytes received and not yet read by the application, all streams.
    pub recv_buffered: usize,
    /// Bytes written by the application and not yet framed, all streams.
    pub send_buffered: usize,
    /// Session credit the peer granted us and we have not used.
    pub session_send_credit: u32,
    /// Session credit we granted the peer that it has not used.
    pub session_recv_credit: u32,
    /// DATA payload bytes sent / received.
    pub bytes_sent: u64,
    /// DATA payload bytes received.
    pub bytes_received: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Latest round-trip time measured by PING.
    pub rtt: Option<Duration>,
    /// Closed ids remembered (bounded by `closed_stream_memory`).
    pub remembered_closed: usize,
    /// RESETs braid generated for the peer's faults, net of the accepted-stream allowance.
    pub local_resets: u32,
    /// Streams the peer reset while they waited in the accept backlog, not yet passed over
    /// by `accept` (spec §11 L17: tombstones, not counted in `backlog`).
    pub unaccepted_resets: u32,
    /// Empty frames received.
    pub empty_frames: u32,
    /// Streams we opened whose ACK has not arrived yet (spec §6.1).
    pub unacked_opens: u32,
}

/// Defences the core applied to the peer's streams, counted (cumulative, never reset) so the
/// runtime can log them without the core doing any logging: it compares them with what it saw
/// last. Bumped only on the refusal and timeout paths, never per frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "tracing"), allow(dead_code))] // read only by the runtime's log
pub(crate) struct Defences {
    /// SYNs refused with REFUSED_STREAM at `max_inbound_streams` (spec §11 L4, §10 V28).
    pub(crate) refused_at_limit: u64,
    /// SYNs refused with REFUSED_STREAM above our GOAWAY's last_stream_id (§8.2, §10 V28).
    pub(crate) refused_after_goaway: u64,
    /// SYNs refused with BACKLOG_FULL (L6, V29).
    pub(crate) backlog_full: u64,
    /// Our opens reset with TIMEOUT for want of the peer's ACK (L12).
    pub(crate) open_timeouts: u64,
    /// Dropped, finished streams reset with TIMEOUT for want of the peer's FIN (L14).
    pub(crate) linger_timeouts: u64,
    /// The id of the last stream counted above.
    pub(crate) last_stream: u32,
}

/// The reasons of the `ENHANCE_YOUR_CALM` session errors, one per abuse counter (spec §11), so
/// the runtime's log can name the limit.
pub(crate) const TOO_MANY_LOCAL_RESETS: &str = "too many streams refused or reset";
/// L17, see [`TOO_MANY_LOCAL_RESETS`].
pub(crate) const TOO_MANY_UNACCEPTED_RESETS: &str = "too many streams reset before being accepted";
/// L19, see [`TOO_MANY_LOCAL_RESETS`].
pub(crate) const TOO_MANY_EMPTY_FRAMES: &str = "too many empty frames";

impl Core {
    /// Streams waiting in the accept backlog: its entries less the tombstones of streams the
    /// peer reset meanwhile (spec §6.1 step 5, §11 L6, L17).
    pub(crate) fn backlog_len(&self) -> usize {
        // Saturating: a failed session cleared the backlog but keeps the count, for the stats.
        self.backlog
            .len()
            .saturating_sub(self.unaccepted_resets as usize)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        Stats {
            open_streams: (self.inbound_live + self.outbound_live) as usize,
            inbound_streams: self.inbound_live as usize,
            outbound_streams: self.outbound_live as usize,
            tracked_streams: self.streams.len(),
            backlog: self.backlog_len(),
            recv_buffered: self.recv_buffered,
            send_buffered: self.send_buffered,
            session_send_credit: self.session_send_credit.get(),
            session_recv_credit: self.session_recv.peer_credit(),
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            frames_sent: self.frames_sent,
            frames_received: self.frames_received,
            rtt: self.ping.rtt,
            remembered_closed: self.closed.len(),
            local_resets: self.local_resets,
            unaccepted_resets: self.unaccepted_resets,
            empty_frames: self.empty_frames,
            unacked_opens: self.unacked_opens,
        }
    }

    /// All streams' receive-window growth above the initial window together (spec §7.4); at
    /// most `session_window - 16 × initial_stream_window`.
    pub fn window_growth(&self) -> u64 {
        self.window_growth
    }

    /// The receive side of stream `id` (bytes buffered for the application, the window the
    /// peer was promised), or `None` for a stream the core no longer tracks.
    pub fn stream_recv(&self, id: u32) -> Option<StreamRecv> {
        self.streams.get(&id).map(|s| StreamRecv {
            buffered: s.recv_buffered(),
            window: s.recv_window.size(),
        })
    }
}

/// What the runtime's log reads (feature `tracing`).
#[cfg(feature = "tracing")]
impl Core {
    /// The code of the last GOAWAY this end queued, if any ([`Core::goaway_queued`]: not
    /// framed yet). The runtime's log reads it.
    pub(crate) fn goaway_sent(&self) -> Option<crate::frame::ErrorCode> {
        self.goaway_sent
    }

    /// Whether a GOAWAY waits to be framed by [`Core::poll_transmit`].
    pub(crate) fn goaway_queued(&self) -> bool {
        self.goaway_out.is_some()
    }

    /// The peer's GOAWAY: its last stream id and code.
    pub(crate) fn goaway_received(&self) -> Option<(u32, crate::frame::ErrorCode)> {
        self.goaway_recv
    }

    /// What the defences refused or reset so far (the runtime's log compares turns).
    pub(crate) fn defences(&self) -> &Defences {
        &self.defences
    }

    /// Whether session credit waits for a spent memory budget (spec §7.6).
    pub(crate) fn budget_spent(&self) -> bool {
        self.budget_retry_at.is_some()
    }
}
