//! The application's per-stream commands on the core: read (credit goes back as bytes are
//! consumed, spec §7.3), write into the bounded send buffers (spec §11 L8/L9), flush, finish
//! (FIN), reset (RESET), stop (STOP_SENDING) and release (a handle was dropped, spec §6.5).

use std::{
    task::{Poll, Waker},
    time::Instant,
};

use bytes::Bytes;

use super::{
    buffer::ByteQueue,
    closed::LateData,
    core::Core,
    stream::{Fin, RecvState, HANDLE_RECV, HANDLE_SEND},
};
use crate::{
    error::{Error, Side},
    frame::{ErrorCode, Frame},
};

/// Writes at least this large, copied from the caller's buffer ([`Core::poll_write`]), queue
/// only `LARGE_COPY_AHEAD` ahead of the wire while the stream's credit would let the
/// queued bytes go at once.
const LARGE_COPY_FROM: usize = 16 * 1024;

/// How far a large copied write may queue ahead of the wire while credit lets its bytes go
/// at once: one round-robin quantum. Past it the writer waits for its queue to drain (each
/// frame taken wakes it), and its next write finds the queue empty, so it can go straight
/// to the transport from the caller's buffer ([`Core::take_write_through`]) instead of
/// being copied. A deeper queue kept every write of a busy session on the copying path,
/// which cost bulk-100 throughput and CPU (spec/DECISIONS.md). Bytes that must wait for the
/// peer's credit anyway are queued up to the whole send buffer, so they go the moment a
/// WINDOW_UPDATE arrives.
const LARGE_COPY_AHEAD: usize = 64 * 1024;

impl Core {
    // ----- reading (spec §7.3: credit goes back as the application consumes) -----

    /// Copies received bytes into `dst`. `Ready(Ok(0))` only after the peer's FIN.
    pub fn poll_read(
        &mut self,
        id: u32,
        waker: &Waker,
        dst: &mut [u8],
    ) -> Poll<Result<usize, Error>> {
        self.poll_recv_with(id, waker, |buf| buf.read_into(dst))
            .map_ok(|n| n.unwrap_or(0))
    }

    /// Takes the next chunk of received bytes (at most `max`), without copying.
    /// `Ready(Ok(None))` only after the peer's FIN.
    pub fn poll_recv_chunk(
        &mut self,
        id: u32,
        waker: &Waker,
        max: usize,
    ) -> Poll<Result<Option<Bytes>, Error>> {
        self.poll_recv_with(id, waker, |buf| {
            // Non-empty buffer: `None` only for `max == 0`, which gets an empty chunk.
            buf.pop(max).unwrap_or_default()
        })
    }

    /// Hands received bytes, chunk by chunk without copying, to `sink` until `max` bytes
    /// were taken or nothing is buffered; returns how many. `Ready(Ok(0))` only after the
    /// peer's FIN (or for `max == 0`). One lock for what would be several chunk reads.
    pub fn poll_recv_into(
        &mut self,
        id: u32,
        waker: &Waker,
        max: usize,
        mut sink: impl FnMut(&[u8]),
    ) -> Poll<Result<usize, Error>> {
        self.poll_recv_with(id, waker, |buf| buf.take_into(max, &mut sink))
            .map_ok(|n| n.unwrap_or(0))
    }

    fn poll_recv_with<T, F>(
        &mut self,
        id: u32,
        waker: &Waker,
        take: F,
    ) -> Poll<Result<Option<T>, Error>>
    where
        F: FnOnce(&mut ByteQueue) -> T,
        T: Len,
    {
        let Some(stream) = self.streams.get_mut(&id) else {
            return Poll::Ready(Err(self.gone_error()));
        };
        if let Some(buf) = stream.recv_buf.as_mut().filter(|b| !b.is_empty()) {
            let out = take(buf);
            let n = out.len();
            if buf.is_empty() {
                if let Some(queue) = stream.recv_buf.take() {
                    self.queue_pool.put(queue);
                }
            }
            let update = stream.recv_open() && stream.recv_window.consume(n as u32);
            if update && !stream.in_update_queue {
                stream.in_update_queue = true;
                self.update_queue.push_back(id);
            }
            self.recv_buffered -= n;
            self.bytes_consumed(n);
            return Poll::Ready(Ok(Some(out)));
        }
        match &stream.recv {
            RecvState::Idle | RecvState::Opening | RecvState::Open => {
                stream.read_waker = Some(waker.clone());
                Poll::Pending
            }
            RecvState::Finished { stopped: None } => {
                // Every byte read and no more can come: the window's growth is free again.
                self.release_window_growth(id);
                Poll::Ready(Ok(None))
            }
            // Bytes were thrown away: never a clean end (§6.3).
            RecvState::Stopping { code, .. }
            | RecvState::Finished {
                stopped: Some(code),
            } => Poll::Ready(Err(Error::StreamReset {
                code: *code,
                by: Side::Local,
            })),
            RecvState::Reset { err, .. } => Poll::Ready(Err(err.clone())),
        }
    }

    /// Session credit for `n` bytes the application consumed or we discarded (spec §7.3).
    pub(crate) fn bytes_consumed(&mut self, n: usize) {
        self.session_recv.consume(n as u32);
        if let Some(share) = &mut self.budget {
            share.consumed(n as u64); // the budget's part goes back first (§7.6)
        }
    }

    fn gone_error(&self) -> Error {
        self.error.clone().unwrap_or(Error::StreamReset {
            code: ErrorCode::CANCEL,
            by: Side::Local,
        })
    }

    // ----- writing -----

    /// Buffers up to `data.len()` bytes for sending; `Pending` (waker registered) while the
    /// stream's or the session's send buffer is full (spec §11). A large write with credit to
    /// spare queues only one frame ahead (`LARGE_COPY_AHEAD`).
    pub fn poll_write(
        &mut self,
        id: u32,
        waker: &Waker,
        data: &[u8],
    ) -> Poll<Result<usize, Error>> {
        let large = data.len() >= LARGE_COPY_FROM;
        self.poll_write_with(id, waker, data.len(), large, |buf, n| {
            buf.push_slice(&data[..n])
        })
    }

    /// Like [`Core::poll_write`] for owned bytes: takes a prefix of `data` without copying
    /// large chunks, returns how many bytes were taken.
    pub fn poll_write_bytes(
        &mut self,
        id: u32,
        waker: &Waker,
        data: &Bytes,
    ) -> Poll<Result<usize, Error>> {
        self.poll_write_with(id, waker, data.len(), false, |buf, n| {
            buf.push(data.slice(..n))
        })
    }

    /// A stream's send-buffer size and the room left in the session's send buffer.
    fn send_caps(&self) -> (usize, usize) {
        let session = self.config.session_send_buffer as usize;
        (
            self.config.stream_send_buffer as usize,
            session.saturating_sub(self.send_buffered),
        )
    }

    fn poll_write_with<F>(
        &mut self,
        id: u32,
        waker: &Waker,
        len: usize,
        large_copy: bool,
        push: F,
    ) -> Poll<Result<usize, Error>>
    where
        F: FnOnce(&mut ByteQueue, usize),
    {
        let (mut cap, session_room) = self.send_caps();
        let session_credit = self.session_send_credit.get();
        let Some(stream) = self.streams.get_mut(&id) else {
            return Poll::Ready(Err(self.gone_error()));
        };
        if large_copy {
            let credit = stream.send_credit.get().min(session_credit) as usize;
            if credit > stream.send_buffered() {
                cap = cap.min(LARGE_COPY_AHEAD);
            }
        }
        let room = match stream.send_room(cap, session_room) {
            Ok(room) => room,
            Err(err) => return Poll::Ready(Err(err)),
        };
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        let n = len.min(room);
        if n == 0 {
            stream.write_waker = Some(waker.clone());
            if session_room == 0 {
                self.send_room_waiters.register(waker);
            }
            return Poll::Pending;
        }
        let pool = &mut self.queue_pool;
        push(stream.send_buf.get_or_insert_with(|| pool.take()), n);
        self.send_buffered += n;
        self.schedule_send(id);
        Poll::Ready(Ok(n))
    }

    /// Queues every byte of `parts` (copied, back to back) if both send buffers have room
    /// for all of them, else queues nothing and returns `Ok(false)` without registering a
    /// waker. A small record written this way is never split by a partial write, and costs
    /// one call.
    pub fn try_write_all(&mut self, id: u32, parts: &[&[u8]]) -> Result<bool, Error> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let (cap, session_room) = self.send_caps();
        let Some(stream) = self.streams.get_mut(&id) else {
            return Err(self.gone_error());
        };
        if total > stream.send_room(cap, session_room)? {
            return Ok(false);
        }
        if total == 0 {
            return Ok(true);
        }
        let pool = &mut self.queue_pool;
        let buf = stream.send_buf.get_or_insert_with(|| pool.take());
        parts.iter().for_each(|p| buf.push_slice(p));
        self.send_buffered += total;
        self.schedule_send(id);
        Ok(true)
    }

    /// `Ready` once every byte written so far, and the FIN after `finish`, has been framed
    /// for the transport.
    pub fn poll_flush(&mut self, id: u32, waker: &Waker) -> Poll<Result<(), Error>> {
        let Some(stream) = self.streams.get_mut(&id) else {
            return Poll::Ready(Err(self.gone_error()));
        };
        if let Some(err) = stream.send_failed() {
            return Poll::Ready(Err(err));
        }
        // After `finish`, flushed means the FIN is framed too: an application that flushes
        // and then closes the session must not have its FIN cancelled (§8.3).
        if stream.fin() != Some(Fin::Finish) && stream.send_buffered() == 0 {
            return Poll::Ready(Ok(()));
        }
        stream.write_waker = Some(waker.clone());
        Poll::Pending
    }

    /// `Ready` with the error a write would get once the send half can take no more bytes
    /// (finished, stopped or reset by the peer, aborted with the session, or gone);
    /// `Pending`, with `waker` registered to be woken when that changes, while it still can.
    /// Lets a writer that is waiting for something else notice the stream's end.
    pub fn poll_send_closed(&mut self, id: u32, waker: &Waker) -> Poll<Error> {
        let (cap, session_room) = self.send_caps();
        let Some(stream) = self.streams.get_mut(&id) else {
            return Poll::Ready(self.gone_error());
        };
        match stream.send_room(cap, session_room) {
            Err(err) => Poll::Ready(err),
            Ok(_) => {
                stream.closed_waker = Some(waker.clone());
                Poll::Pending
            }
        }
    }

    /// Half-closes the send direction: FIN follows the buffered bytes (spec §6.2).
    /// Idempotent; fails only if the stream was aborted.
    pub fn finish(&mut self, id: u32) -> Result<(), Error> {
        let Some(stream) = self.streams.get_mut(&id) else {
            return Err(self.gone_error());
        };
        if stream.finish_send()? {
            stream.wake_closed(&mut self.wake);
            self.schedule_send(id);
        }
        Ok(())
    }

    /// Aborts both directions and tells the peer with RESET(`code`) (spec §4.5). Buffered
    /// bytes either way are dropped. No-op on a stream already closed.
    pub fn reset(&mut self, id: u32, code: ErrorCode) {
        self.reset_stream(
            id,
            code,
            Error::StreamReset {
                code,
                by: Side::Local,
            },
        );
    }

    pub(crate) fn reset_stream(&mut self, id: u32, code: ErrorCode, err: Error) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.wire_closed() {
            return;
        }
        let never_sent = stream.syn_pending();
        self.abort_stream(id, &err, Side::Local, true);
        // A queued STOP_SENDING is moot now, and must not go out without the SYN or ACK
        // it needs ahead of it (spec §6.1, §10 V16/V17): the RESET says it all.
        self.control
            .retain(|f| !matches!(f, Frame::StopSending { stream, .. } if *stream == id));
        if !never_sent {
            self.control.push_back(Frame::Reset { stream: id, code });
        }
        self.closed_how(id, LateData::Discard);
        self.after_change(id);
    }

    /// Tells the peer to stop sending (STOP_SENDING, spec §4.6); bytes buffered or still
    /// arriving are discarded. The send direction is unaffected.
    pub fn stop(&mut self, id: u32, code: ErrorCode) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let Ok(dropped) = stream.stop_reading(code) else {
            return; // ignored (the row is named in the error)
        };
        stream.wake_read(&mut self.wake);
        self.recv_buffered -= dropped;
        self.bytes_consumed(dropped);
        self.control
            .push_back(Frame::StopSending { stream: id, code });
    }

    /// The application dropped the handle(s) in `halves`: [`HANDLE_SEND`], [`HANDLE_RECV`] or
    /// both (`HANDLE_SEND | HANDLE_RECV`).
    /// An unfinished send half resets the stream with CANCEL (nothing is silently
    /// truncated); an unread receive half sends STOP_SENDING(CANCEL). The stream is freed
    /// once closed on the wire, or after `linger_timeout`.
    pub fn release(&mut self, now: Instant, id: u32, halves: u8) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.handles &= !halves;
        // Only the released halves' wakers: the other half may still be waiting.
        if halves & HANDLE_RECV != 0 {
            stream.read_waker = None;
        }
        if halves & HANDLE_SEND != 0 {
            stream.write_waker = None;
            stream.closed_waker = None;
        }
        let send_open = halves & HANDLE_SEND != 0 && stream.send_unfinished();
        let recv_open = halves & HANDLE_RECV != 0 && stream.recv_open();
        let no_handles = stream.handles == 0;
        if send_open {
            self.reset(id, ErrorCode::CANCEL);
        } else if recv_open {
            self.stop(id, ErrorCode::CANCEL);
        }
        if no_handles {
            if let Some(stream) = self.streams.get(&id) {
                if !stream.wire_closed() {
                    self.linger_timers
                        .push_back((now + self.config.linger_timeout, id));
                    self.compact_timers();
                }
            }
            self.after_change(id);
        }
    }
}

/// Length of what a receive call returned (bytes copied or a chunk).
trait Len {
    fn len(&self) -> usize;
}
impl Len for usize {
    fn len(&self) -> usize {
        *self
    }
}
impl Len for Bytes {
    fn len(&self) -> usize {
        Bytes::len(self)
    }
}
