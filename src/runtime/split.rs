//! The transport, split into the driver's read half and the writer's write half, without a
//! lock a thread can block on.
//!
//! Both halves need `&mut T` for their calls, so they share it behind a mutex; but unlike
//! `tokio::io::split` (a blocking mutex held across each call), a half that finds the other
//! in the middle of a call does not wait for it: it registers its waker and returns
//! `Pending`, and the other half wakes it when it lets go. On a multi-thread runtime an
//! application task writing its frames inline (a 64 KiB `writev`) and the driver reading the
//! peer's window updates on the other worker used to meet on that mutex, and the loser's
//! thread slept in `futex` until the write returned: bulk-1 on the shared runtime made about
//! 9,000 futex calls per GiB and ran at 0.77x h2's rate. Here the loser's task just runs
//! again after the write.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::sync::{Arc, Mutex};

/// Which half is calling.
#[derive(Debug, Clone, Copy)]
enum Side {
    Read = 0,
    Write = 1,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Read => Side::Write,
            Side::Write => Side::Read,
        }
    }
}

struct Inner<T> {
    io: Mutex<T>,
    /// The waker of each half that found the transport taken (indexed by [`Side`]).
    waiting: Mutex<[Option<Waker>; 2]>,
    /// Whether `T` prefers vectored writes (asked once, at the split).
    vectored: bool,
}

impl<T: Unpin> Inner<T> {
    /// Runs `call` on the transport if the other half is not using it; otherwise registers
    /// `cx`'s waker to be woken when it is done and returns `Pending`.
    fn with<R>(
        &self,
        side: Side,
        cx: &mut Context<'_>,
        call: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let mut io = match self.io.try_lock() {
            Some(io) => io,
            None => {
                // Wake table P4.
                self.waiting.lock()[side as usize] = Some(cx.waker().clone());
                // The other half may have let go between the two tries (it wakes only
                // wakers registered before it did): try once more after registering.
                match self.io.try_lock() {
                    Some(io) => io,
                    None => return Poll::Pending,
                }
            }
        };
        let result = call(Pin::new(&mut *io), cx);
        drop(io);
        let other = self.waiting.lock()[side.other() as usize].take();
        if let Some(waker) = other {
            waker.wake();
        }
        result
    }
}

/// The read half (the driver's).
pub(crate) struct ReadHalf<T>(Arc<Inner<T>>);

/// The write half (the writer's).
pub(crate) struct WriteHalf<T>(Arc<Inner<T>>);

/// Splits `io` into halves usable from two tasks at once (see the module docs).
pub(crate) fn split<T: AsyncWrite>(io: T) -> (ReadHalf<T>, WriteHalf<T>) {
    let inner = Arc::new(Inner {
        vectored: io.is_write_vectored(),
        io: Mutex::new(io),
        waiting: Mutex::new([None, None]),
    });
    (ReadHalf(inner.clone()), WriteHalf(inner))
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadHalf<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.with(Side::Read, cx, |io, cx| io.poll_read(cx, buf))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteHalf<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0
            .with(Side::Write, cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0
            .with(Side::Write, cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.0.vectored
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.with(Side::Write, cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.with(Side::Write, cx, |io, cx| io.poll_shutdown(cx))
    }
}

#[cfg(all(test, not(braid_loom)))] // std threads; the loom model is in `runtime::loom_tests`
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc, Barrier,
        },
        task::Wake,
    };

    use super::*;

    /// A transport whose writes wait on two barriers inside the call (so the write half holds
    /// the transport meanwhile) and whose reads return one byte.
    struct SlowWrites {
        entered: Arc<Barrier>,
        release: Arc<Barrier>,
    }

    impl AsyncRead for SlowWrites {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            buf.put_slice(b"r");
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for SlowWrites {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.entered.wait();
            self.release.wait();
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_read_during_a_write_waits_without_blocking_and_is_woken_after_it() {
        let (entered, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let (mut rx, mut tx) = split(SlowWrites {
            entered: entered.clone(),
            release: release.clone(),
        });
        let writer = std::thread::spawn(move || {
            let mut cx = Context::from_waker(Waker::noop());
            Pin::new(&mut tx)
                .poll_write(&mut cx, b"w")
                .map(|r| r.unwrap())
        });
        entered.wait(); // the writer is inside its call, holding the transport
        let woken = Arc::new(CountingWaker::default());
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        assert!(
            Pin::new(&mut rx).poll_read(&mut cx, &mut buf).is_pending(),
            "the read neither blocked nor ran during the write"
        );
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        release.wait();
        assert_eq!(writer.join().unwrap(), Poll::Ready(1));
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the write's end woke the read"
        );
        assert!(Pin::new(&mut rx).poll_read(&mut cx, &mut buf).is_ready());
        assert_eq!(buf.filled(), b"r");
    }
}
