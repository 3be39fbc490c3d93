//! Hostile or broken transports (issue rows 12, 20, 22, 23, 24; spec §2, §8, §10 V38, §12):
//! silent and dripping peers, writes that return Ok(0) and reads that fail mid-frame, both
//! ends writing past the transport's buffers, GOAWAY racing opens, and arbitrary bytes.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use std::{
    collections::BTreeSet,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use braid::{
    frame::{ErrorCode, Flags, Frame, PREFACE_LEN},
    Config, Error, Role, Session, Side, TimeoutKind,
};
use bytes::{BufMut, Bytes, BytesMut};
use futures::task::AtomicWaker;
use hostile::{assert_goaway, data_frame, encode_all, quiet, split, syn, until_goaway};
use proptest::prelude::*;
use support::raw::{default_preface, RawPeer};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf},
    time::Instant,
};

// ----- row 12: silent and dripping peers -----

/// row 12: a silent peer: it answered the startup PINGs, then sends nothing. Keepalive sends a
/// PING after `keepalive_interval` and closes the session with Timeout(Keepalive) and
/// GOAWAY(TIMEOUT) when no reply came within `keepalive_timeout`.
#[tokio::test(start_paused = true)]
async fn row12_silent_peer_is_closed_by_keepalive() {
    const INTERVAL: Duration = Duration::from_secs(5);
    const TIMEOUT: Duration = Duration::from_secs(3);
    let config = Config::default()
        .with_keepalive_interval(Some(INTERVAL))
        .with_keepalive_timeout(TIMEOUT);
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = Session::server(a, config).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    let started = Instant::now();
    answer_startup_pings(&mut peer).await;
    // From now on the peer says nothing.
    match support::guard("keepalive PING", peer.recv()).await.unwrap() {
        Frame::Ping { ack: false, .. } => assert_eq!(started.elapsed(), INTERVAL),
        other => panic!("expected a keepalive PING, got {other:?}"),
    }
    let (goaway, _) = support::guard("GOAWAY", until_goaway(&mut peer)).await;
    assert_goaway(&goaway, ErrorCode::TIMEOUT);
    assert_eq!(started.elapsed(), INTERVAL + TIMEOUT);
    assert!(matches!(
        server.closed_reason(),
        Some(Error::Timeout(TimeoutKind::Keepalive))
    ));
    assert!(peer.recv().await.is_none(), "transport closed");
}

/// Answers the two PINGs a session sends at start (spec §7.4: the first leaves with the
/// preface, the second as soon as the first is answered).
async fn answer_startup_pings(peer: &mut RawPeer) {
    for which in ["first", "second"] {
        match peer.recv().await.unwrap() {
            Frame::Ping { ack: false, opaque } => {
                peer.send(Frame::Ping { ack: true, opaque }).await
            }
            other => panic!("expected the {which} PING, got {other:?}"),
        }
    }
}

/// Hang guard for scenarios that run minutes of the paused clock.
async fn guard_long<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(3600), fut).await {
        Ok(out) => out,
        Err(_) => panic!("hung: {what}"),
    }
}

/// Drips `bytes` into `wr` one byte a minute (of the paused clock) until the pipe closes.
fn spawn_drip(
    mut wr: tokio::io::WriteHalf<DuplexStream>,
    bytes: Vec<u8>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut sent = 0;
        for b in bytes {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        sent
    })
}

/// row 12: a frame body dripped one byte a minute (slowloris): frames don't interleave, so our
/// keepalive PING's reply can't come; the session closes with Timeout(Keepalive) one
/// keepalive timeout after that PING, however long the frame would take.
#[tokio::test(start_paused = true)]
async fn row12_dripped_frame_is_closed_by_keepalive() {
    const INTERVAL: Duration = Duration::from_secs(60);
    const TIMEOUT: Duration = Duration::from_secs(180);
    let config = Config::default()
        .with_keepalive_interval(Some(INTERVAL))
        .with_keepalive_timeout(TIMEOUT);
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = Session::server(a, config).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    let started = Instant::now();
    answer_startup_pings(&mut peer).await;
    let body = encode_all(&[data_frame(1, Flags::SYN, Bytes::from(vec![1u8; 1000]))]);
    let (mut reader, wr) = split(peer);
    let drip = spawn_drip(wr, body.to_vec());
    let mut pinged = None;
    let goaway = loop {
        match guard_long("GOAWAY", reader.recv())
            .await
            .expect("EOF before GOAWAY")
        {
            Frame::Ping { ack: false, .. } => pinged = Some(started.elapsed()),
            f @ Frame::GoAway { .. } => break f,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_goaway(&goaway, ErrorCode::TIMEOUT);
    assert_eq!(pinged, Some(INTERVAL));
    assert_eq!(started.elapsed(), INTERVAL + TIMEOUT);
    assert!(matches!(
        server.closed_reason(),
        Some(Error::Timeout(TimeoutKind::Keepalive))
    ));
    // Its next write fails once the transport is closed, after the drain (L22).
    let dripped = guard_long("drip ends", drip).await.unwrap();
    eprintln!(
        "row 12: {dripped} of {} frame bytes dripped before the session closed",
        body.len()
    );
    assert!(dripped < body.len());
    let stats = server.stats();
    assert_eq!(
        (stats.tracked_streams, stats.recv_buffered),
        (0, 0),
        "the dripped frame never counted"
    );
}

/// row 12: the preface dripped one byte a minute (spec §2, §10 V4): the session gives up after
/// `keepalive_timeout` with GOAWAY(0, TIMEOUT) and Timeout(Keepalive).
#[tokio::test(start_paused = true)]
async fn row12_dripped_preface_times_out() {
    const TIMEOUT: Duration = Duration::from_secs(330);
    let config = Config::default()
        .with_keepalive_timeout(TIMEOUT)
        .with_close_drain_timeout(Duration::ZERO); // as above: the drip ends at the close
    let (a, b) = tokio::io::duplex(64 * 1024);
    let started = Instant::now();
    let server = Session::server(a, config).unwrap();
    let (rd, wr) = tokio::io::split(b);
    let drip = spawn_drip(wr, default_preface().encode().to_vec());
    let mut reader = hostile::RawReader {
        io: rd,
        buf: BytesMut::new(),
        decoder: braid::frame::Decoder::new(16 << 20),
    };
    while reader.buf.len() < PREFACE_LEN {
        assert!(reader.io.read_buf(&mut reader.buf).await.unwrap() > 0);
    }
    let _ = reader.buf.split_to(PREFACE_LEN);
    // Spec §2: the session's first PING follows its preface at once; then nothing but the
    // GOAWAY.
    assert!(matches!(
        guard_long("PING", reader.recv()).await,
        Some(Frame::Ping { ack: false, .. })
    ));
    match guard_long("GOAWAY", reader.recv()).await {
        Some(Frame::GoAway {
            last_stream, code, ..
        }) => {
            assert_eq!((last_stream, code), (0, ErrorCode::TIMEOUT));
        }
        other => panic!("expected GOAWAY(0, TIMEOUT), got {other:?}"),
    }
    assert_eq!(started.elapsed(), TIMEOUT);
    assert!(matches!(
        server.closed_reason(),
        Some(Error::Timeout(TimeoutKind::Keepalive))
    ));
    let dripped = support::guard("drip ends", drip).await.unwrap();
    assert_eq!(
        dripped, 6,
        "one byte at the start, then one a minute for five minutes"
    );
}

// ----- row 20: broken transports -----

#[derive(Default)]
struct FlakyState {
    /// Writes return Ok(0) from now on.
    write_zero: AtomicBool,
    /// Reads fail with this kind from now on.
    read_error: Mutex<Option<io::ErrorKind>>,
    /// Bytes the session read.
    read_bytes: AtomicUsize,
    /// Calls of poll_read / poll_write / poll_flush / poll_shutdown, to spot a busy loop.
    polls: AtomicU64,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// A duplex half whose writes can be made to return Ok(0) and whose reads can be made to fail.
struct Flaky {
    inner: DuplexStream,
    state: Arc<FlakyState>,
}

impl Flaky {
    fn new(inner: DuplexStream) -> (Flaky, Arc<FlakyState>) {
        let state = Arc::new(FlakyState::default());
        (
            Flaky {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

impl FlakyState {
    fn set_write_zero(&self) {
        self.write_zero.store(true, SeqCst);
        self.writer.wake();
        self.reader.wake();
    }
    fn set_read_error(&self, kind: io::ErrorKind) {
        *self.read_error.lock().unwrap() = Some(kind);
        self.reader.wake();
    }
}

impl AsyncRead for Flaky {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.polls.fetch_add(1, SeqCst);
        this.state.reader.register(cx.waker());
        if let Some(kind) = *this.state.read_error.lock().unwrap() {
            return Poll::Ready(Err(io::Error::new(kind, "injected read error")));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.state
            .read_bytes
            .fetch_add(buf.filled().len() - before, SeqCst);
        res
    }
}

impl AsyncWrite for Flaky {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.state.polls.fetch_add(1, SeqCst);
        this.state.writer.register(cx.waker());
        if this.state.write_zero.load(SeqCst) {
            return Poll::Ready(Ok(0));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.polls.fetch_add(1, SeqCst);
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.polls.fetch_add(1, SeqCst);
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// A server session over a [`Flaky`] transport (driver run by the test), a raw peer on the
/// other end with one accepted stream that delivered "hello", and a read pending on it.
async fn flaky_setup() -> (
    Session,
    tokio::task::JoinHandle<()>,
    Arc<FlakyState>,
    RawPeer,
    tokio::task::JoinHandle<io::Result<usize>>,
) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (io, state) = Flaky::new(a);
    let (server, driver) =
        Session::with_driver(io, quiet(Config::default()), Role::Server).unwrap();
    let driver = tokio::spawn(driver);
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    peer.send(syn(1, b"hello")).await;
    let mut s = server.accept().await.unwrap();
    let mut got = [0u8; 5];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
    let pending_read = tokio::spawn(async move {
        let mut buf = [0u8; 16];
        s.read(&mut buf).await
    });
    (server, driver, state, peer, pending_read)
}

fn assert_io_kind(err: &Error, kind: io::ErrorKind) {
    match err {
        Error::Io(e) => assert_eq!(e.kind(), kind, "{e}"),
        other => panic!("expected Error::Io({kind:?}), got {other:?}"),
    }
}

/// row 20: a transport whose write returns Ok(0): the session ends with Error::Io(WriteZero),
/// pending operations fail with it, the driver future completes without spinning, no panic.
#[tokio::test]
async fn row20_write_returning_zero_ends_the_session() {
    let (server, driver, state, mut peer, pending_read) = flaky_setup().await;
    hostile::settle("transport idle", || state.polls.load(SeqCst)).await;
    assert!(!pending_read.is_finished());
    let polls_before = state.polls.load(SeqCst);

    state.set_write_zero();
    let mut s2 = {
        // Give the driver something to write.
        let mut s = server.open().await.unwrap();
        s.write_all(b"reply").await.unwrap();
        s
    };
    support::guard("driver completes", driver)
        .await
        .expect("driver must not panic");
    let polls = state.polls.load(SeqCst) - polls_before;
    eprintln!("row 20 (write Ok(0)): {polls} transport polls from the fault to the end");
    assert!(polls <= 20, "{polls} transport polls: busy loop?");

    let err = server.closed_reason().expect("session ended");
    assert_io_kind(&err, io::ErrorKind::WriteZero);
    let read_err = support::guard("pending read", pending_read)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(read_err.kind(), io::ErrorKind::WriteZero, "{read_err}");
    assert_eq!(
        s2.write_all(b"more").await.unwrap_err().kind(),
        io::ErrorKind::WriteZero
    );
    assert_io_kind(
        &server.accept().await.unwrap_err(),
        io::ErrorKind::WriteZero,
    );
    assert_io_kind(&server.open().await.unwrap_err(), io::ErrorKind::WriteZero);
    assert!(
        peer.expect_goaway().await.is_none(),
        "nothing more is written; the pipe closes"
    );
}

/// row 20: a transport whose read fails in the middle of a frame: the session ends with
/// Error::Io of the injected kind, pending operations fail, the driver completes, no spin.
#[tokio::test]
async fn row20_read_error_mid_frame_ends_the_session() {
    let (server, driver, state, mut peer, pending_read) = flaky_setup().await;
    // Half a frame: a 100-byte DATA header and 10 bytes of its payload.
    let mut partial = BytesMut::new();
    partial.put_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 100]);
    partial.put_slice(&[9u8; 10]);
    peer.send_raw(&partial).await;
    let sent = PREFACE_LEN + 12 + 5 + partial.len();
    support::until("the session read the partial frame", || {
        state.read_bytes.load(SeqCst) == sent
    })
    .await;
    hostile::settle("transport idle", || state.polls.load(SeqCst)).await;
    assert!(!pending_read.is_finished() && server.closed_reason().is_none());
    let polls_before = state.polls.load(SeqCst);

    state.set_read_error(io::ErrorKind::ConnectionAborted);
    support::guard("driver completes", driver)
        .await
        .expect("driver must not panic");
    let polls = state.polls.load(SeqCst) - polls_before;
    eprintln!("row 20 (read error): {polls} transport polls from the fault to the end");
    assert!(polls <= 20, "{polls} transport polls: busy loop?");

    let err = server.closed_reason().expect("session ended");
    assert_io_kind(&err, io::ErrorKind::ConnectionAborted);
    let read_err = support::guard("pending read", pending_read)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        read_err.kind(),
        io::ErrorKind::ConnectionAborted,
        "{read_err}"
    );
    assert_io_kind(
        &server.accept().await.unwrap_err(),
        io::ErrorKind::ConnectionAborted,
    );
    while let Some(f) = peer.recv().await {
        assert!(
            !matches!(f, Frame::GoAway { .. }),
            "no GOAWAY after a transport error (§8.3)"
        );
    }
}

// ----- row 22: both ends write, neither reads -----

/// row 22: both ends write more than the transport buffers (a 1 KiB duplex) and more than
/// their send buffers, on several streams each way, and neither reads until it is done
/// writing: the drivers keep reading while their writes are blocked, so it completes.
#[tokio::test]
async fn row22_both_ends_write_before_reading() {
    const STREAMS: usize = 4;
    const LEN: usize = 200 * 1024; // within one stream window, well beyond the send buffer
    let config = Config::default()
        .with_stream_send_buffer(16 * 1024)
        .with_session_send_buffer(32 * 1024);
    let (client, server) = support::duplex_pair(1024, config.clone(), config);
    let mut pairs = Vec::new();
    for _ in 0..STREAMS {
        let c = client.open().await.unwrap();
        let s = server.accept().await.unwrap();
        pairs.push((c, s));
    }
    let mut writers = Vec::new();
    for (c, s) in pairs {
        for (end, mut stream) in [(0u64, c), (1u64, s)] {
            writers.push(tokio::spawn(async move {
                let payload = support::data(stream.id() as u64 * 2 + end, LEN);
                stream.write_all(&payload).await.unwrap();
                stream.shutdown().await.unwrap();
                (end, stream)
            }));
        }
    }
    let mut done = Vec::new();
    for w in writers {
        done.push(
            support::guard("writers finish without any reader", w)
                .await
                .unwrap(),
        );
    }
    // Now read everything, each stream from the other end's writer.
    for (end, mut stream) in done {
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert!(
            got == support::data(stream.id() as u64 * 2 + (1 - end), LEN),
            "stream {}",
            stream.id()
        );
    }
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
}

// ----- row 23: GOAWAY racing opens -----

/// Opens a stream that sends `LEN` bytes, finishes, and expects them echoed: `Ok(id)` when
/// they came back intact, else the error.
fn spawn_echo_client(
    mut s: braid::Stream,
    len: usize,
) -> tokio::task::JoinHandle<Result<u32, (u32, io::Error)>> {
    tokio::spawn(async move {
        let id = s.id();
        let payload = support::data(id as u64, len);
        let result = async {
            s.write_all(&payload).await?;
            s.shutdown().await?;
            let mut back = Vec::new();
            s.read_to_end(&mut back).await?;
            Ok::<_, io::Error>(back)
        }
        .await;
        match result {
            Ok(back) => {
                assert!(back == payload, "stream {id} echoed wrong bytes");
                Ok(id)
            }
            Err(e) => Err((id, e)),
        }
    })
}

/// row 23: GOAWAY racing opens. The client has 40 streams accepted; the server calls goaway()
/// while the client, not yet aware of it, opens 16 more, and then keeps opening. The racing
/// streams (above the GOAWAY's last id) fail with StreamRefused(REFUSED_STREAM), opens after
/// the GOAWAY arrived fail with GoingAway, and every stream the server accepted completes
/// with all its bytes. (The server holds its echoes until the client saw GoingAway, so the
/// session is still draining then; opens after the drain find it closed:
/// SessionClosed(NO_ERROR).)
#[tokio::test]
async fn row23_goaway_racing_opens() {
    const OPENS: usize = 300;
    const BEFORE_GOAWAY: usize = 40;
    const RACING: usize = 16;
    const LEN: usize = 8 * 1024;
    let (client, server) = support::duplex_pair(64 * 1024, Config::default(), Config::default());
    let (release, released) = tokio::sync::watch::channel(false);
    let accepted_count = Arc::new(AtomicUsize::new(0));

    let server_task = tokio::spawn({
        let (server, accepted_count) = (server.clone(), accepted_count.clone());
        async move {
            let mut accepted = BTreeSet::new();
            let mut echoes = Vec::new();
            let err = loop {
                let mut s = match server.accept().await {
                    Ok(s) => s,
                    Err(e) => break e,
                };
                accepted.insert(s.id());
                accepted_count.fetch_add(1, SeqCst);
                let mut released = released.clone();
                echoes.push(tokio::spawn(async move {
                    let mut buf = Vec::new();
                    s.read_to_end(&mut buf).await.unwrap();
                    released.wait_for(|r| *r).await.unwrap();
                    s.write_all(&buf).await.unwrap();
                    s.shutdown().await.unwrap();
                    (s.id(), buf.len())
                }));
            };
            assert!(
                matches!(err, Error::GoingAway { by: Side::Local }),
                "{err:?}"
            );
            let mut echoed = BTreeSet::new();
            for e in echoes {
                let (id, len) = e.await.unwrap();
                assert_eq!(len, LEN, "stream {id}");
                echoed.insert(id);
            }
            assert_eq!(echoed, accepted);
            accepted
        }
    });

    let mut streams = Vec::new();
    for _ in 0..BEFORE_GOAWAY {
        streams.push(spawn_echo_client(client.open().await.unwrap(), LEN));
    }
    support::until("40 streams accepted", || {
        accepted_count.load(SeqCst) == BEFORE_GOAWAY
    })
    .await;
    server.goaway();
    // No yield: the client can't have seen the GOAWAY yet, so these opens succeed locally.
    for _ in 0..RACING {
        streams.push(spawn_echo_client(client.open().await.unwrap(), LEN));
    }
    let (mut going_away, mut after_close) = (0, 0);
    for _ in BEFORE_GOAWAY + RACING..OPENS {
        match client.open().await {
            Ok(s) => streams.push(spawn_echo_client(s, LEN)),
            Err(Error::GoingAway { by: Side::Remote }) => {
                going_away += 1;
                release.send_replace(true);
            }
            // Once no stream is left, the session has closed gracefully.
            Err(Error::SessionClosed {
                code: ErrorCode::NO_ERROR,
                by: Side::Remote,
                ..
            }) => after_close += 1,
            Err(e) => panic!("open failed with {e:?}"),
        }
        tokio::task::yield_now().await;
    }
    let mut completed = BTreeSet::new();
    let mut refused = 0;
    for s in streams {
        match s.await.unwrap() {
            Ok(id) => {
                completed.insert(id);
            }
            Err((id, e)) => {
                assert!(
                    matches!(Error::from_io(&e), Some(Error::StreamRefused { code }) if *code == ErrorCode::REFUSED_STREAM),
                    "stream {id} failed with {e:?}"
                );
                refused += 1;
            }
        }
    }
    let accepted = support::guard("server", server_task).await.unwrap();
    eprintln!(
        "row 23: {} streams completed, {refused} refused, {going_away} opens failed with GoingAway, \
         {after_close} after the session closed",
        completed.len()
    );
    assert_eq!(completed, accepted, "exactly the accepted streams complete");
    assert_eq!(completed.len(), BEFORE_GOAWAY);
    assert!(refused >= RACING, "the racing opens are refused: {refused}");
    assert!(
        going_away > 0,
        "opens after the GOAWAY arrived fail with GoingAway"
    );
    assert_eq!(completed.len() + refused + going_away + after_close, OPENS);
    assert!(server.stats().local_resets <= refused as u32);
}

// ----- row 24: arbitrary bytes -----

/// Bytes that look like a frame header (reserved bits zero, small ids and lengths) followed by
/// a payload, so the fuzzing gets past the header checks into the stream logic.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..7,
        0u8..8,
        0u32..8,
        prop::collection::vec(any::<u8>(), 0..24),
        any::<bool>(),
    )
        .prop_map(|(kind, flags, stream, payload, honest_len)| {
            let len = if honest_len {
                payload.len() as u32
            } else {
                payload.len() as u32 + 4
            };
            let mut out = vec![kind, flags, 0, 0];
            out.extend_from_slice(&stream.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&payload);
            out
        })
}

fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop_oneof![
            1 => prop::collection::vec(any::<u8>(), 0..64),
            3 => plausible_frame(),
        ],
        0..40,
    )
}

/// Feeds `chunks` (after a valid preface if `preface`) into a server session, then closes the
/// pipe. The driver must not panic; the session stays up until then or ends with an error,
/// and after the close it has ended.
fn feed(preface: bool, chunks: Vec<Vec<u8>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let (a, b) = tokio::io::duplex(16 * 1024);
        let config = Config::default()
            .with_keepalive_interval(Some(Duration::from_secs(10)))
            .with_keepalive_timeout(Duration::from_secs(10))
            .with_open_timeout(Duration::from_secs(10))
            .with_linger_timeout(Duration::from_secs(10));
        let (server, driver) = Session::with_driver(a, config, Role::Server).unwrap();
        let driver = tokio::spawn(driver);
        let app = tokio::spawn({
            let server = server.clone();
            async move {
                while let Ok(mut s) = server.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        while let Ok(n) = s.read(&mut buf).await {
                            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        });
        let (mut rd, mut wr) = tokio::io::split(b);
        let drain = tokio::spawn(async move {
            let mut sink = vec![0u8; 16 * 1024];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        if preface {
            let _ = wr.write_all(&default_preface().encode()).await;
        }
        for chunk in &chunks {
            if wr.write_all(chunk).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        if let Some(err) = server.closed_reason() {
            assert!(
                matches!(
                    err,
                    Error::Protocol { .. }
                        | Error::Io(_)
                        | Error::SessionClosed { .. }
                        | Error::Timeout(_)
                ),
                "{err:?}"
            );
        } else {
            assert!(
                !driver.is_finished(),
                "the driver ended but the session did not"
            );
        }
        drop(wr);
        support::guard("driver ends after EOF", driver)
            .await
            .expect("driver panicked");
        assert!(
            server.closed_reason().is_some(),
            "the session ended after the transport closed"
        );
        support::guard("application ends", app)
            .await
            .expect("application panicked");
        support::guard("drain", drain).await.unwrap();
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// row 24: arbitrary bytes after a valid preface: no panic; the session stays up or ends
    /// with an error.
    #[test]
    fn row24_arbitrary_bytes_after_a_valid_preface(chunks in chunks()) {
        feed(true, chunks);
    }

    /// row 24: arbitrary bytes without a preface: no panic; the session ends with an error.
    #[test]
    fn row24_arbitrary_bytes_without_a_preface(chunks in chunks()) {
        feed(false, chunks);
    }
}
