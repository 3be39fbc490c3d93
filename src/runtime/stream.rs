//! Stream handles: [`Stream`] (both directions), and its owned halves [`RecvStream`] and
//! [`SendStream`] for two tasks. Each call takes the session lock only for the core call it
//! makes; credit goes back to the peer whenever bytes are consumed, whoever polls.

use std::{
    future::poll_fn,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{now, shared::Shared};
use crate::{
    error::Error,
    frame::ErrorCode,
    proto::{HANDLE_RECV, HANDLE_SEND},
};

/// A bidirectional stream: tokio [`AsyncRead`] + [`AsyncWrite`].
///
/// * `shutdown()` sends FIN (half-close): the peer reads end-of-stream after every byte,
///   and this side keeps reading.
/// * A read returns `Ok(0)` only after the peer's FIN; a reset, a lost session or a
///   transport failure is an error, never a silent end.
/// * **Drop**: dropping a stream whose write side was not shut down **resets** it with
///   `CANCEL`, so the peer can't mistake a truncated stream for a complete one; bytes
///   written before a `shutdown()` are still delivered after a drop. Dropping a stream that
///   was not read to the end sends STOP_SENDING(`CANCEL`).
///
/// ```no_run
/// # async fn demo(session: braid::Session) -> Result<(), Box<dyn std::error::Error>> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let mut stream = session.open().await?;
/// stream.write_all(b"ping").await?;
/// stream.shutdown().await?;
/// let mut reply = String::new();
/// stream.read_to_string(&mut reply).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Stream {
    // Dropped first: an unfinished send half resets the whole stream in one frame.
    send: SendStream,
    recv: RecvStream,
}

/// The receiving half of a [`Stream`]: [`AsyncRead`], or chunks with [`RecvStream::recv`].
#[derive(Debug)]
pub struct RecvStream {
    shared: Arc<Shared>,
    id: u32,
}

/// The sending half of a [`Stream`]: [`AsyncWrite`], or owned chunks with
/// [`SendStream::send`].
#[derive(Debug)]
pub struct SendStream {
    shared: Arc<Shared>,
    id: u32,
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, id: u32) -> Stream {
        Stream {
            send: SendStream {
                shared: shared.clone(),
                id,
            },
            recv: RecvStream { shared, id },
        }
    }

    /// The stream id (odd: opened by the client, even: by the server).
    pub fn id(&self) -> u32 {
        self.send.id
    }

    /// Aborts both directions and sends RESET(`code`); the peer's reads and writes fail with
    /// an error naming the code.
    pub fn reset(&mut self, code: ErrorCode) {
        self.send.reset(code);
    }

    /// Sends FIN after the bytes written so far (same as `shutdown()`, without awaiting).
    pub fn finish(&mut self) -> Result<(), Error> {
        self.send.finish()
    }

    /// Asks the peer to stop sending (STOP_SENDING with `code`, spec §6.5) and discards what
    /// it sent and this side has not read; reads then fail with an error naming the code.
    /// This side's direction stays open: it may still write and finish.
    pub fn stop(&mut self, code: ErrorCode) {
        self.recv.stop(code);
    }

    /// Splits into owned halves, for one task reading and another writing.
    pub fn into_split(self) -> (RecvStream, SendStream) {
        (self.recv, self.send)
    }
}

impl RecvStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The next chunk of bytes, without copying. `Ok(None)` only after the peer's FIN.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| {
            let r = self
                .shared
                .with(|core| core.poll_recv_chunk(self.id, cx.waker(), usize::MAX));
            if r.is_pending() {
                // Waits in the stream's read slot (wake table P1). About to wait: put what we
                // (or others) queued on the wire ourselves.
                self.shared.flush_inline();
            }
            r
        })
        .await
    }

    /// Asks the peer to stop sending (STOP_SENDING); bytes not yet read are discarded.
    pub fn stop(&mut self, code: ErrorCode) {
        self.shared.with(|core| core.stop(self.id, code));
    }
}

impl SendStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Queues `bytes` for sending without copying; waits while the send buffer is full.
    /// Returns once every byte is queued (not when the peer has it).
    pub async fn send(&mut self, mut bytes: Bytes) -> Result<(), Error> {
        while !bytes.is_empty() {
            let n = poll_fn(|cx| self.poll_send(cx, &bytes)).await?;
            let _ = bytes.split_to(n);
        }
        Ok(())
    }

    /// Poll form of [`SendStream::send`]: queues a prefix of `bytes` without copying large
    /// chunks and returns how many bytes were taken; `Pending` (woken when there is room)
    /// while the stream's or the session's send buffer is full. For writing a `Sink` or a
    /// message layer on top of a stream.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, bytes: &Bytes) -> Poll<Result<usize, Error>> {
        let r = self
            .shared
            .with(|core| core.poll_write_bytes(self.id, cx.waker(), bytes));
        if r.is_pending() {
            self.shared.write_blocked(bytes.len());
        }
        r
    }

    /// `Ready` with the error a write would get once this half can send no more (the peer
    /// reset the stream or stopped reading, the session ended, or it was finished or reset
    /// here); `Pending` while it can, woken when that changes.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        self.shared
            .with(|core| core.poll_send_closed(self.id, cx.waker()))
    }

    /// Waits until this half can send no more and returns why: the peer stopped reading
    /// (`StreamStopped`) or reset the stream, the session ended, or this side finished
    /// ([`Error::Finished`]) or reset it. A producer with nothing to send yet can select on
    /// it to learn that the peer went away.
    ///
    /// ```no_run
    /// # async fn demo(mut tx: braid::SendStream) {
    /// let why = tx.closed().await;
    /// println!("stream {} can't send any more: {why}", tx.id());
    /// # }
    /// ```
    pub async fn closed(&mut self) -> Error {
        poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// Queues all of `parts` at once if the send buffers have room for every byte, else
    /// nothing (`Ok(false)`); never waits. A message layer's fast path for small records
    /// (a header and a body queued together or not at all, so a record is never split by a
    /// full buffer).
    pub fn try_write_all(&mut self, parts: &[&[u8]]) -> Result<bool, Error> {
        self.shared.with(|core| core.try_write_all(self.id, parts))
    }

    /// Sends FIN after the bytes queued so far (half-close). Idempotent.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.shared.with(|core| core.finish(self.id))
    }

    /// Aborts both directions of the stream with RESET(`code`).
    pub fn reset(&mut self, code: ErrorCode) {
        self.shared.with(|core| core.reset(self.id, code));
    }

    /// Waits until every byte queued so far has been handed to the transport.
    pub async fn flush_queued(&mut self) -> Result<(), Error> {
        self.shared.flush_requested();
        poll_fn(|cx| {
            self.shared
                .with(|core| core.poll_flush(self.id, cx.waker()))
        })
        .await
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        let id = self.id;
        self.shared
            .with(|core| core.release(now(), id, HANDLE_RECV));
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        let id = self.id;
        self.shared
            .with(|core| core.release(now(), id, HANDLE_SEND));
    }
}

impl AsyncRead for RecvStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let max = buf.remaining();
        if max == 0 {
            return Poll::Ready(Ok(()));
        }
        let id = self.id;
        let result = self
            .shared
            .with(|core| core.poll_recv_into(id, cx.waker(), max, |chunk| buf.put_slice(chunk)));
        match result {
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err.into())),
            Poll::Pending => {
                // In the stream's read slot (wake table P1). About to wait for the peer: put
                // our queued frames (a request we just wrote, window updates) on the wire
                // now, without a hop through the driver.
                self.shared.flush_inline();
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for SendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        if let Some(n) = self.shared.write_through(id, buf) {
            return Poll::Ready(Ok(n));
        }
        let r = self
            .shared
            .with(|core| core.poll_write(id, cx.waker(), buf));
        if r.is_pending() {
            self.shared.write_blocked(buf.len()); // send buffer full
        }
        r.map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        self.shared.flush_requested();
        self.shared
            .with(|core| core.poll_flush(id, cx.waker()))
            .map_err(Into::into)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = this.finish();
        this.shared.flush_inline();
        Poll::Ready(r.map_err(Into::into))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().send).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_shutdown(cx)
    }
}
