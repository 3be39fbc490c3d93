//! The driver: the one task that owns the transport. Each turn it reads whatever the
//! transport has into the core (unless the core asks to pause, spec §8.1 single-slot rule),
//! writes what the core has to send in one vectored write, and runs due timers. It never
//! waits on a stream's reader, and it keeps reading while its writes are blocked, so a peer
//! that doesn't read can't wedge the session (spec §12, "internal data buffering"; L13).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
    time::Instant,
};

use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::Sleep,
};
use tokio_util::io::poll_read_buf;

use super::{
    now,
    read_buffers::ReadBuffers,
    shared::{Shared, TransportPhase},
    split::ReadHalf,
    sync::{AtomicBool, AtomicWaker, Ordering},
    trace::SessionTrace,
    writer::Written,
};
use crate::{
    config::Config,
    error::TimeoutKind,
    proto::{Core, Input},
};

/// Room a transport read is given once reads come in full; a read goes ahead with at least
/// a quarter of it left before the buffer grows ([`ReadBuffers::make_room`]).
const READ_CHUNK: usize = 128 * 1024;
/// Room a read is given on a new or quiet session (spec §11 L23): a session that only ever
/// exchanges small messages holds a few KiB, not [`READ_CHUNK`]; the first read that fills
/// it moves the session up to `READ_CHUNK`.
const SMALL_READ: usize = 8 * 1024;
/// After a write fails, input is still read for up to this long (or until it ends) before
/// the session fails, so what the peer sent before closing is delivered (spec §8.3).
const WRITE_FAILURE_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Loop turns before the driver yields to the scheduler. Many turns (each up to a 512 KiB
/// write batch) let a busy driver hog a worker on a shared runtime; one turn costs round-trip
/// latency; 4 was the best trade on bulk, msgs and pingpong (figures: spec/DECISIONS.md).
const TURNS_PER_POLL: usize = 4;
/// Room for each read that discards input while a closed session drains (spec §8.3).
const DRAIN_CHUNK: usize = 16 * 1024;
/// Draining reads before the driver yields to the scheduler.
const DRAIN_READS_PER_POLL: usize = 64;

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
    read_buffers: ReadBuffers,
    input: Input,
    read_closed: bool,
    timer: Pin<Box<Sleep>>,
    write_timeout: std::time::Duration,
    wakers: Vec<Waker>,
    /// A write failed: the error, and until when input is still read (spec §8.3).
    write_failed: Option<(std::io::Error, Instant)>,
    /// The waker the transport's read side holds: it notes that the transport woke us.
    read_wake: Arc<ReadWake>,
    read_waker: Waker,
    /// The last read returned `Pending`: the transport holds `read_waker`.
    read_registered: bool,
    /// The last write left bytes (or a flush) for the transport's writability wake.
    write_blocked: bool,
    /// The last turn stopped before its work was done (the writer was taken, or the turn
    /// budget ran out): the next poll runs a full turn.
    must_turn: bool,
    /// The deadline `timer` was polled for (its waker registered), if any.
    timer_at: Option<Instant>,
    /// Room each read is given: [`SMALL_READ`] until a read fills it, then [`READ_CHUNK`].
    read_room: usize,
    /// [`Config::idle_release`].
    idle_release: Option<std::time::Duration>,
    /// When bytes last moved either way on the transport (as of the last turn).
    last_traffic: Instant,
    /// Bytes moved since `last_traffic` was set.
    traffic: bool,
    /// The buffers were given back since the last traffic (nothing more to release).
    released: bool,
    /// When the driver next checks whether the session has been quiet for `idle_release`.
    /// It moves only when reached, not with every turn's traffic: re-arming the timer on
    /// each turn cost pingpong 9 % CPU per round trip.
    release_check: Option<Instant>,
    /// How long an ended session drains input before closing ([`Config::close_drain_timeout`]).
    close_drain: std::time::Duration,
    /// The session has ended and its last frame is out: until when input is drained (spec
    /// §8.2, §8.3 step 3). The driver then only shuts the write side and reads.
    closing: Option<Instant>,
    done: bool,
    /// The session's span, entered for each poll, and what was logged of the core (feature
    /// `tracing`; zero-sized without it).
    trace: SessionTrace,
}

/// Wakes the driver's task and notes that the transport's read side did it, so a poll
/// can tell a read wake-up from one that only asks it to look at the core.
#[derive(Debug, Default)]
struct ReadWake {
    woke: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Wake table W5: the flag keeps the idle check from skipping the turn.
        self.woke.store(true, Ordering::Release);
        self.task.wake();
    }
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
    pub(crate) fn new(
        io: ReadHalf<T>,
        shared: Arc<Shared>,
        config: &Config,
        trace: SessionTrace,
    ) -> Driver<T> {
        let read_wake = Arc::new(ReadWake::default());
        Driver {
            read_waker: Waker::from(read_wake.clone()),
            read_wake,
            read_registered: false,
            write_blocked: false,
            must_turn: true,
            timer_at: None,
            io,
            shared,
            read_buf: BytesMut::new(),
            read_buffers: ReadBuffers::default(),
            input: Input::new(config),
            read_closed: false,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            write_timeout: config.write_timeout,
            wakers: Vec::new(),
            write_failed: None,
            close_drain: config.close_drain_timeout,
            read_room: SMALL_READ,
            idle_release: config.idle_release,
            last_traffic: now(),
            traffic: false,
            released: false,
            release_check: None,
            closing: None,
            done: false,
            trace,
        }
    }

    /// Reads once from the transport. Returns whether bytes (or EOF/error) arrived.
    fn poll_read_transport(&mut self) -> bool {
        let needed = self.input.bytes_needed(&self.read_buf);
        // Grow only when the spare room runs low (not once per small message), into a
        // recycled buffer when streams still hold frames of this one.
        self.read_buffers.make_room(
            &mut self.read_buf,
            needed.max(self.read_room / 4),
            needed.max(self.read_room),
        );
        let mut cx = Context::from_waker(&self.read_waker);
        match poll_read_buf(Pin::new(&mut self.io), &mut cx, &mut self.read_buf) {
            Poll::Pending => {
                self.read_registered = true;
                false
            }
            Poll::Ready(Ok(0)) => {
                self.read_closed = true;
                true
            }
            Poll::Ready(Ok(_)) => {
                self.traffic = true;
                if self.read_buf.len() == self.read_buf.capacity() {
                    self.read_room = READ_CHUNK; // reads come in full: a bulk transfer
                }
                true
            }
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
    /// reads no more, so a peer flooding us can't grow the buffer past one frame (spec §11, L7).
    fn input_ready(&self, handshake_done: bool) -> bool {
        self.input.holds_whole_unit(&self.read_buf, handshake_done)
    }

    /// Feeds buffered bytes to the core until they run out or the core pauses input.
    fn process_input(&mut self, core: &mut Core, now: Instant) {
        let eof = self.read_closed;
        core.handle_input(now, &mut self.input, &mut self.read_buf, eof);
    }

    fn wake_all(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Whether this poll can end at once: nothing woke the driver but a task asking it to
    /// look at the core (an application write it then put on the wire itself, say), and the
    /// core has nothing for it. Checked before a full turn, which costs several times more.
    /// Each condition is a row of the wake table (W1-W8) whose work would be skipped.
    fn idle_wake(&mut self, cx: &Context<'_>, read_woke: bool) -> bool {
        if read_woke
            || !self.read_registered
            || self.must_turn
            || self.write_blocked
            || self.read_closed
            || self.write_failed.is_some()
            || !self.read_buf.is_empty()
        {
            return false;
        }
        if self.timer_at.is_some_and(|t| t <= now()) {
            return false;
        }
        self.shared.idle_wake(cx.waker())
    }

    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let now = now();
        // Whether another turn is needed before waiting (bytes to process, more to send, a
        // timer due). What this turn read, it processes; what it filled, it writes.
        let mut again = false;
        self.must_turn = false;

        let (waker_changed, can_receive, handshake_done) = self.shared.start_turn(cx.waker());
        if waker_changed {
            self.timer_at = None; // the timer holds the old waker: poll it again
        }
        self.read_wake.task.register(cx.waker());
        self.read_registered = false;
        if can_receive && !self.read_closed && !self.input_ready(handshake_done) {
            // (With a whole frame buffered, it is processed below without reading more.)
            self.poll_read_transport();
        }

        let shared = self.shared.clone();
        let Some(mut writer) = shared.try_writer_for_driver() else {
            // An application task is writing its frames inline (a system call); it wakes
            // this task when it lets go (wake table P3, W4). Bytes read above wait in
            // `read_buf` until then.
            self.must_turn = true;
            return Poll::Pending;
        };
        let (deadline, finished, more_to_send, can_receive, handshake_done, ending) = {
            let mut inner = shared.inner.lock();
            let core = &mut inner.core;
            if can_receive && (!self.read_buf.is_empty() || self.read_closed) {
                self.process_input(core, now);
            }
            if core.poll_timeout().is_some_and(|t| t <= now) {
                core.handle_timeout(now);
            }
            writer.fill(core, now);
            self.note_traffic(now);
            if self.release_check.is_some_and(|at| at <= now) {
                self.release_check = None;
                if self.quiet_until().is_some_and(|at| at <= now) {
                    // Quiet for `idle_release`: give back what the busiest moment needed
                    // (spec §11 L23).
                    core.release_memory();
                    writer.release_memory();
                    self.release_read_buffers();
                }
                self.note_traffic(now); // arms the next check if traffic came meanwhile
            }
            core.drain_wakers(&mut self.wakers);
            self.trace.observe(core); // the log: GOAWAYs, defences, how the session ended
            let deadline = core.poll_timeout();
            inner.armed = deadline;
            (
                deadline,
                inner.core.is_finished(writer.tx.is_empty()),
                inner.core.wants_transmit(),
                inner.core.can_receive(),
                inner.core.handshake_done(),
                inner.core.error().is_some(),
            )
        };
        self.wake_all();

        if finished {
            return Poll::Ready(true); // `poll_close` takes it from here
        }

        let written = writer.write(cx, now);
        // Blocked: the transport holds our waker for writability (wake table W6).
        self.write_blocked = matches!(written, Written::Blocked { .. });
        if matches!(
            written,
            Written::Drained { wrote: true } | Written::Blocked { wrote: true }
        ) {
            self.traffic = true;
        }
        // Drained with more in the core than one batch: another turn sends the rest. An
        // ending session takes another turn to see that its last frames are out.
        again |= !self.write_blocked && (more_to_send || ending);
        if let Some(err) = writer.take_failure() {
            // Spec §8.3: a peer that closed after sending a GOAWAY, a status or a FIN makes our
            // writes fail, but its bytes are still in the socket: read them before failing.
            self.write_failed = Some((err, now + WRITE_FAILURE_DRAIN));
            again = true;
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
            again = true;
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

        if can_receive && !self.read_closed {
            if self.input_ready(handshake_done) {
                again = true; // a whole frame is still buffered
            } else if !self.read_registered {
                // This turn read bytes (or read nothing): read again now rather than in a
                // turn of its own, for more bytes or to leave our waker with the transport.
                again |= self.poll_read_transport();
            }
        }

        self.note_traffic(now);
        let drain_deadline = self.write_failed.as_ref().map(|(_, until)| *until);
        let next = [deadline, write_deadline, drain_deadline, self.release_check]
            .into_iter()
            .flatten()
            .min();
        // Wake table W7: the timer, with this task's waker, for the earliest deadline.
        if let Some(at) = next {
            let at_tokio = tokio::time::Instant::from_std(at);
            if self.timer.deadline() != at_tokio {
                self.timer.as_mut().reset(at_tokio);
                self.timer_at = None;
            }
            // A timer polled for this deadline holds our waker until it fires.
            if (self.timer_at != Some(at) || at <= now) && self.timer.as_mut().poll(cx).is_ready() {
                again = true;
                self.timer_at = None;
            } else {
                self.timer_at = Some(at);
            }
        } else {
            self.timer_at = None;
        }
        if again {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    }
}

impl<T> Driver<T> {
    /// When the session will have been quiet for `idle_release` (spec §11 L23), if it holds
    /// buffers to give back.
    fn quiet_until(&self) -> Option<Instant> {
        if self.released {
            return None;
        }
        self.idle_release.map(|after| self.last_traffic + after)
    }

    /// Restarts the quiet period if bytes moved since it last started, and makes sure a
    /// check is due when it could end.
    fn note_traffic(&mut self, now: Instant) {
        if std::mem::take(&mut self.traffic) {
            self.last_traffic = now;
            self.released = false;
        }
        if self.release_check.is_none() {
            self.release_check = self.quiet_until();
        }
    }

    /// Gives back the read buffers: the spares, and the current one unless it holds part of
    /// a frame; the next read starts small again.
    fn release_read_buffers(&mut self) {
        self.read_buffers.release();
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
        }
        self.read_room = SMALL_READ;
        self.released = true;
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    /// The lingering close (spec §8.2, §8.3 step 3, L22): once the session has ended and its
    /// last frame is handed to the transport, shut down the write side, then read and discard
    /// input until the peer's EOF or the drain deadline, and only then let the transport go.
    /// Closing a socket with unread input makes the kernel send a TCP RST, and a RST destroys
    /// whatever the peer has not read yet: our last replies, our FINs, our GOAWAY and its
    /// code. A peer that keeps reading sees our EOF once it has read everything, closes its
    /// side, and so ends the drain within a round trip.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let now = now();
        let until = *self.closing.get_or_insert(now + self.close_drain);
        let shared = self.shared.clone();
        if shared.inner.lock().transport < TransportPhase::WriteShut {
            let Some(mut writer) = shared.try_writer_for_driver() else {
                return Poll::Pending; // its holder wakes us when it lets go (wake table P3)
            };
            // A write already failed: the transport delivers nothing more, and the peer has
            // nothing left to read from us, so there is nothing to shut down or drain for.
            if writer.is_dead() {
                self.read_closed = true;
            } else if writer.poll_shutdown(cx).is_pending() && now < until {
                drop(writer);
                return self.wait_until(until, cx); // a TLS close_notify waiting to go out
            }
            writer.close();
            drop(writer);
            // Nothing more is processed: give the read buffers back now.
            self.read_buf.clear();
            self.release_read_buffers();
            shared.advance_transport(TransportPhase::WriteShut);
        }
        let mut scratch = [0u8; DRAIN_CHUNK];
        let mut reads = 0;
        while !self.read_closed && now < until {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => return self.wait_until(until, cx),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => self.read_closed = true,
                Poll::Ready(Ok(())) => {
                    reads += 1;
                    if reads == DRAIN_READS_PER_POLL {
                        // A peer still sending: let other tasks run, come back at once.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Poll::Ready(Err(_)) => self.read_closed = true,
            }
        }
        self.done = true;
        shared.advance_transport(TransportPhase::Closed);
        Poll::Ready(())
    }

    /// Arms the timer for `at` with this task's waker and returns `Pending`, or wakes the task
    /// at once if `at` has passed.
    fn wait_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let at_tokio = tokio::time::Instant::from_std(at);
        if self.timer.deadline() != at_tokio {
            self.timer.as_mut().reset(at_tokio);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<T> Drop for Driver<T> {
    /// A driver dropped before the session ended (its task aborted, its runtime shut down)
    /// fails the session, so no open, accept, read or write waits forever. It still tells the
    /// peer where it can: the GOAWAY (with any frames queued before it) is written once
    /// without waiting, and the write side shut down, so a program that returns from `main`
    /// right after dropping its last handle usually still ends the session cleanly.
    fn drop(&mut self) {
        let _span = self.trace.enter();
        let mut writer = self.shared.writer_blocking();
        if !self.done && self.closing.is_none() {
            let now = now();
            let wakers = {
                let mut inner = self.shared.inner.lock();
                inner
                    .core
                    .abandon(std::io::Error::other("session driver was dropped"));
                writer.fill(&mut inner.core, now);
                self.trace.observe(&inner.core);
                inner.core.take_wakers()
            };
            let mut cx = Context::from_waker(Waker::noop());
            if !writer.is_dead() {
                let _ = writer.write(&mut cx, now);
                let _ = writer.poll_shutdown(&mut cx);
            }
            for w in wakers {
                w.wake();
            }
        }
        writer.close();
        drop(writer);
        self.shared.advance_transport(TransportPhase::Closed);
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Driver<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        // Events of this poll carry the session's span (one branch when it is disabled).
        let _span = this.trace.enter();
        if this.closing.is_some() {
            return this.poll_close(cx);
        }
        let read_woke = this.read_wake.woke.swap(false, Ordering::AcqRel);
        if this.idle_wake(cx, read_woke) {
            return Poll::Pending;
        }
        for _ in 0..TURNS_PER_POLL {
            match this.poll_turn(cx) {
                Poll::Ready(true) => return this.poll_close(cx),
                Poll::Ready(false) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
        // Busy session: let other tasks run, come back at once (wake table W8).
        this.must_turn = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
