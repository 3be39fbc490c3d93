//! A chaotic in-memory transport for stress tests: every read and write moves at most a
//! random 1..=`max_chunk` bytes, and at random returns `Pending` instead. A `Pending` never
//! loses the waker: it is handed to another thread (or, at random, to a tokio task that
//! yields first) which wakes it a little later, so any hang over this transport is the
//! session's, not the pipe's. Deterministic per seed, apart from thread timing.
//!
//! Unlike [`super::fault`] (which fails a transport on command), nothing here ever fails.
#![allow(dead_code)]

use std::{
    io::{self, IoSlice},
    pin::Pin,
    sync::mpsc,
    task::{Context, Poll, Waker},
};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use super::Rng;

/// How chaotic a [`ChaosIo`] is.
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    /// Largest number of bytes one read or write moves (at least 1).
    pub max_chunk: usize,
    /// Chance out of 1000 that a poll returns `Pending` (and has its waker woken later).
    pub pending_per_mille: u64,
    /// Whether the transport claims vectored writes (braid then writes header and payload
    /// in one call; each call still moves at most `max_chunk` bytes).
    pub vectored: bool,
}

/// One end of a chaotic pipe.
pub struct ChaosIo {
    inner: DuplexStream,
    rng: Rng,
    chaos: Chaos,
    scratch: Vec<u8>,
    wakers: mpsc::Sender<Waker>,
}

/// A pipe of `pipe_buf` bytes each way whose two ends are chaotic; each end draws from its
/// own generator seeded from `seed`.
pub fn chaos_pair(seed: u64, pipe_buf: usize, a: Chaos, b: Chaos) -> (ChaosIo, ChaosIo) {
    let (x, y) = tokio::io::duplex(pipe_buf);
    (
        ChaosIo::new(x, seed ^ 0xA5A5_0000_0000_0001, a),
        ChaosIo::new(y, seed ^ 0x5A5A_0000_0000_0003, b),
    )
}

impl ChaosIo {
    fn new(inner: DuplexStream, seed: u64, chaos: Chaos) -> ChaosIo {
        // The waking thread ends when both halves' senders are gone (the transport dropped).
        let (tx, rx) = mpsc::channel::<Waker>();
        std::thread::Builder::new()
            .name("chaos-waker".into())
            .spawn(move || {
                while let Ok(w) = rx.recv() {
                    std::thread::yield_now();
                    w.wake();
                }
            })
            .expect("spawn waker thread");
        ChaosIo {
            inner,
            rng: Rng(seed | 1),
            chaos: Chaos {
                max_chunk: chaos.max_chunk.max(1),
                ..chaos
            },
            scratch: vec![0; chaos.max_chunk.max(1)],
            wakers: tx,
        }
    }

    /// `true` (after arranging a later wake-up of `cx`'s waker) if this poll is to be `Pending`.
    fn stall(&mut self, cx: &Context<'_>) -> bool {
        if self.rng.below(1000) >= self.chaos.pending_per_mille {
            return false;
        }
        let waker = cx.waker().clone();
        if self.rng.below(2) == 0 {
            // From another OS thread.
            if let Err(mpsc::SendError(w)) = self.wakers.send(waker) {
                w.wake();
            }
        } else {
            // From another tokio task, a scheduler turn later.
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                waker.wake();
            });
        }
        true
    }

    fn chunk(&mut self) -> usize {
        1 + self.rng.below(self.chaos.max_chunk as u64) as usize
    }
}

impl AsyncRead for ChaosIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stall(cx) {
            return Poll::Pending;
        }
        let n = this.chunk().min(buf.remaining());
        let mut small = ReadBuf::new(&mut this.scratch[..n]);
        match Pin::new(&mut this.inner).poll_read(cx, &mut small) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(small.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for ChaosIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.stall(cx) {
            return Poll::Pending;
        }
        let n = this.chunk().min(buf.len());
        Pin::new(&mut this.inner).poll_write(cx, &buf[..n])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.stall(cx) {
            return Poll::Pending;
        }
        // Gather at most one chunk from the front of `bufs` (a short vectored write).
        let mut n = this.chunk();
        let mut flat = Vec::with_capacity(n);
        for b in bufs {
            if n == 0 {
                break;
            }
            let take = n.min(b.len());
            flat.extend_from_slice(&b[..take]);
            n -= take;
        }
        Pin::new(&mut this.inner).poll_write(cx, &flat)
    }

    fn is_write_vectored(&self) -> bool {
        self.chaos.vectored
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stall(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stall(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
