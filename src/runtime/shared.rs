//! The state a session's handles and its driver share: the core behind one short-held lock,
//! and how to reach the driver.

use std::{
    ops::{Deref, DerefMut},
    task::{Context, Poll, Waker},
    time::Instant,
};

use super::{
    sync::{HandOverLock, Mutex, MutexGuard},
    writer::{Writer, Written},
};
use crate::proto::Core;

/// Application tasks write their own frames (see [`Shared::flush_inline`]) only while at
/// most this many streams are open. With one or two conversations, writing inline saves a
/// task hop per message (latency); with many, leaving the writes to the driver batches
/// their frames into far fewer system calls (the A/B that chose 4: spec/DECISIONS.md).
const INLINE_MAX_STREAMS: u32 = 4;

/// A write at least this large that finds its send buffer full leaves the session's frames
/// to the driver (woken when the earlier bytes were queued) instead of writing them inline
/// ([`Shared::write_blocked`]): such a sender is after throughput, not latency, and writing
/// itself only takes turns with the driver on the transport. bulk-1 (64 KiB writes) on a
/// shared 2-worker runtime, 20 interleaved pairs: +13 % MiB/s, -11 % CPU per GiB. Smaller
/// writes (messages) still write inline: their batch goes out one task hop sooner.
const LARGE_WRITE: usize = 16 * 1024;

/// Application writes at least this large go straight to the transport when the session
/// is quiet ([`Shared::write_through`]); smaller ones are copied into the send queue, where
/// the frames of many small writes are batched into one system call.
const WRITE_THROUGH_MIN: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) core: Core,
    /// The driver task, to wake when the core has frames to send or a new deadline.
    pub(crate) driver: Option<Waker>,
    /// The driver was woken and has not run since: no need to wake it again.
    pub(crate) driver_notified: bool,
    /// An application task writing inline left bytes in the writer (the transport blocked)
    /// or a failure: the driver's next poll takes a full turn to write or report them, even
    /// when the core has nothing new ([`Shared::hand_writer_to_driver`]).
    pub(crate) writer_handed_over: bool,
    /// The deadline the driver's timer is armed for.
    pub(crate) armed: Option<Instant>,
    /// How far the driver has taken the transport towards closing (spec §8.2, §8.3).
    pub(crate) transport: TransportPhase,
    /// Tasks in [`crate::Session::close`] or [`crate::Session::closed`], woken as the phase
    /// advances.
    pub(crate) close_waiters: Vec<Waker>,
}

/// Where the transport is on its way to closed, once the session has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TransportPhase {
    /// The driver still reads and writes (the session may have ended; its last frames may
    /// still be on their way out).
    Open,
    /// Our last frame is handed to the transport and its write side is shut down (or the
    /// attempt failed or timed out); input is read and discarded until the peer's EOF.
    WriteShut,
    /// The driver has finished; the transport is closed once it is dropped.
    Closed,
}

impl Inner {
    /// Whether the core has work for the driver: frames to send, a deadline earlier than the
    /// one its timer is armed for, or an error to end the session with.
    pub(crate) fn core_needs_driver(&self) -> bool {
        let earlier_deadline = match (self.core.poll_timeout(), self.armed) {
            (Some(want), Some(armed)) => want < armed,
            (Some(_), None) => true,
            _ => false,
        };
        earlier_deadline || self.core.wants_transmit() || self.core.error().is_some()
    }

    /// After an application task changed the core: the driver's waker if the core now has
    /// work for it and nobody woke it since its last poll (wake table W1, W2). Wake it after
    /// unlocking.
    pub(crate) fn notify_driver(&mut self) -> Option<Waker> {
        if !self.driver_notified && self.core_needs_driver() {
            self.driver_notified = true;
            self.driver.clone()
        } else {
            None
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// The transport's write half. Lock order: `writer`, then `inner`. Nobody waits for it:
    /// application tasks only try it ([`Shared::flush_inline`]), and the driver, finding it
    /// taken, asks to be woken when it is let go ([`Shared::try_writer_for_driver`]).
    writer: HandOverLock<Writer>,
    pub(crate) inner: Mutex<Inner>,
}

/// The writer lock, held; letting go wakes the driver if it found the lock taken.
pub(crate) struct WriterGuard<'a> {
    guard: Option<MutexGuard<'a, Writer>>,
    shared: &'a Shared,
}

impl Deref for WriterGuard<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        self.guard.as_ref().expect("held until drop")
    }
}

impl DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        self.guard.as_mut().expect("held until drop")
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        let guard = self.guard.take().expect("held until drop");
        // The driver found the lock taken and waits for it (wake table P3).
        if self.shared.writer.unlock(guard) {
            let driver = self.shared.inner.lock().driver.clone();
            if let Some(driver) = driver {
                driver.wake();
            }
        }
    }
}

impl Shared {
    pub(crate) fn new(core: Core, writer: Writer) -> Shared {
        Shared {
            writer: HandOverLock::new(writer),
            inner: Mutex::new(Inner {
                core,
                driver: None,
                driver_notified: false,
                writer_handed_over: false,
                armed: None,
                transport: TransportPhase::Open,
                close_waiters: Vec::new(),
            }),
        }
    }

    /// The writer lock if it is free.
    fn try_writer(&self) -> Option<WriterGuard<'_>> {
        self.writer.try_lock().map(|guard| WriterGuard {
            guard: Some(guard),
            shared: self,
        })
    }

    /// The writer lock for the driver: if an application task holds it (writing inline, a
    /// system call), `None`, and that task wakes the driver when it lets go, so the driver's
    /// thread never sleeps on the lock meanwhile.
    pub(crate) fn try_writer_for_driver(&self) -> Option<WriterGuard<'_>> {
        self.writer.try_lock_or_ask().map(|guard| WriterGuard {
            guard: Some(guard),
            shared: self,
        })
    }

    /// The writer lock, waiting for it if need be (closing, when nothing else runs).
    pub(crate) fn writer_blocking(&self) -> WriterGuard<'_> {
        WriterGuard {
            guard: Some(self.writer.lock()),
            shared: self,
        }
    }

    /// Called by an application task about to wait: if no one else is writing and the
    /// session is not busy ([`INLINE_MAX_STREAMS`]), it puts the core's pending frames on the
    /// wire itself rather than leaving them for the driver (one task hop, possibly across
    /// threads, less per message). It never waits: a transport that would block is handed
    /// back to the driver, which registers for writability.
    pub(crate) fn flush_inline(&self) {
        // On a current-thread runtime the driver runs on this very thread after the tasks
        // already queued: waking it costs no thread hop and lets it batch every task's frames
        // into one write, so leave the writing to it there.
        if tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        {
            return;
        }
        self.write_inline();
    }

    /// Called by an application task that asked for its bytes to be handed to the transport
    /// (`poll_flush`): writes the pending frames itself on every runtime flavour. On a
    /// current-thread runtime, leaving them to the driver would cost the caller a second
    /// wake-up per flush (the driver's write completing it), and tokio a scheduler pass
    /// with an extra `epoll_wait` when the caller is the `block_on` future.
    pub(crate) fn flush_requested(&self) {
        self.write_inline();
    }

    /// Writes the core's pending frames from the calling task, unless someone else holds the
    /// writer or the session is busy ([`INLINE_MAX_STREAMS`]); never waits.
    fn write_inline(&self) {
        let Some(mut writer) = self.try_writer() else {
            return; // the driver (or another task) is writing and will see our frames
        };
        let (mut wakers, queued, now) = {
            let mut inner = self.inner.lock();
            if inner.core.live_streams() > INLINE_MAX_STREAMS {
                return; // busy session: the driver batches everyone's frames
            }
            if writer.tx.is_empty() && !inner.core.wants_transmit() {
                return; // nothing to write (often: our frames went out already)
            }
            let now = super::now();
            let queued = writer.fill(&mut inner.core, now);
            let mut wakers = inner.core.take_wakers();
            // Framing can arm a deadline the driver's timer doesn't know (a PING's timeout, a
            // memory budget's retry, spec §7.6): the driver must re-arm, or nothing wakes the
            // session when it comes due (wake table W2).
            wakers.extend(inner.notify_driver());
            (wakers, queued, now)
        };
        let mut hand_to_driver = false;
        if queued {
            let mut cx = Context::from_waker(Waker::noop());
            // Blocked: the driver waits for writability. Failed: the driver decides when the
            // session fails (after reading what the peer sent before it closed).
            hand_to_driver = matches!(writer.write(&mut cx, now), Written::Blocked { .. })
                || writer.has_failure();
        }
        drop(writer);
        if hand_to_driver {
            wakers.extend(self.hand_writer_to_driver());
        }
        for w in wakers {
            w.wake();
        }
    }

    /// Puts the first bytes of an application write of `data` on stream `id` straight on
    /// the transport from the caller's buffer, as one DATA frame, when the session is quiet
    /// ([`crate::proto::Core::take_write_through`]) and no one else is writing; returns how
    /// many bytes it took, or `None` for the queued path. A bulk sender so skips the copy
    /// into the send queue and the allocation behind it, and its bytes go out without the
    /// driver, as on a plain socket. What the transport doesn't take at once is queued for
    /// the driver, which waits for writability.
    pub(crate) fn write_through(&self, id: u32, data: &[u8]) -> Option<usize> {
        if data.len() < WRITE_THROUGH_MIN {
            return None;
        }
        let mut writer = self.try_writer()?;
        if !writer.can_write_through() {
            return None;
        }
        let (header, now) = {
            let mut inner = self.inner.lock();
            let header = inner
                .core
                .take_write_through(id, data.len(), WRITE_THROUGH_MIN)?;
            (header, super::now())
        };
        let n = header.len as usize;
        let written = writer.write_through(&header.encode(), &data[..n], now);
        let hand_to_driver = matches!(written, Written::Blocked { .. }) || writer.has_failure();
        drop(writer);
        if hand_to_driver {
            if let Some(driver) = self.hand_writer_to_driver() {
                driver.wake();
            }
        }
        Some(n)
    }

    /// After an application task's inline write left bytes in the writer or failed (the
    /// writer lock let go): marks the writer as the driver's and returns the driver's waker,
    /// to be woken after unlocking. The mark makes the driver's next poll a full turn; a
    /// mere wake-up could find the core with nothing to send and skip it (`idle_wake`),
    /// leaving a frame half on the wire until something else woke the driver.
    fn hand_writer_to_driver(&self) -> Option<Waker> {
        let mut inner = self.inner.lock();
        inner.driver_notified = true;
        inner.writer_handed_over = true; // wake table W3
        inner.driver.clone()
    }

    /// The start of a driver turn: the driver's wake-ups so far are spent (a command from now
    /// on wakes it again, W1), a handed-over writer is about to be written (W3), and `waker`
    /// is the one to wake. Returns whether the waker changed (timers holding the old one must
    /// be polled again), whether the core takes input and whether its handshake is done.
    pub(crate) fn start_turn(&self, waker: &Waker) -> (bool, bool, bool) {
        let mut inner = self.inner.lock();
        inner.driver_notified = false;
        inner.writer_handed_over = false;
        let changed = !inner.driver.as_ref().is_some_and(|w| w.will_wake(waker));
        if changed {
            inner.driver = Some(waker.clone());
        }
        (
            changed,
            inner.core.can_receive(),
            inner.core.handshake_done(),
        )
    }

    /// The session-side half of the driver's idle check (`Driver::idle_wake`): whether the
    /// driver, woken with `waker` and nothing of its own to do, may end its poll without a
    /// turn. Not when the core has work for it (W1, W2), a writer was handed over (W3), input
    /// is paused (a turn must resume it) or its waker changed. Otherwise its wake-ups are
    /// spent: the next command wakes it again (W1).
    pub(crate) fn idle_wake(&self, waker: &Waker) -> bool {
        let mut inner = self.inner.lock();
        if inner.core_needs_driver()
            || inner.writer_handed_over
            || !inner.core.can_receive()
            || !inner.driver.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            return false;
        }
        inner.driver_notified = false;
        true
    }

    /// Called by an application task whose write of `len` bytes found its send buffer full:
    /// small writes drain it inline ([`Shared::flush_inline`]), large ones leave it to the
    /// driver ([`LARGE_WRITE`]).
    pub(crate) fn write_blocked(&self, len: usize) {
        if len < LARGE_WRITE {
            self.flush_inline();
        }
    }

    /// The driver moved the transport to `phase`: wakes the tasks waiting for it.
    pub(crate) fn advance_transport(&self, phase: TransportPhase) {
        let waiters = {
            let mut inner = self.inner.lock();
            if inner.transport >= phase {
                return;
            }
            inner.transport = phase;
            std::mem::take(&mut inner.close_waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Ready once the transport has reached `phase`; registers `waker` otherwise (wake
    /// table P2).
    pub(crate) fn poll_transport(&self, phase: TransportPhase, waker: &Waker) -> Poll<()> {
        let mut inner = self.inner.lock();
        if inner.transport >= phase {
            return Poll::Ready(());
        }
        if !inner.close_waiters.iter().any(|w| w.will_wake(waker)) {
            inner.close_waiters.push(waker.clone());
        }
        Poll::Pending
    }

    /// Runs an application command on the core, then (after unlocking) wakes the tasks it
    /// released (wake table P1) and the driver if there is something new to send or an
    /// earlier deadline (W1).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let (result, (waker, wakers), driver) = {
            let mut inner = self.inner.lock();
            let result = f(&mut inner.core);
            let wakers = inner.core.take_wakers_few();
            // A command with frames to send, an earlier deadline or an ended session (wake
            // table W1).
            let driver = inner.notify_driver();
            (result, wakers, driver)
        };
        if let Some(w) = waker {
            w.wake();
        }
        for w in wakers {
            w.wake();
        }
        if let Some(d) = driver {
            d.wake();
        }
        result
    }
}
