//! The session state, opening and accepting streams, and the session-wide commands (ping,
//! goaway, close, transport events). Per-stream commands live in `stream_ops.rs`, frame
//! handling in `inbound.rs`, frame production in `outbound.rs`, timers in `timers.rs`.

use std::{
    collections::{HashMap, VecDeque},
    task::{Poll, Waker},
    time::{Duration, Instant},
};

use bytes::Bytes;

use super::{
    buffer::QueuePool,
    closed::{LateData, RecentlyClosed},
    stream::{SendState, Stream, HANDLE_RECV, HANDLE_SEND},
    window::{Credit, RecvWindow},
    IdBuildHasher,
};
use crate::{
    config::Config,
    error::{Error, Side, TimeoutKind},
    frame::{ErrorCode, Frame, Preface},
};

/// How long an accepted stream's ACK may wait to ride on the application's first frame on
/// it (spec §6.1). Short against any open timeout; long enough for a handler that answers
/// at once.
pub const ACK_DELAY: Duration = Duration::from_millis(1);

/// Which end of the session this core is (spec §5: clients open odd ids, servers even).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens odd stream ids.
    Client,
    /// Opens even stream ids.
    Server,
}

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

/// A small set of wakers, deduplicated by `will_wake` (one entry per waiting task).
#[derive(Debug, Default)]
pub(crate) struct Waiters(Vec<Waker>);

impl Waiters {
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.0);
    }
}

#[derive(Debug, Default)]
pub(crate) struct PingState {
    /// Our PING to put on the wire.
    pub(crate) to_send: Option<u64>,
    /// Our PING on the wire: opaque and when it left.
    pub(crate) inflight: Option<(u64, Instant)>,
    pub(crate) next_opaque: u64,
    /// When the keepalive sends its next PING.
    pub(crate) next_keepalive: Option<Instant>,
    pub(crate) rtt: Option<Duration>,
    /// Completed round trips, so `ping()` callers can tell theirs finished.
    pub(crate) completed: u64,
    pub(crate) waiters: Waiters,
}

/// The IO-free protocol state of one session. See the [module docs](super).
#[derive(Debug)]
pub struct Core {
    pub(super) role: Role,
    pub(super) config: Config,
    /// When the session started (the peer's preface is due within the keepalive timeout).
    pub(super) started: Instant,
    /// Smallest DATA frame worth sending when more is buffered: a quarter of the peer's
    /// initial window, at most 4 KiB (set from the peer's preface).
    pub(super) min_chunk: u32,
    pub(super) peer: Option<Preface>,
    pub(super) preface_sent: bool,
    /// Boxed: the table then holds 16 bytes per slot, so its spare capacity (a hash table
    /// is 44-87 % full) costs little; an idle stream costs ~400 B both ends (§11, row 8).
    pub(super) streams: HashMap<u32, Box<Stream>, IdBuildHasher>,
    pub(super) next_local_id: u64,
    pub(super) last_peer_id: u32,
    pub(super) outbound_live: u32,
    pub(super) inbound_live: u32,
    pub(super) unacked_opens: u32,
    /// Ids of inbound streams waiting for `accept`, in arrival order. A stream the peer reset
    /// meanwhile stays as a tombstone (its id, no longer in `streams`) until `poll_accept`
    /// walks past it; `unaccepted_resets` counts them (spec §11 L17).
    pub(super) backlog: VecDeque<u32>,
    pub(super) send_queue: VecDeque<u32>,
    pub(super) update_queue: VecDeque<u32>,
    /// RESET and STOP_SENDING frames to send.
    pub(super) control: VecDeque<Frame>,
    /// Of `control`, replies the peer forced (refusals): while any is unsent we stop reading.
    pub(super) forced_replies: usize,
    pub(super) pong: Option<u64>,
    pub(super) ping: PingState,
    pub(super) goaway_out: Option<Frame>,
    pub(super) goaway_sent: Option<ErrorCode>,
    /// The last_stream_id of the GOAWAYs sent so far (spec §8.2: it never increases).
    pub(super) goaway_last: Option<u32>,
    pub(super) goaway_recv: Option<(u32, ErrorCode)>,
    /// Why the session ended; set once.
    pub(super) error: Option<Error>,
    pub(super) session_send_credit: Credit,
    /// The send queue's head waits for session credit (a WINDOW_UPDATE(0)): until it comes
    /// or new work is queued, the send queue gives the driver nothing to do. Without it a
    /// peer that withholds session credit kept the driver turning at full speed.
    pub(super) waiting_for_session_credit: bool,
    pub(super) session_recv: RecvWindow,
    /// This session's account with a shared memory budget, if any (spec §7.6).
    pub(super) budget: Option<super::BudgetShare>,
    /// A session update the budget could not cover is tried again then (§7.6).
    pub(super) budget_retry_at: Option<Instant>,
    /// The wait before the next retry (doubles while the budget stays spent).
    pub(super) budget_backoff: Duration,
    pub(super) recv_buffered: usize,
    pub(super) send_buffered: usize,
    /// Receive-window growth of all streams in the map together, within the growth budget
    /// `session_window - 16 * initial_stream_window` (spec §7.4, §7.5).
    pub(super) window_growth: u64,
    /// Which stream DATA arrived on lately: whether a stream shares the link (spec §7.4).
    pub(super) data_activity: super::activity::DataActivity,
    pub(super) closed: RecentlyClosed,
    pub(super) open_timers: VecDeque<(Instant, u32)>,
    pub(super) linger_timers: VecDeque<(Instant, u32)>,
    /// Accepted streams whose ACK waits to ride on their first frame, until when (§6.1).
    pub(super) ack_timers: VecDeque<(Instant, u32)>,
    pub(super) wake: Vec<Waker>,
    /// Empty byte queues for the next stream that receives or queues bytes.
    pub(super) queue_pool: QueuePool,
    pub(super) accept_waiters: Waiters,
    pub(super) open_waiters: Waiters,
    /// Writers waiting for room in the session send buffer (spec §11 L9).
    pub(super) send_room_waiters: Waiters,
    pub(super) local_resets: u32,
    pub(super) unaccepted_resets: u32,
    pub(super) empty_frames: u32,
    pub(super) bytes_sent: u64,
    pub(super) bytes_received: u64,
    pub(super) frames_sent: u64,
    pub(super) frames_received: u64,
    /// Streams refused or reset by a defence, for the runtime's log.
    pub(super) defences: Defences,
}

impl Core {
    /// A new session core. `config` must be valid ([`Config::validate`]).
    pub fn new(role: Role, config: Config, now: Instant) -> Core {
        let closed = RecentlyClosed::new(config.closed_stream_memory as usize);
        let session_recv = RecvWindow::new(config.session_window);
        let budget = (config.memory_budget.clone()).map(|b| {
            super::BudgetShare::new(b, config.session_window, config.initial_stream_window)
        });
        let ping = PingState {
            next_keepalive: config.keepalive_interval.map(|i| now + i),
            // The first PING goes out with the preface: it measures the RTT that window
            // auto-tuning needs (spec §7.4).
            to_send: Some(0),
            next_opaque: 1,
            ..PingState::default()
        };
        Core {
            role,
            config,
            started: now,
            min_chunk: 1,
            peer: None,
            preface_sent: false,
            streams: HashMap::default(),
            next_local_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            last_peer_id: 0,
            outbound_live: 0,
            inbound_live: 0,
            unacked_opens: 0,
            backlog: VecDeque::new(),
            send_queue: VecDeque::new(),
            update_queue: VecDeque::new(),
            control: VecDeque::new(),
            forced_replies: 0,
            pong: None,
            ping,
            goaway_out: None,
            goaway_sent: None,
            goaway_last: None,
            goaway_recv: None,
            error: None,
            session_send_credit: Credit::default(),
            waiting_for_session_credit: false,
            session_recv,
            budget,
            budget_retry_at: None,
            budget_backoff: super::budget::BUDGET_RETRY,
            recv_buffered: 0,
            send_buffered: 0,
            window_growth: 0,
            data_activity: Default::default(),
            closed,
            open_timers: VecDeque::new(),
            linger_timers: VecDeque::new(),
            ack_timers: VecDeque::new(),
            wake: Vec::new(),
            queue_pool: QueuePool::default(),
            accept_waiters: Waiters::default(),
            open_waiters: Waiters::default(),
            send_room_waiters: Waiters::default(),
            local_resets: 0,
            unaccepted_resets: 0,
            empty_frames: 0,
            bytes_sent: 0,
            bytes_received: 0,
            frames_sent: 0,
            frames_received: 0,
            defences: Defences::default(),
        }
    }

    /// This core's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The config this core runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether `id` is one this side opens (spec §5).
    pub(crate) fn is_local_id(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.role == Role::Client)
    }

    /// Why the session ended, once it has.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Wakers of tasks whose operation can make progress; wake them after releasing any lock.
    pub fn take_wakers(&mut self) -> Vec<Waker> {
        self.wake_send_room();
        if self.wake.is_empty() {
            return Vec::new(); // keeps the list's allocation for the next wakers
        }
        std::mem::take(&mut self.wake)
    }

    /// Like [`Core::take_wakers`], but one waker (the common case after a command) comes
    /// out on its own and the core keeps its list's allocation.
    pub(crate) fn take_wakers_few(&mut self) -> (Option<Waker>, Vec<Waker>) {
        self.wake_send_room();
        match self.wake.len() {
            0 => (None, Vec::new()),
            1 => (self.wake.pop(), Vec::new()),
            _ => (None, std::mem::take(&mut self.wake)),
        }
    }

    /// Moves pending wakers into `out` (keeps both allocations).
    pub fn drain_wakers(&mut self, out: &mut Vec<Waker>) {
        self.wake_send_room();
        out.append(&mut self.wake);
    }

    /// Writers blocked on a full session send buffer have nothing queued on their own stream,
    /// so no framing of theirs would wake them: wake them whenever there is room again.
    fn wake_send_room(&mut self) {
        if self.send_buffered < self.config.session_send_buffer as usize || self.error.is_some() {
            self.send_room_waiters.drain_into(&mut self.wake);
        }
    }

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

    // ----- opening and accepting (spec §6) -----

    /// Opens a stream if the limits allow, else registers `waker` and returns `Pending`
    /// (spec §6: at most the peer's `max_concurrent_streams` live and `accept_backlog`
    /// unacknowledged opens).
    pub fn poll_open(&mut self, now: Instant, waker: &Waker) -> Poll<Result<u32, Error>> {
        if let Some(err) = &self.error {
            return Poll::Ready(Err(err.clone()));
        }
        if self.goaway_sent.is_some() {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Local }));
        }
        if self.goaway_recv.is_some() {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Remote }));
        }
        let Some(peer) = self.peer else {
            self.open_waiters.register(waker);
            return Poll::Pending;
        };
        if self.next_local_id > u32::MAX as u64 {
            return Poll::Ready(Err(Error::StreamIdsExhausted));
        }
        let max_live = peer
            .max_concurrent_streams
            .min(self.config.max_outbound_streams);
        if self.outbound_live >= max_live || self.unacked_opens >= peer.accept_backlog {
            self.open_waiters.register(waker);
            return Poll::Pending;
        }
        let id = self.next_local_id as u32;
        self.next_local_id += 2;
        let mut stream = Stream::new(
            now,
            peer.initial_stream_window,
            self.config.initial_stream_window,
        );
        stream.syn_pending = true;
        stream.handles = HANDLE_SEND | HANDLE_RECV;
        self.streams.insert(id, Box::new(stream));
        self.outbound_live += 1;
        self.unacked_opens += 1;
        self.open_timers
            .push_back((now + self.config.open_timeout, id));
        self.compact_timers();
        self.schedule_send(id);
        Poll::Ready(Ok(id))
    }

    /// Takes the next inbound stream from the backlog, else registers `waker`. Ends with an
    /// error once no stream can arrive any more (GOAWAY either way, or the session ended).
    ///
    /// The stream's ACK is held for up to [`ACK_DELAY`] so that it rides on the first frame
    /// the application sends on it (spec §6.1): a reply right after the accept then costs
    /// one frame and one write, not two.
    pub fn poll_accept(&mut self, now: Instant, waker: &Waker) -> Poll<Result<u32, Error>> {
        while let Some(id) = self.backlog.pop_front() {
            let Some(stream) = self.streams.get_mut(&id) else {
                // The tombstone of a stream the peer reset while it waited: passed over, it
                // leaves the rapid-reset count (spec §11 L17).
                self.unaccepted_resets = self.unaccepted_resets.saturating_sub(1);
                continue;
            };
            stream.accepted = true;
            stream.handles = HANDLE_SEND | HANDLE_RECV;
            // The ACK goes out even if a STOP_SENDING already ended our send half: the FIN
            // then rides on it (spec §6.2).
            let live_send = !matches!(stream.send, SendState::Done | SendState::Aborted(_));
            if live_send {
                stream.ack_pending = true;
                stream.ack_held = true;
            }
            // Each stream the application takes earns back one locally generated reset
            // (spec §11 L16), so ordinary churn never trips that limit.
            self.local_resets = self.local_resets.saturating_sub(1);
            if live_send {
                self.ack_timers.push_back((now + ACK_DELAY, id));
                self.compact_timers();
                self.schedule_send(id); // queued at once only if it has data or a FIN
            }
            return Poll::Ready(Ok(id));
        }
        if let Some(err) = &self.error {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some((_, _)) = self.goaway_recv {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Remote }));
        }
        if self.goaway_sent.is_some() {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Local }));
        }
        self.accept_waiters.register(waker);
        Poll::Pending
    }

    // ----- session-wide commands -----

    /// Queues a PING (if none is in flight) and returns the number of round trips completed
    /// so far; the caller's round trip is done once [`Core::pings_completed`] exceeds it.
    pub fn send_ping(&mut self, now: Instant) -> u64 {
        if self.ping.inflight.is_none() && self.ping.to_send.is_none() {
            self.ping.to_send = Some(self.ping.next_opaque);
            self.ping.next_opaque += 1;
            let _ = now;
        }
        self.ping.completed
    }

    /// Round trips completed; registers `waker` to hear of the next one.
    pub fn poll_ping(&mut self, since: u64, waker: &Waker) -> Poll<Result<Duration, Error>> {
        if self.ping.completed > since {
            return Poll::Ready(Ok(self.ping.rtt.unwrap_or_default()));
        }
        if let Some(err) = &self.error {
            return Poll::Ready(Err(err.clone()));
        }
        self.ping.waiters.register(waker);
        Poll::Pending
    }

    /// Round trips completed so far.
    pub fn pings_completed(&self) -> u64 {
        self.ping.completed
    }

    /// Graceful shutdown (spec §8.2): GOAWAY(`code`), no new streams either way, open ones
    /// finish; the session ends when none is left.
    pub fn goaway(&mut self, code: ErrorCode) {
        if self.goaway_sent.is_some() || self.error.is_some() {
            return;
        }
        self.goaway_sent = Some(code);
        self.goaway_out = Some(Frame::GoAway {
            last_stream: self.goaway_last_stream(),
            code,
            debug: Bytes::new(),
        });
        self.open_waiters.drain_into(&mut self.wake);
        self.accept_waiters.drain_into(&mut self.wake);
        self.check_drained();
    }

    /// The last_stream_id for a GOAWAY: `last_peer_id`, but never above an earlier GOAWAY's
    /// (SYNs refused after our first GOAWAY still raise `last_peer_id`, spec §5.2, §8.2).
    fn goaway_last_stream(&mut self) -> u32 {
        let last = match self.goaway_last {
            Some(last) => last.min(self.last_peer_id),
            None => self.last_peer_id,
        };
        self.goaway_last = Some(last);
        last
    }

    /// Immediate close (spec §8.3): GOAWAY, every stream fails, the transport closes once
    /// the GOAWAY is written.
    pub fn close(&mut self) {
        let code = if self.inbound_live + self.outbound_live == 0 {
            ErrorCode::NO_ERROR
        } else {
            ErrorCode::CANCEL
        };
        self.fail(
            Error::SessionClosed {
                code,
                by: Side::Local,
                reason: None,
            },
            Some((code, "")),
        );
    }

    /// The runtime is giving up on the session without the peer's doing (its driver was
    /// dropped): like [`Core::close`], a GOAWAY (NO_ERROR if no stream is open, else CANCEL,
    /// spec §8.3) for whatever can still be written, but every stream and waiter fails with
    /// `err`, which says what happened.
    pub fn abandon(&mut self, err: std::io::Error) {
        let code = if self.inbound_live + self.outbound_live == 0 {
            ErrorCode::NO_ERROR
        } else {
            ErrorCode::CANCEL
        };
        self.fail(Error::io(err), Some((code, "session abandoned")));
    }

    /// Ends the session with `err`: GOAWAY(`goaway.0`) if given, every stream and waiter
    /// fails with `err`.
    pub(crate) fn fail(&mut self, err: Error, goaway: Option<(ErrorCode, &'static str)>) {
        if self.error.is_some() {
            return;
        }
        if let Some((code, reason)) = goaway {
            if self.goaway_sent.is_none() || code != ErrorCode::NO_ERROR {
                self.goaway_out = Some(Frame::GoAway {
                    last_stream: self.goaway_last_stream(),
                    code,
                    debug: Bytes::from_static(reason.as_bytes()),
                });
            }
            self.goaway_sent = Some(code);
        }
        self.error = Some(err.clone());
        if let Some(share) = &mut self.budget {
            share.release_all(); // nothing more arrives (§7.6)
        }
        let mut dropped = 0;
        for stream in self.streams.values_mut() {
            dropped += stream.abort(&err, &mut self.wake);
        }
        self.recv_buffered -= dropped;
        self.send_buffered = 0; // `abort` dropped every send buffer
        self.backlog.clear();
        self.send_queue.clear();
        self.update_queue.clear();
        self.control.clear();
        self.forced_replies = 0;
        self.pong = None;
        self.ping.to_send = None;
        self.open_waiters.drain_into(&mut self.wake);
        self.accept_waiters.drain_into(&mut self.wake);
        self.ping.waiters.drain_into(&mut self.wake);
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.after_change(id);
        }
    }

    /// The peer ended the transport (EOF). `mid_frame`: it stopped inside a frame.
    pub(crate) fn transport_closed(&mut self, mid_frame: bool) {
        if self.error.is_some() {
            return;
        }
        let graceful =
            !mid_frame && self.goaway_recv.is_some() && self.inbound_live + self.outbound_live == 0;
        let err = if graceful {
            let (_, code) = self.goaway_recv.expect("checked");
            Error::SessionClosed {
                code,
                by: Side::Remote,
                reason: None,
            }
        } else {
            let what = if mid_frame {
                "transport closed in the middle of a frame"
            } else {
                "transport closed by peer without GOAWAY"
            };
            Error::io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what))
        };
        self.fail(err, None);
    }

    /// The transport failed.
    pub fn transport_failed(&mut self, err: std::io::Error) {
        self.fail(Error::io(err), None);
    }

    /// A timer of the runtime's (write timeout) expired.
    pub fn timed_out(&mut self, kind: TimeoutKind) {
        // After a write timeout the transport takes nothing: no GOAWAY to queue behind it.
        let goaway = (kind != TimeoutKind::Write).then_some((ErrorCode::TIMEOUT, "timeout"));
        self.fail(Error::Timeout(kind), goaway);
    }

    /// The code of the last GOAWAY this end queued, if any ([`Core::goaway_queued`]: not
    /// framed yet). The runtime's log reads it.
    pub(crate) fn goaway_sent(&self) -> Option<ErrorCode> {
        self.goaway_sent
    }

    /// Whether a GOAWAY waits to be framed by [`Core::poll_transmit`].
    pub(crate) fn goaway_queued(&self) -> bool {
        self.goaway_out.is_some()
    }

    /// The peer's GOAWAY: its last stream id and code.
    pub(crate) fn goaway_received(&self) -> Option<(u32, ErrorCode)> {
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

    /// Streams not yet closed, both directions (spec §6.5).
    pub(crate) fn live_streams(&self) -> u32 {
        self.inbound_live + self.outbound_live
    }

    /// Makes the next locally opened id `next` (to reach the end of the id space, spec §5.1,
    /// without opening two billion streams): unit tests only.
    #[cfg(test)]
    pub(crate) fn set_next_local_id_for_tests(&mut self, next: u64) {
        self.next_local_id = next;
    }

    // ----- bookkeeping shared by the modules -----

    /// Puts `id` on the send queue if it has something to send.
    pub(crate) fn schedule_send(&mut self, id: u32) {
        let unaccepted = !self.is_local_id(id);
        if let Some(stream) = self.streams.get_mut(&id) {
            // Nothing but RESET may precede the ACK of an inbound stream (spec §6.1).
            if unaccepted && !stream.accepted {
                return;
            }
            if !stream.in_send_queue && stream.wants_send(self.min_chunk) {
                stream.in_send_queue = true;
                self.send_queue.push_back(id);
                self.waiting_for_session_credit = false; // new work may need no credit
            }
        }
    }

    /// Aborts stream `id` with `err` (`reset`: a RESET either way, which also drops a
    /// finished receive half's bytes) and keeps the session's byte counts in step: unread
    /// bytes are returned as session credit, unsent bytes leave the send-buffer total.
    /// O(1), so resets under churn don't rescan the stream table.
    pub(crate) fn abort_stream(&mut self, id: u32, err: &Error, reset: bool) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let unsent = stream.send_buffered();
        let unread = if reset {
            stream.reset(err, &mut self.wake)
        } else {
            stream.abort(err, &mut self.wake)
        };
        self.send_buffered -= unsent;
        self.recv_buffered -= unread;
        self.bytes_consumed(unread);
        // Late DATA after an abort is counted at the session level only (§6.3), never
        // against this window: its growth is free again.
        if matches!(
            self.streams.get(&id).map(|s| &s.recv),
            Some(super::stream::RecvState::Aborted(_))
        ) {
            self.release_window_growth(id);
        }
    }

    /// Stream `id` takes no more DATA and buffers none: its window's growth returns to the
    /// session's budget (spec §7.4), so streams that grew and then finished do not keep
    /// the next ones at the initial window. Idempotent.
    pub(crate) fn release_window_growth(&mut self, id: u32) {
        let initial = self.config.initial_stream_window;
        if let Some(stream) = self.streams.get_mut(&id) {
            let grown = stream.recv_window.give_back_growth(initial);
            self.window_growth -= u64::from(grown);
        }
    }

    pub(crate) fn closed_how(&mut self, id: u32, how: LateData) {
        if self.closed.get(id) != Some(LateData::Error) {
            self.closed.insert(id, how);
        }
    }

    /// Re-derives what follows from a stream's state change: live counts (spec §6.3),
    /// waking openers, and removal once closed on the wire with no handle left.
    pub(crate) fn after_change(&mut self, id: u32) {
        let local = self.is_local_id(id);
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.live && stream.wire_closed() {
            stream.live = false;
            if local {
                self.outbound_live -= 1;
                if !stream.acked {
                    stream.acked = true;
                    self.unacked_opens -= 1;
                }
            } else {
                self.inbound_live -= 1;
            }
            self.open_waiters.drain_into(&mut self.wake);
        }
        let in_backlog = !local && !stream.accepted;
        if !stream.live && stream.handles == 0 && !in_backlog {
            let stream = self.streams.remove(&id).expect("present");
            // Its growth returns to the budget (spec §7.4).
            self.window_growth -=
                u64::from(stream.recv_window.size() - self.config.initial_stream_window);
            let dropped = stream.recv_buffered();
            self.recv_buffered -= dropped;
            self.bytes_consumed(dropped);
            self.send_buffered -= stream.send_buffered();
            self.closed_how(id, LateData::Discard);
        }
        self.check_drained();
    }

    /// After a GOAWAY either way, the session ends once no stream is left (spec §8.2).
    pub(crate) fn check_drained(&mut self) {
        if self.error.is_some() || self.inbound_live + self.outbound_live != 0 {
            return;
        }
        let by = match (self.goaway_sent, self.goaway_recv) {
            (Some(code), _) if code == ErrorCode::NO_ERROR => (Side::Local, code),
            (_, Some((_, code))) if code == ErrorCode::NO_ERROR => (Side::Remote, code),
            _ => return,
        };
        self.error = Some(Error::SessionClosed {
            code: by.1,
            by: by.0,
            reason: None,
        });
        let err = self.error.clone().expect("just set");
        for stream in self.streams.values_mut() {
            stream.abort(&err, &mut self.wake);
        }
        self.open_waiters.drain_into(&mut self.wake);
        self.accept_waiters.drain_into(&mut self.wake);
        self.ping.waiters.drain_into(&mut self.wake);
    }

    /// Whether the session has ended and everything it had to say is on the wire: the
    /// runtime may close the transport.
    pub fn is_finished(&self, transmit_empty: bool) -> bool {
        self.error.is_some() && self.goaway_out.is_none() && transmit_empty
    }
}

#[cfg(test)]
mod id_space_tests {
    use std::task::{Poll, Waker};

    use super::{Core, Role};
    use crate::{Config, Error};

    /// Spec §5.1, hostile row 19: the last id (2^32-1 for a client, 2^32-2 for a server)
    /// opens; the next open fails locally with `StreamIdsExhausted`, and keeps failing, while
    /// the session itself goes on.
    #[test]
    fn the_last_stream_id_opens_and_the_next_open_fails_locally() {
        let now = std::time::Instant::now();
        let waker = Waker::noop();
        for (role, last) in [(Role::Client, u32::MAX), (Role::Server, u32::MAX - 1)] {
            let mut core = Core::new(role, Config::default(), now);
            core.handle_preface(&Config::default().preface().encode())
                .unwrap();
            core.set_next_local_id_for_tests(last as u64);
            match core.poll_open(now, waker) {
                Poll::Ready(Ok(id)) => assert_eq!(id, last, "{role:?}"),
                other => panic!("{role:?}: the last id must open, got {other:?}"),
            }
            for _ in 0..2 {
                match core.poll_open(now, waker) {
                    Poll::Ready(Err(Error::StreamIdsExhausted)) => {}
                    other => panic!("{role:?}: expected StreamIdsExhausted, got {other:?}"),
                }
            }
            assert!(core.error().is_none(), "the session itself is not failed");
            assert_eq!(core.stats().outbound_streams, 1);
        }
    }
}
