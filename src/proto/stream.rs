//! One stream's state: a send half and a receive half with their own state machines
//! (spec §6), buffers, windows and the wakers of the tasks waiting on them.

use std::{task::Waker, time::Instant};

use super::buffer::ByteQueue;
use super::window::{Credit, RecvWindow};
use crate::{error::Error, frame::ErrorCode};

/// Send half (spec §6.2; [`super::SendHalf`] names its states as the spec does).
#[derive(Debug, Clone)]
pub(crate) enum SendState {
    /// The application may write.
    Open,
    /// `finish` was called; FIN goes out with the last buffered byte.
    Finishing,
    /// FIN is on the wire.
    Done,
    /// The peer sent STOP_SENDING: an empty FIN goes out, writes fail with the code.
    Stopping(ErrorCode),
    /// Reset either way, or stopped by the peer: writes fail with this error.
    Aborted(Error),
}

/// Receive half (spec §6.3; [`super::RecvHalf`] names its states as the spec does).
#[derive(Debug, Clone)]
pub(crate) enum RecvState {
    /// Bytes may arrive.
    Open,
    /// The peer's FIN arrived; buffered bytes then end-of-stream.
    Finished,
    /// We sent STOP_SENDING with this code: arriving bytes are discarded until the peer's
    /// FIN; reads fail (never a clean end: bytes were thrown away).
    Stopped(ErrorCode),
    /// Reset either way: reads fail with this error.
    Aborted(Error),
}

/// The send half in a mask of stream halves ([`super::Core::release`]): the only definition,
/// used by the runtime's handles and the tests alike.
pub const HANDLE_SEND: u8 = 1;
/// The receive half in a mask of stream halves ([`super::Core::release`]).
pub const HANDLE_RECV: u8 = 2;

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
    /// Local stream whose SYN is not on the wire yet.
    pub(crate) syn_pending: bool,
    /// Inbound stream accepted by the application whose ACK is not on the wire yet.
    pub(crate) ack_pending: bool,
    /// The pending ACK waits for the stream's first DATA or FIN, or its timer (spec §6.1).
    pub(crate) ack_held: bool,
    /// Local stream the peer acknowledged.
    pub(crate) acked: bool,
    /// Inbound stream the application took from the backlog.
    pub(crate) accepted: bool,
    /// Counted in the live-stream totals (spec §6: until both directions ended).
    pub(crate) live: bool,
    pub(crate) in_send_queue: bool,
    pub(crate) in_update_queue: bool,
    /// STOP_SENDING to send.
    pub(crate) stop_pending: Option<ErrorCode>,
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
    pub(crate) fn new(now: Instant, send_credit: u32, recv_window: u32) -> Stream {
        Stream {
            send: SendState::Open,
            recv: RecvState::Open,
            send_buf: None,
            send_credit: Credit::new(send_credit).unwrap_or_default(),
            recv_buf: None,
            recv_window: RecvWindow::new(recv_window),
            last_grant: now,
            updated: false,
            syn_pending: false,
            ack_pending: false,
            ack_held: false,
            acked: false,
            accepted: false,
            live: true,
            in_send_queue: false,
            in_update_queue: false,
            stop_pending: None,
            handles: 0,
            read_waker: None,
            write_waker: None,
            closed_waker: None,
        }
    }

    /// How many bytes the application may queue now: the room left in this stream's send
    /// buffer of `cap` bytes, within the session's `session_room` (spec §11 L8, L9). An error
    /// once the send half no longer takes writes (spec §6.2).
    pub(crate) fn send_room(&self, cap: usize, session_room: usize) -> Result<usize, Error> {
        match &self.send {
            SendState::Open => Ok(cap.saturating_sub(self.send_buffered()).min(session_room)),
            SendState::Aborted(err) => Err(err.clone()),
            SendState::Stopping(code) => Err(Error::StreamStopped { code: *code }),
            _ => Err(Error::Finished),
        }
    }

    pub(crate) fn send_buffered(&self) -> usize {
        self.send_buf.as_ref().map_or(0, |b| b.len())
    }

    pub(crate) fn recv_buffered(&self) -> usize {
        self.recv_buf.as_ref().map_or(0, |b| b.len())
    }

    /// Both directions ended on the wire (spec §6.3): the stream no longer counts as open.
    pub(crate) fn wire_closed(&self) -> bool {
        let send_done = matches!(self.send, SendState::Done | SendState::Aborted(_));
        let recv_done = matches!(self.recv, RecvState::Finished | RecvState::Aborted(_));
        send_done && recv_done
    }

    /// Has a frame to send: SYN, ACK, a FIN, or data with enough credit. Data waits until
    /// the credit covers `min_chunk` bytes or all that is buffered, so a peer opening its
    /// window a byte at a time gets no tiny frames back (spec §7.4.1, like TCP's
    /// silly-window avoidance).
    pub(crate) fn wants_send(&self, min_chunk: u32) -> bool {
        if self.syn_pending || (self.ack_pending && !self.ack_held) {
            return true;
        }
        let buffered = self.send_buffered();
        let enough_credit =
            self.send_credit.get() as usize >= buffered.min(min_chunk as usize).max(1);
        match self.send {
            SendState::Open => buffered > 0 && enough_credit,
            SendState::Finishing => buffered == 0 || enough_credit,
            SendState::Stopping(_) => true,
            SendState::Done | SendState::Aborted(_) => false,
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

    /// Aborts both halves with `err` (unless a half already ended cleanly) and drops the
    /// buffers. Returns the unread bytes discarded (to return as session credit).
    pub(crate) fn abort(&mut self, err: &Error, wake: &mut Vec<Waker>) -> usize {
        if matches!(
            self.send,
            SendState::Open | SendState::Finishing | SendState::Stopping(_)
        ) {
            self.send = SendState::Aborted(err.clone());
        }
        if matches!(self.recv, RecvState::Open | RecvState::Stopped(_)) {
            self.recv = RecvState::Aborted(err.clone());
        }
        let dropped_recv = match self.recv {
            // A finished receive half keeps its bytes: the peer completed that direction.
            RecvState::Finished => 0,
            _ => self.recv_buf.take().map_or(0, |mut b| b.clear()),
        };
        self.send_buf = None;
        self.syn_pending = false;
        self.ack_pending = false;
        self.stop_pending = None;
        self.wake_read(wake);
        self.wake_write(wake);
        self.wake_closed(wake);
        dropped_recv
    }

    /// A RESET either way (spec §4.5): like [`Stream::abort`], but a finished receive half
    /// loses its unread bytes too — reads fail with the reset, both directions at once.
    pub(crate) fn reset(&mut self, err: &Error, wake: &mut Vec<Waker>) -> usize {
        let mut dropped = self.abort(err, wake);
        if matches!(self.recv, RecvState::Finished) {
            self.recv = RecvState::Aborted(err.clone());
            dropped += self.recv_buf.take().map_or(0, |mut b| b.clear());
        }
        dropped
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
