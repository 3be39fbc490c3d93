//! The driver: the one task that owns the transport. Each turn it reads whatever the
//! transport has into the core (unless the core asks to pause, spec §8.1 single-slot rule),
//! writes what the core has to send in one vectored write, and runs due timers. It never
//! waits on a stream's reader, and it keeps reading while its writes are blocked, so a peer
//! that doesn't read can't wedge the session (hostile-peer row 22).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Instant,
};

use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::Sleep,
};
use tokio_util::io::poll_read_buf;

use super::{now, shared::Shared, split::ReadHalf, writer::Written};
use crate::{
    config::Config,
    error::TimeoutKind,
    frame::{Decoder, HEADER_LEN, PREFACE_LEN},
    proto::Core,
};

/// Bytes read per transport read.
const READ_CHUNK: usize = 128 * 1024;
/// After a write fails, input is still read for up to this long (or until it ends) before
/// the session fails, so what the peer sent before closing is delivered (spec §8.3).
const WRITE_FAILURE_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Loop turns before the driver yields to the scheduler. Measured: 32 turns (each up to a
/// 512 KiB write batch) let a busy driver hog a worker and doubled CPU per GiB on a shared
/// runtime; 1 turn cost round-trip latency; 4 is best of those on bulk, msgs and pingpong.
const TURNS_PER_POLL: usize = 4;

/// The future that runs a session's IO. [`crate::Session::client`] and
/// [`crate::Session::server`] spawn it; [`crate::Session::with_driver`] hands it to you to run
/// on the executor of your choice. It completes when the session has ended and the transport
/// is closed.
#[must_use = "the session does nothing unless its driver runs"]
pub struct Driver<T> {
    /// The transport's read half; the write half lives in the shared [`super::writer::Writer`].
    io: ReadHalf<T>,
    shared: Arc<Shared>,
    read_buf: BytesMut,
    decoder: Decoder,
    read_closed: bool,
    timer: Pin<Box<Sleep>>,
    write_timeout: std::time::Duration,
    wakers: Vec<Waker>,
    /// A write failed: the error, and until when input is still read (spec §8.3).
    write_failed: Option<(std::io::Error, Instant)>,
    done: bool,
}

impl<T> std::fmt::Debug for Driver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("read_buffered", &self.read_buf.len())
            .field("done", &self.done)
            .finish()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    pub(crate) fn new(io: ReadHalf<T>, shared: Arc<Shared>, config: &Config) -> Driver<T> {
        Driver {
            io,
            shared,
            read_buf: BytesMut::new(),
            decoder: Decoder::new(config.max_frame_payload),
            read_closed: false,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            write_timeout: config.write_timeout,
            wakers: Vec::new(),
            write_failed: None,
            done: false,
        }
    }

    /// Reads once from the transport. Returns whether bytes (or EOF/error) arrived.
    fn poll_read_transport(&mut self, cx: &mut Context<'_>) -> bool {
        let want = self.decoder.bytes_needed(&self.read_buf).max(READ_CHUNK);
        if self.read_buf.capacity() - self.read_buf.len() < want {
            self.read_buf.reserve(want);
        }
        match poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf) {
            Poll::Pending => false,
            Poll::Ready(Ok(0)) => {
                self.read_closed = true;
                true
            }
            Poll::Ready(Ok(_)) => true,
            Poll::Ready(Err(err)) => {
                self.read_closed = true;
                let mut inner = self.shared.inner.lock();
                inner.core.transport_failed(err);
                inner.core.drain_wakers(&mut self.wakers);
                true
            }
        }
    }

    /// Whether `read_buf` already holds a whole preface or frame for the core: then the driver
    /// reads no more, so a peer flooding us can't grow the buffer (spec §8.1, hostile row 1).
    fn input_ready(&self, handshake_done: bool) -> bool {
        let buf = &self.read_buf;
        if !handshake_done {
            return buf.len() >= PREFACE_LEN;
        }
        match self.decoder.pending_header() {
            Some(h) => !buf.is_empty() && buf.len() >= h.len as usize,
            None if buf.len() < HEADER_LEN => false,
            None => {
                let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                buf.len() - HEADER_LEN >= len
            }
        }
    }

    /// Feeds buffered bytes to the core until they run out or the core pauses input.
    fn process_input(&mut self, core: &mut Core, now: Instant) {
        if !core.handshake_done() {
            if self.read_buf.len() < PREFACE_LEN {
                if self.read_closed {
                    core.transport_closed(true);
                }
                return;
            }
            let mut preface = [0u8; PREFACE_LEN];
            preface.copy_from_slice(&self.read_buf.split_to(PREFACE_LEN));
            if core.handle_preface(&preface).is_err() {
                return;
            }
        }
        while core.can_receive() {
            match self.decoder.next_header(&mut self.read_buf) {
                Ok(Some(header)) => {
                    if core.check_header(&header).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(err) => return core.handle_decode_error(err),
            }
            match self.decoder.next_frame(&mut self.read_buf) {
                Ok(Some(frame)) => core.handle_frame(now, frame),
                Ok(None) => break,
                Err(err) => return core.handle_decode_error(err),
            }
        }
        if self.read_closed && core.can_receive() {
            core.transport_closed(!self.decoder.at_frame_boundary(&self.read_buf));
        }
    }

    fn wake_all(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let now = now();
        let mut progress = false;

        let (can_receive, handshake_done) = {
            let mut inner = self.shared.inner.lock();
            inner.driver_notified = false;
            if !inner
                .driver
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                inner.driver = Some(cx.waker().clone());
            }
            (inner.core.can_receive(), inner.core.handshake_done())
        };
        if can_receive && !self.read_closed {
            if self.input_ready(handshake_done) {
                progress = true; // processed below, without reading more
            } else {
                progress |= self.poll_read_transport(cx);
            }
        }

        let shared = self.shared.clone();
        let Some(mut writer) = shared.try_writer_for_driver() else {
            // An application task is writing its frames inline (a system call); it wakes
            // this task when it lets go. Bytes read above wait in `read_buf` until then.
            return Poll::Pending;
        };
        let (deadline, finished) = {
            let mut inner = shared.inner.lock();
            let core = &mut inner.core;
            if can_receive && (!self.read_buf.is_empty() || self.read_closed) {
                self.process_input(core, now);
            }
            if core.poll_timeout().is_some_and(|t| t <= now) {
                core.handle_timeout(now);
                progress = true;
            }
            writer.fill(core, now);
            core.drain_wakers(&mut self.wakers);
            let deadline = core.poll_timeout();
            inner.armed = deadline;
            (deadline, inner.core.is_finished(writer.tx.is_empty()))
        };
        self.wake_all();

        if finished {
            let _ = writer.poll_shutdown(cx);
            writer.close();
            return Poll::Ready(true);
        }

        let (Written::Drained { wrote } | Written::Blocked { wrote }) = writer.write(cx, now);
        progress |= wrote;
        if let Some(err) = writer.take_failure() {
            // Spec §8.3: a peer that closed after sending a GOAWAY, a status or a FIN makes our
            // writes fail, but its bytes are still in the socket: read them before failing.
            self.write_failed = Some((err, now + WRITE_FAILURE_DRAIN));
            progress = true;
        }
        if self
            .write_failed
            .as_ref()
            .is_some_and(|(_, until)| self.read_closed || *until <= now)
        {
            let (err, _) = self.write_failed.take().expect("checked");
            let mut inner = shared.inner.lock();
            inner.core.transport_failed(err);
            inner.core.drain_wakers(&mut self.wakers);
            progress = true;
        }

        let write_deadline = writer.stalled_since.map(|t| t + self.write_timeout);
        if write_deadline.is_some_and(|t| t <= now) {
            // The peer stopped reading: give up on the bytes, fail the session.
            writer.fail(std::io::ErrorKind::TimedOut.into());
            let _ = writer.take_failure(); // the core fails with the timeout itself
            let mut inner = shared.inner.lock();
            inner.core.timed_out(TimeoutKind::Write);
            inner.core.drain_wakers(&mut self.wakers);
            drop(inner);
            drop(writer);
            self.wake_all();
            return Poll::Ready(false);
        }
        drop(writer);
        self.wake_all();
        let drain_deadline = self.write_failed.as_ref().map(|(_, until)| *until);
        let next = [deadline, write_deadline, drain_deadline]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = next {
            let at = tokio::time::Instant::from_std(at);
            if self.timer.deadline() != at {
                self.timer.as_mut().reset(at);
            }
            if self.timer.as_mut().poll(cx).is_ready() {
                progress = true;
            }
        }
        if progress {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    }
}

impl<T> Drop for Driver<T> {
    /// A driver dropped before the session ended (its task aborted, its runtime shut down)
    /// fails the session, so no open, accept, read or write waits forever.
    fn drop(&mut self) {
        self.shared.writer_blocking().close();
        if self.done {
            return;
        }
        let wakers = {
            let mut inner = self.shared.inner.lock();
            inner
                .core
                .transport_failed(std::io::Error::other("session driver was dropped"));
            inner.core.take_wakers()
        };
        for w in wakers {
            w.wake();
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Driver<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        for _ in 0..TURNS_PER_POLL {
            match this.poll_turn(cx) {
                Poll::Ready(true) => {
                    this.done = true;
                    return Poll::Ready(());
                }
                Poll::Ready(false) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
        // Busy session: let other tasks run, come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
