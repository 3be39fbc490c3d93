//! A transport wrapper whose reads and writes can be made to fail on command, to test how a
//! session handles transport errors (as opposed to a clean EOF).
#![allow(dead_code)]

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Default)]
struct State {
    failed: AtomicBool,
    /// Only writes fail (`BrokenPipe`), as after the peer closed its socket.
    writes_failed: AtomicBool,
    /// Writes that failed so far.
    failed_writes: AtomicUsize,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// Wraps `T`; once [`Fault::trigger`] runs, every read and write fails with an error of
/// kind `ConnectionReset` (after [`Fault::trigger_writes`], only writes fail) (and tasks waiting on the pipe are woken to see it).
pub struct FaultyIo<T> {
    inner: T,
    state: Arc<State>,
}

/// The switch of a [`FaultyIo`].
#[derive(Clone)]
pub struct Fault(Arc<State>);

impl Fault {
    /// From now on every read and write on the wrapped pipe fails.
    pub fn trigger(&self) {
        self.0.failed.store(true, Ordering::SeqCst);
        self.0.reader.wake();
        self.0.writer.wake();
    }
}

impl Fault {
    /// From now on every write fails with `BrokenPipe`; reads still work, as when the peer
    /// closed its socket after sending something.
    pub fn trigger_writes(&self) {
        self.0.writes_failed.store(true, Ordering::SeqCst);
        self.0.writer.wake();
    }

    /// How many writes have failed.
    pub fn failed_writes(&self) -> usize {
        self.0.failed_writes.load(Ordering::SeqCst)
    }
}

impl<T> FaultyIo<T> {
    pub fn new(inner: T) -> (FaultyIo<T>, Fault) {
        let state = Arc::new(State::default());
        (
            FaultyIo {
                inner,
                state: state.clone(),
            },
            Fault(state),
        )
    }

    fn check(&self) -> io::Result<()> {
        if self.state.failed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "injected transport fault",
            ))
        } else {
            Ok(())
        }
    }
}

impl<T> FaultyIo<T> {
    fn check_write(&self) -> io::Result<()> {
        let result = match self.check() {
            Ok(()) if self.state.writes_failed.load(Ordering::SeqCst) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "injected write fault",
            )),
            other => other,
        };
        if result.is_err() {
            self.state.failed_writes.fetch_add(1, Ordering::SeqCst);
        }
        result
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FaultyIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.reader.register(cx.waker());
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FaultyIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.state.writer.register(cx.waker());
        this.check_write()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_write()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing still closes the real pipe, so the far end sees the transport go away.
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
