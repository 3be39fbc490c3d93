//! A transport wrapper whose reads and writes can be made to fail on command, to test how a
//! session handles transport errors (as opposed to a clean EOF).
#![allow(dead_code)]

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Default)]
struct State {
    failed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// Wraps `T`; once [`Fault::trigger`] runs, every read and write fails with an error of
/// kind `ConnectionReset` (and tasks waiting on the pipe are woken to see it).
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
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing still closes the real pipe, so the far end sees the transport go away.
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
