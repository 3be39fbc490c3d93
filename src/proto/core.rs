//! The session state ([`Core`]) and the bookkeeping the other modules share: queueing a
//! stream to send, failing one, and freeing it once closed (spec §6.5). Each concern has its
//! own file: input in `input.rs` and `inbound.rs`, output in `outbound.rs`, per-stream
//! commands in `stream_ops.rs`, opening and accepting in `open_accept.rs`, the session's end
//! in `session_end.rs`, ping in `ping.rs`, timers in `timers.rs`, waiting tasks in
//! `waiters.rs`, counters in `stats.rs`.

use std::{
    collections::{HashMap, VecDeque},
    task::Waker,
    time::{Duration, Instant},
};

use super::{
    buffer::QueuePool,
    closed::{LateData, RecentlyClosed},
    ping::PingState,
    stats::Defences,
    stream::Stream,
    stream_ids::StreamIds,
    waiters::Waiters,
    window::{Credit, RecvWindow},
    IdBuildHasher,
};
use crate::{
    config::Config,
    error::{Error, Side},
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
    pub(super) ids: StreamIds,
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
            ids: StreamIds::new(role),
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
    #[inline]
    pub(crate) fn is_local_id(&self, id: u32) -> bool {
        self.ids.is_local(id)
    }

    /// Why the session ended, once it has.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Streams not yet closed, both directions (spec §6.5).
    #[inline]
    pub(crate) fn live_streams(&self) -> u32 {
        self.inbound_live + self.outbound_live
    }

    /// Makes the next locally opened id `next` (to reach the end of the id space, spec §5.1,
    /// without opening two billion streams): unit tests only.
    #[cfg(test)]
    pub(crate) fn set_next_local_id_for_tests(&mut self, next: u64) {
        self.ids.set_next_local(next);
    }

    // ----- bookkeeping shared by the modules -----

    /// Puts `id` on the send queue if it has something to send.
    pub(crate) fn schedule_send(&mut self, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id) {
            // Nothing but RESET may precede the ACK of an inbound stream (spec §6.1).
            if stream.unaccepted() {
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
    pub(crate) fn abort_stream(&mut self, id: u32, err: &Error, by: Side, reset: bool) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let unsent = stream.send_buffered();
        let released = if reset {
            stream.reset(err, by, &mut self.wake)
        } else {
            stream.abort(err, by, &mut self.wake)
        };
        let recv_aborted = stream.recv_aborted();
        self.send_buffered -= unsent;
        self.recv_buffered -= released.unread;
        self.bytes_consumed(released.unread);
        if released.open_slot {
            self.free_open_slot();
        }
        // Late DATA after an abort is counted at the session level only (§6.3), never
        // against this window: its growth is free again.
        if recv_aborted {
            self.release_window_growth(id);
        }
    }

    /// One of the opener's unacknowledged-open slots is free again (spec §6.1): waiting
    /// openers may go.
    fn free_open_slot(&mut self) {
        self.unacked_opens -= 1;
        self.open_waiters.drain_into(&mut self.wake);
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
            } else {
                self.inbound_live -= 1;
            }
            self.open_waiters.drain_into(&mut self.wake);
        }
        if !stream.live && stream.handles == 0 && !stream.in_backlog {
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
        // No stream is live: every one has ended both ways, and only wakes its waiters.
        for stream in self.streams.values_mut() {
            stream.abort(&err, by.0, &mut self.wake);
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

    /// Spec §5.1: the last id (2^32-1 for a client, 2^32-2 for a server)
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
