//! One stream's state: a send half and a receive half, each an enum named as spec §6.2 and
//! §6.3 name their states and carrying what that state needs (the FIN still owed, the ACK
//! still held, who reset the stream), beside the stream's buffers, windows and the wakers of
//! the tasks waiting on it. The transitions between the states are in `transitions.rs`.

use std::{task::Waker, time::Instant};

use super::buffer::ByteQueue;
use super::window::{Credit, RecvWindow};
use crate::{
    error::{Error, Side},
    frame::ErrorCode,
};

/// A FIN the send half owes the peer but has not written yet ("FIN pending", spec §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fin {
    /// None owed: the application may write.
    No,
    /// The application finished: the FIN goes out with the last buffered byte.
    Finish,
    /// The peer's STOP_SENDING(c): unsent bytes were discarded, an empty FIN is owed and
    /// writes fail with `stopped(c)`.
    Stop(ErrorCode),
}

/// An acceptor's ACK (spec §6.1) not yet on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckDue {
    /// Written, or this side opened the stream.
    No,
    /// Held for up to `ACK_DELAY` after the accept, to ride on the first DATA or FIN.
    Held,
    /// Goes out with the stream's next frame (the hold ran out).
    Now,
}

/// The send half, in spec §6.2's states ([`super::SendHalf`] is the public view).
///
/// ```text
///   Idle{opener} ── SYN written ──────────────► Open ── FIN written ──► Finished
///   Idle{acceptor} ── accept (ACK due) ────────►  │                        │
///     (FIN written with the SYN or ACK: straight to Finished)              │
///   Idle / Open ── RESET either way, session ends ──► Reset                │
///   Finished keeps its record when the session ends or a RESET goes either way (the
///   FIN was written: nothing of this half is left to fail; the public view reports a
///   RESET'd stream as Reset on both halves, as the spec's tables do).
/// ```
#[derive(Debug, Clone)]
pub(crate) enum SendState {
    /// Nothing of ours on the wire. `opener`: our SYN waits (writes and `finish` are
    /// buffered meanwhile); else the application has not accepted the stream (a STOP_SENDING
    /// received meanwhile is recorded in `fin`, and its FIN rides on the ACK, §6.2 \[C\]).
    Idle { opener: bool, fin: Fin },
    /// DATA may be sent. `fin`: FIN pending; `ack`: the acceptor's ACK not yet written.
    Open { fin: Fin, ack: AckDue },
    /// FIN written (terminal). `stopped`: that FIN answered the peer's STOP_SENDING(c), and
    /// writes fail with `stopped(c)`; otherwise they fail as finished.
    Finished { stopped: Option<ErrorCode> },
    /// Reset either way, or the session ended first (terminal): writes fail with `err`. `by`:
    /// who sent the RESET (an open or linger timeout, and a refusal by the peer's GOAWAY,
    /// count as ours, §6.6), or who ended the session.
    Reset { err: Error, by: Side },
}

/// The receive half, in spec §6.3's states ([`super::RecvHalf`] is the public view).
///
/// ```text
///   (opener)  SYN written       DATA+ACK              DATA+FIN
///   Idle ───────────► Opening ─────────► Open ──────────────────────────► Finished
///     └── stop reading ─┐ │ stop reading  │ stop reading                     ▲
///                       ▼ ▼               ▼                                  │
///         Stopping{acked: false} ─DATA+ACK─► Stopping{acked: true} ─ DATA+FIN ┘
///   (acceptor) recv DATA+SYN ──► Open (or Finished if FIN)
///   any but Finished ── RESET either way, open timeout, session ends ──► Reset
///   Finished ── RESET either way (send half still open) ──► Reset
/// ```
#[derive(Debug, Clone)]
pub(crate) enum RecvState {
    /// An opened stream whose SYN is not on the wire yet.
    Idle,
    /// Our SYN is on the wire; the peer's ACK has not arrived.
    Opening,
    /// DATA is accepted and buffered for the application.
    Open,
    /// We stopped reading with STOP_SENDING(`code`): DATA is discarded until the peer's FIN,
    /// reads fail. `acked`: the open is confirmed (always, on a stream the peer opened).
    Stopping { code: ErrorCode, acked: bool },
    /// The peer's FIN arrived (terminal). `stopped`: we had stopped reading with that code,
    /// so bytes were thrown away and reads fail; otherwise buffered bytes, then the end.
    Finished { stopped: Option<ErrorCode> },
    /// Reset either way, or the session ended first (terminal): reads fail with `err`;
    /// `by` as for [`SendState::Reset`].
    Reset { err: Error, by: Side },
}

/// The send half in a mask of stream halves ([`super::Core::release`]): the only definition,
/// used by the runtime's handles and the tests alike.
pub const HANDLE_SEND: u8 = 1;
/// The receive half in a mask of stream halves ([`super::Core::release`]).
pub const HANDLE_RECV: u8 = 2;

/// What [`Stream::abort`] released, for the session's totals.
#[derive(Debug, Default)]
pub(crate) struct Released {
    /// Unread bytes discarded (returned as session credit).
    pub(crate) unread: usize,
    /// The stream held one of the opener's unacknowledged-open slots (spec §6.1), now free.
    pub(crate) open_slot: bool,
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) send: SendState,
    pub(crate) recv: RecvState,
    /// Bytes written by the application and not yet framed.
    pub(crate) send_buf: Option<Box<ByteQueue>>,
    /// Credit the peer granted us on this stream.
    pub(crate) send_credit: Credit,
    /// Bytes received and not yet read by the application.
    pub(crate) recv_buf: Option<Box<ByteQueue>>,
    pub(crate) recv_window: RecvWindow,
    /// When the last stream WINDOW_UPDATE was granted, or the stream created (which grants
    /// the initial window): auto-tuning, spec §7.4.
    pub(crate) last_grant: Instant,
    /// A stream WINDOW_UPDATE was granted (`last_grant` is no longer the creation time).
    pub(crate) updated: bool,
    // Bookkeeping, not protocol state: which session totals and queues hold the stream.
    /// Counted in the live-stream totals (spec §6: until both directions ended).
    pub(crate) live: bool,
    pub(crate) in_send_queue: bool,
    pub(crate) in_update_queue: bool,
    /// Waits in the accept backlog (from its SYN until `poll_accept` takes it, the peer's
    /// RESET makes its entry a tombstone, or the session fails): kept in the table meanwhile
    /// even once closed, so the application still gets it, and its entry is not mistaken
    /// for a tombstone.
    pub(crate) in_backlog: bool,
    /// HANDLE_SEND | HANDLE_RECV.
    pub(crate) handles: u8,
    pub(crate) read_waker: Option<Waker>,
    pub(crate) write_waker: Option<Waker>,
    /// A task waiting for the send half to close ([`Core::poll_send_closed`]): its own slot,
    /// so it never takes the place of a writer waiting for room (a server's trailer write
    /// and a sender waiting on its source can be two tasks).
    ///
    /// [`Core::poll_send_closed`]: super::Core::poll_send_closed
    pub(crate) closed_waker: Option<Waker>,
}

impl Stream {
    fn new(now: Instant, send: SendState, recv: RecvState, credit: u32, window: u32) -> Stream {
        Stream {
            send,
            recv,
            send_buf: None,
            send_credit: Credit::new(credit).unwrap_or_default(),
            recv_buf: None,
            recv_window: RecvWindow::new(window),
            last_grant: now,
            updated: false,
            live: true,
            in_send_queue: false,
            in_update_queue: false,
            in_backlog: false,
            handles: 0,
            read_waker: None,
            write_waker: None,
            closed_waker: None,
        }
    }

    /// §6.2 "Idle (opener) × application opens": an id is used, the SYN waits to be written
    /// (§6.3: the receive half is Idle until then).
    pub(crate) fn opened(now: Instant, send_credit: u32, recv_window: u32) -> Stream {
        let send = SendState::Idle {
            opener: true,
            fin: Fin::No,
        };
        Stream::new(now, send, RecvState::Idle, send_credit, recv_window)
    }

    /// §6.3 "— (acceptor) × recv DATA+SYN": the receive half is Open, the send half Idle
    /// until the application accepts.
    pub(crate) fn from_syn(now: Instant, send_credit: u32, recv_window: u32) -> Stream {
        let send = SendState::Idle {
            opener: false,
            fin: Fin::No,
        };
        Stream::new(now, send, RecvState::Open, send_credit, recv_window)
    }

    /// How many bytes the application may queue now: the room left in this stream's send
    /// buffer of `cap` bytes, within the session's `session_room` (spec §11 L8, L9). An error
    /// once the send half no longer takes writes (spec §6.2).
    pub(crate) fn send_room(&self, cap: usize, session_room: usize) -> Result<usize, Error> {
        if let Some(err) = self.send_failed() {
            return Err(err);
        }
        match self.fin() {
            Some(Fin::No) => Ok(cap.saturating_sub(self.send_buffered()).min(session_room)),
            _ => Err(Error::Finished),
        }
    }

    /// The FIN decision of a send half whose FIN is not written yet (Idle or Open); `None`
    /// once Finished or Reset.
    #[inline]
    pub(crate) fn fin(&self) -> Option<Fin> {
        match self.send {
            SendState::Idle { fin, .. } | SendState::Open { fin, .. } => Some(fin),
            SendState::Finished { .. } | SendState::Reset { .. } => None,
        }
    }

    /// The error the send half ended with, if it was not a clean finish: reset either way
    /// (or the session ended), or stopped by the peer (§6.2: writes fail with `stopped(c)`
    /// from the STOP_SENDING on, and keep failing so after its FIN is written).
    pub(crate) fn send_failed(&self) -> Option<Error> {
        let stopped = match &self.send {
            SendState::Reset { err, .. } => return Some(err.clone()),
            SendState::Finished { stopped } => *stopped,
            _ => match self.fin() {
                Some(Fin::Stop(code)) => Some(code),
                _ => None,
            },
        };
        stopped.map(|code| Error::StreamStopped { code })
    }

    pub(crate) fn send_buffered(&self) -> usize {
        self.send_buf.as_ref().map_or(0, |b| b.len())
    }

    pub(crate) fn recv_buffered(&self) -> usize {
        self.recv_buf.as_ref().map_or(0, |b| b.len())
    }

    /// An opened stream whose SYN is not on the wire yet (§6.2 "Idle (opener)").
    #[inline]
    pub(crate) fn syn_pending(&self) -> bool {
        matches!(self.send, SendState::Idle { opener: true, .. })
    }

    /// A peer-opened stream the application has not accepted (§6.2 "Idle (acceptor)"): it
    /// waits in the accept backlog, and nothing but RESET may go out on it (§6.1).
    #[inline]
    pub(crate) fn unaccepted(&self) -> bool {
        matches!(self.send, SendState::Idle { opener: false, .. })
    }

    /// Our SYN is on the wire and the peer's ACK has not arrived (§6.3 "Opening", "Stopping
    /// (ACK not yet received)"): a frame without ACK is the peer's PROTOCOL_ERROR, and the
    /// open timeout runs.
    #[inline]
    pub(crate) fn awaiting_ack(&self) -> bool {
        !self.syn_pending()
            && matches!(
                self.recv,
                RecvState::Opening | RecvState::Stopping { acked: false, .. }
            )
    }

    /// The stream holds one of the opener's unacknowledged-open slots (§6.1): opened, not
    /// yet acknowledged, not reset.
    #[inline]
    pub(crate) fn holds_open_slot(&self) -> bool {
        matches!(
            self.recv,
            RecvState::Idle | RecvState::Opening | RecvState::Stopping { acked: false, .. }
        )
    }

    /// The receive half still reads DATA into its buffer (Idle, Opening and Open: nothing
    /// arrives before the ACK, so reads just wait).
    #[inline]
    pub(crate) fn recv_open(&self) -> bool {
        matches!(
            self.recv,
            RecvState::Idle | RecvState::Opening | RecvState::Open
        )
    }

    /// The receive half checks arriving DATA against its window (§7.1): it takes DATA, or
    /// discards it while stopped (V22).
    #[inline]
    pub(crate) fn recv_windowed(&self) -> bool {
        self.recv_open() || matches!(self.recv, RecvState::Stopping { .. })
    }

    /// The send half takes writes and has no FIN decided (a dropped handle then resets the
    /// stream, §6.5).
    #[inline]
    pub(crate) fn send_unfinished(&self) -> bool {
        self.fin() == Some(Fin::No)
    }

    /// The send half's FIN is written or it was reset: nothing more of it goes out, and
    /// WINDOW_UPDATEs are ignored (§6.2, V27).
    #[inline]
    pub(crate) fn send_ended(&self) -> bool {
        matches!(
            self.send,
            SendState::Finished { .. } | SendState::Reset { .. }
        )
    }

    /// The receive half was ended by us: reset by us (an application reset, an open or
    /// linger timeout, a refusal), or stopped and then finished. Late DATA is discarded
    /// unexamined (§6.3 "Reset (by us) × recv DATA", §6.6): an ACK crossing our RESET is no
    /// error.
    pub(crate) fn recv_ended_by_us(&self) -> bool {
        match &self.recv {
            RecvState::Reset { err, .. } => !matches!(
                err,
                Error::StreamReset {
                    by: Side::Remote,
                    ..
                }
            ),
            RecvState::Finished { stopped } => stopped.is_some(),
            _ => false,
        }
    }

    /// The receive half takes no more DATA into a window: late DATA counts at the session
    /// level only (§6.3), so its window's growth is free again (§7.4).
    pub(crate) fn recv_aborted(&self) -> bool {
        matches!(
            self.recv,
            RecvState::Reset { .. } | RecvState::Finished { stopped: Some(_) }
        )
    }

    /// Both directions ended on the wire (spec §6.3): the stream no longer counts as open.
    pub(crate) fn wire_closed(&self) -> bool {
        self.send_ended()
            && matches!(
                self.recv,
                RecvState::Finished { .. } | RecvState::Reset { .. }
            )
    }

    /// A SYN (opener) or ACK (acceptor, held or not) must lead the stream's next frame
    /// (spec §6.1).
    #[inline]
    pub(crate) fn open_flags_due(&self) -> bool {
        match self.send {
            SendState::Idle { opener, .. } => opener,
            SendState::Open { ack, .. } => ack != AckDue::No,
            _ => false,
        }
    }

    /// The acceptor's ACK is held for the first reply (spec §6.1).
    #[inline]
    pub(crate) fn ack_held(&self) -> bool {
        matches!(
            self.send,
            SendState::Open {
                ack: AckDue::Held,
                ..
            }
        )
    }

    /// Has a frame to send: SYN, ACK, a FIN, or data with enough credit. Data waits until
    /// the credit covers `min_chunk` bytes or all that is buffered, so a peer opening its
    /// window a byte at a time gets no tiny frames back (spec §7.4.1, like TCP's
    /// silly-window avoidance).
    pub(crate) fn wants_send(&self, min_chunk: u32) -> bool {
        let fin = match self.send {
            SendState::Idle { opener: true, .. }
            | SendState::Open {
                ack: AckDue::Now, ..
            } => return true,
            SendState::Open { fin, .. } => fin,
            _ => return false,
        };
        let buffered = self.send_buffered();
        let enough_credit =
            self.send_credit.get() as usize >= buffered.min(min_chunk as usize).max(1);
        match fin {
            Fin::No => buffered > 0 && enough_credit,
            Fin::Finish => buffered == 0 || enough_credit,
            Fin::Stop(_) => true,
        }
    }

    pub(crate) fn wake_read(&mut self, out: &mut Vec<Waker>) {
        if let Some(w) = self.read_waker.take() {
            out.push(w);
        }
    }

    pub(crate) fn wake_write(&mut self, out: &mut Vec<Waker>) {
        if let Some(w) = self.write_waker.take() {
            out.push(w);
        }
    }

    /// Wakes a task waiting for the send half to close (it left `Open`).
    pub(crate) fn wake_closed(&mut self, out: &mut Vec<Waker>) {
        if let Some(w) = self.closed_waker.take() {
            out.push(w);
        }
    }

    /// Moves every half not yet ended to Reset with `err` (§6.2, §6.3 "any × session
    /// closes", and the RESET rows through [`Stream::reset`]) and drops the buffers. A
    /// Finished half keeps its record: its direction completed.
    pub(crate) fn abort(&mut self, err: &Error, by: Side, wake: &mut Vec<Waker>) -> Released {
        let open_slot = self.holds_open_slot();
        if !self.send_ended() {
            self.send = SendState::Reset {
                err: err.clone(),
                by,
            };
        }
        if !matches!(
            self.recv,
            RecvState::Finished { .. } | RecvState::Reset { .. }
        ) {
            self.recv = RecvState::Reset {
                err: err.clone(),
                by,
            };
        }
        let unread = match self.recv {
            // A finished receive half keeps its bytes: the peer completed that direction.
            RecvState::Finished { stopped: None } => 0,
            _ => self.recv_buf.take().map_or(0, |mut b| b.clear()),
        };
        self.send_buf = None;
        self.wake_read(wake);
        self.wake_write(wake);
        self.wake_closed(wake);
        Released { unread, open_slot }
    }

    /// A RESET either way (spec §4.5): like [`Stream::abort`], but a finished receive half
    /// loses its unread bytes too — §6.3 "Finished (send half still open) × recv RESET",
    /// reads fail with the reset, both directions at once.
    pub(crate) fn reset(&mut self, err: &Error, by: Side, wake: &mut Vec<Waker>) -> Released {
        let mut released = self.abort(err, by, wake);
        if matches!(self.recv, RecvState::Finished { stopped: None }) {
            self.recv = RecvState::Reset {
                err: err.clone(),
                by,
            };
            released.unread += self.recv_buf.take().map_or(0, |mut b| b.clear());
        }
        released
    }
}

#[cfg(test)]
mod size_tests {
    /// Idle streams cost their state only (buffers are allocated when data flows): keep it
    /// small: the per-stream budget is 512 bytes for both ends together, so that 10,000
    /// idle streams stay cheap (`tests/hostile_memory.rs` measures the whole).
    #[test]
    fn stream_state_stays_small() {
        let size = std::mem::size_of::<super::Stream>();
        assert!(size <= 176, "Stream is {size} bytes");
    }
}
