//! Large writes on a quiet session go straight from the caller's buffer to the transport
//! (no copy into the send queue, no driver hop); a transport that takes them only in part
//! still gets whole frames, in order, with every byte delivered.
mod support;

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use braid::{Config, Session};
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// A transport that takes vectored writes (as TCP does), at most `max_write` bytes per
/// call, and says "would block" on every `pending_every`-th call (waking the writer at
/// once, as a socket that drained would). Counts the bytes it took.
struct Vectored {
    inner: DuplexStream,
    max_write: usize,
    pending_every: usize,
    calls: usize,
    written: Arc<AtomicUsize>,
}

impl Vectored {
    fn new(
        inner: DuplexStream,
        max_write: usize,
        pending_every: usize,
    ) -> (Self, Arc<AtomicUsize>) {
        let written = Arc::new(AtomicUsize::new(0));
        let io = Vectored {
            inner,
            max_write,
            pending_every,
            calls: 0,
            written: written.clone(),
        };
        (io, written)
    }
}

impl AsyncRead for Vectored {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Vectored {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.calls += 1;
        if self.pending_every > 0 && self.calls % self.pending_every == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut joined = Vec::new();
        for b in bufs {
            let room = self.max_write - joined.len();
            joined.extend_from_slice(&b[..b.len().min(room)]);
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, &joined);
        if let Poll::Ready(Ok(n)) = r {
            self.written.fetch_add(n, Ordering::SeqCst);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A client session over a vectored transport on a `pipe`-byte duplex to an echo server, and
/// a stream on it after one exchange: both prefaces are in and the stream is open on both
/// ends, so the session is quiet. Also the counter of bytes the client's transport took.
async fn quiet_echo_stream(pipe: usize) -> (Session, braid::Stream, Arc<AtomicUsize>) {
    let (a, b) = tokio::io::duplex(pipe);
    let (a, written) = Vectored::new(a, usize::MAX, 0);
    let client = Session::client(a, Config::default()).unwrap();
    let server = Session::server(b, Config::default()).unwrap();
    support::spawn_echo_server(server);
    let mut s = client.open().await.unwrap();
    s.write_all(b"hi").await.unwrap();
    let mut back = [0u8; 2];
    s.read_exact(&mut back).await.unwrap();
    (client, s, written)
}

#[tokio::test]
async fn a_large_write_on_a_quiet_session_is_on_the_transport_when_it_returns() {
    let (_client, mut s, written) = quiet_echo_stream(1 << 20).await;

    let before = written.load(Ordering::SeqCst);
    let big = support::data(7, 64 * 1024);
    // No await: the driver task gets no chance to run in between.
    let n = s.write(&big).now_or_never().unwrap().unwrap();
    assert_eq!(n, big.len());
    assert_eq!(
        written.load(Ordering::SeqCst) - before,
        big.len() + braid::frame::HEADER_LEN,
        "the frame went to the transport inside the write call"
    );
    let mut echoed = vec![0u8; big.len()];
    s.read_exact(&mut echoed).await.unwrap();
    assert!(echoed == big, "echo differs");
}

/// Both ends on transports that take at most 5000 bytes per call and block every third
/// call: large writes (write-through, cut short and finished by the driver) and small
/// ones (queued) mix on four streams at once, and every byte comes back in order.
#[tokio::test]
async fn partial_transport_writes_keep_frames_whole_and_bytes_in_order() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (a, _) = Vectored::new(a, 5000, 3);
    let (b, _) = Vectored::new(b, 5000, 3);
    let client = Session::client(a, Config::default()).unwrap();
    let server = Session::server(b, Config::default()).unwrap();
    support::spawn_echo_server(server);
    let mut tasks = Vec::new();
    for seed in 1..=4u64 {
        let s = client.open().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let payload = support::data(seed, 768 * 1024);
            let (mut rx, mut tx) = s.into_split();
            let sent = payload.clone();
            let writer = tokio::spawn(async move {
                support::write_random_chunks(&mut tx, &sent, seed)
                    .await
                    .unwrap();
            });
            let mut got = Vec::new();
            rx.read_to_end(&mut got).await.unwrap();
            writer.await.unwrap();
            assert_eq!(got.len(), payload.len());
            assert!(got == payload, "stream {seed}: echo differs");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A write-through the transport takes only in part, on a session with nothing else to do:
/// the driver, handed the rest, writes it once the transport has room again, though the core
/// has no new frame for it (the transport remembers only the write-through's no-op waker).
/// Before the hand-off mark, the driver's idle check skipped that turn and the frame stayed
/// half written until a keepalive PING woke the driver 30 s later.
#[tokio::test(start_paused = true)]
async fn a_write_through_cut_short_is_finished_by_the_driver_on_an_idle_session() {
    let (_client, mut s, _) = quiet_echo_stream(16 * 1024).await;

    let big = support::data(8, 64 * 1024);
    let mut echoed = vec![0u8; big.len()];
    let exchange = async {
        s.write_all(&big).await.unwrap();
        s.read_exact(&mut echoed).await.unwrap();
    };
    // Well before the first keepalive PING (30 s), which would wake the driver anyway.
    tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .expect("the cut-short frame was never finished");
    assert!(echoed == big, "echo differs");
}
