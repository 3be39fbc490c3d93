//! The transport's write half and the bytes queued for it. Whoever holds the writer lock
//! writes: the driver on each turn, or an application task about to wait (a read with nothing
//! buffered, a full send buffer, a flush), which then puts its frames on the wire itself
//! instead of waking the driver and waiting for it — one task hop less per message.
//!
//! Lock order: the writer lock first, then the session lock; never the other way round.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tokio::io::AsyncWrite;

use crate::proto::{Core, Transmit};

/// Bytes the core frames per batch before they are written.
pub(crate) const WRITE_BATCH: usize = 512 * 1024;
/// Vectored-write slices per call.
const MAX_SLICES: usize = 64;

/// What a write attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Nothing left to write.
    Drained { wrote: bool },
    /// The transport took what it could; the rest waits for writability (the waker passed
    /// to [`Writer::write`] is registered).
    Blocked { wrote: bool },
}

pub(crate) struct Writer {
    io: Box<dyn AsyncWrite + Send + Unpin>,
    pub(crate) tx: Transmit,
    /// Since when we have had bytes to write and the transport took none.
    pub(crate) stalled_since: Option<Instant>,
    /// The transport failed a write: later bytes are dropped unwritten.
    dead: bool,
    /// A flush returned `Pending` (a buffering transport, or the read half mid-call): the
    /// next write flushes even with nothing new queued, so no written byte stays buffered.
    flush_pending: bool,
    /// That failure, until the driver takes it ([`Writer::take_failure`]).
    failure: Option<io::Error>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &self.tx.len())
            .finish()
    }
}

impl Writer {
    pub(crate) fn new(io: Box<dyn AsyncWrite + Send + Unpin>) -> Writer {
        Writer {
            io,
            tx: Transmit::default(),
            stalled_since: None,
            dead: false,
            flush_pending: false,
            failure: None,
        }
    }

    /// Moves what the core has to send into the queue (up to a batch); the core applies the
    /// single-slot rule for forced replies to what this queue still holds (spec §8.1, L20).
    /// Returns whether anything is queued.
    pub(crate) fn fill(&mut self, core: &mut Core, now: Instant) -> bool {
        if self.dead {
            // A dead writer drops replies unwritten: input must go on (spec §8.3, V35).
            self.tx = Transmit::default();
        }
        if self.tx.len() < WRITE_BATCH && core.wants_transmit() {
            core.poll_transmit(now, &mut self.tx, WRITE_BATCH);
        }
        !self.tx.is_empty()
    }

    /// Writes queued bytes until the transport blocks or the queue is empty, then flushes.
    /// On an error the queue is dropped, the writer is dead (it drops what is queued later)
    /// and the error waits in [`Writer::take_failure`] for the driver, which decides when the
    /// session fails (spec §8.3: input the peer sent before closing is still read).
    pub(crate) fn write(&mut self, cx: &mut Context<'_>, now: Instant) -> Written {
        match self.try_write(cx, now) {
            Ok(written) => written,
            Err(err) => {
                self.fail(err);
                Written::Drained { wrote: false }
            }
        }
    }

    /// Whether an application write may go straight to the transport: nothing queued here
    /// (frames stay in order), the transport takes vectored writes (header and payload in
    /// one call), and it is neither failed, stalled nor waiting for a flush.
    pub(crate) fn can_write_through(&self) -> bool {
        self.tx.is_empty()
            && !self.dead
            && !self.flush_pending
            && self.stalled_since.is_none()
            && self.io.is_write_vectored()
    }

    /// Writes one frame, `head` then `body`, straight from the caller's buffer, as far as the
    /// transport takes it without waiting; whatever it leaves is copied into the queue for
    /// the driver (a frame is never cut short on the wire). Called only when
    /// [`Writer::can_write_through`]. Errors are handled as in [`Writer::write`].
    pub(crate) fn write_through(&mut self, head: &[u8], body: &[u8], now: Instant) -> Written {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let total = head.len() + body.len();
        let mut done = 0;
        while done < total {
            let result = if done < head.len() {
                let slices = [IoSlice::new(&head[done..]), IoSlice::new(body)];
                Pin::new(&mut self.io).poll_write_vectored(&mut cx, &slices)
            } else {
                Pin::new(&mut self.io).poll_write(&mut cx, &body[done - head.len()..])
            };
            match result {
                Poll::Ready(Ok(0)) => {
                    self.fail(io::ErrorKind::WriteZero.into());
                    return Written::Drained { wrote: done > 0 };
                }
                Poll::Ready(Ok(n)) => {
                    done += n;
                }
                Poll::Ready(Err(err)) => {
                    self.fail(err);
                    return Written::Drained { wrote: done > 0 };
                }
                Poll::Pending => break,
            }
        }
        if done < head.len() {
            self.tx.push_raw(&head[done..]);
        }
        let rest = &body[done.saturating_sub(head.len())..];
        if !rest.is_empty() {
            self.tx.push_payload(bytes::Bytes::copy_from_slice(rest));
        }
        if done < total {
            self.stalled_since.get_or_insert(now);
            return Written::Blocked { wrote: done > 0 };
        }
        self.stalled_since = None;
        // Transports that buffer (TLS, BufWriter) need a flush, as after any write.
        self.flush_pending = true;
        self.write(&mut cx, now)
    }

    /// The write failure not yet handed to the driver.
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failure.take()
    }

    /// A quiet session gives back what its busiest moment needed (spec §11 L23).
    pub(crate) fn release_memory(&mut self) {
        self.tx.release_memory();
    }

    /// Whether a write has failed: the transport takes nothing more.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Whether a failure is waiting for the driver.
    pub(crate) fn has_failure(&self) -> bool {
        self.failure.is_some()
    }

    fn try_write(&mut self, cx: &mut Context<'_>, now: Instant) -> io::Result<Written> {
        if self.dead {
            self.tx = Transmit::default();
            return Ok(Written::Drained { wrote: false });
        }
        let mut wrote = false;
        while !self.tx.is_empty() {
            let result = if let Some(bytes) = self.tx.contiguous() {
                Pin::new(&mut self.io).poll_write(cx, bytes)
            } else if self.io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let n = self.tx.io_slices(&mut slices);
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n])
            } else {
                let chunk = self.tx.first_chunk();
                Pin::new(&mut self.io).poll_write(cx, chunk)
            };
            match result {
                Poll::Pending => {
                    self.stalled_since.get_or_insert(now);
                    return Ok(Written::Blocked { wrote });
                }
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.tx.advance(n);
                    self.stalled_since = None;
                    wrote = true;
                }
                Poll::Ready(Err(err)) => return Err(err),
            }
        }
        if wrote || self.flush_pending {
            // Transports that buffer (TLS, BufWriter) need a flush.
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Pending => {
                    self.flush_pending = true;
                    return Ok(Written::Blocked { wrote });
                }
                Poll::Ready(Ok(())) => self.flush_pending = false,
            }
        }
        Ok(Written::Drained { wrote })
    }

    /// Drops the queue and everything queued later (the transport is gone or timed out).
    pub(crate) fn fail(&mut self, err: io::Error) {
        self.tx = Transmit::default();
        self.stalled_since = None;
        if !self.dead {
            self.dead = true;
            self.failure = Some(err);
        }
    }

    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    /// Lets go of the transport's write half, so that the transport closes once the driver
    /// drops the read half (handles may outlive the session; the transport must not).
    pub(crate) fn close(&mut self) {
        self.io = Box::new(tokio::io::sink());
        self.tx = Transmit::default();
        self.stalled_since = None;
    }
}
