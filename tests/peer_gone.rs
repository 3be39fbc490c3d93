//! The peer vanishes: its pipe or TCP socket is dropped, it stops in the middle of a frame, or
//! the transport fails. Every pending open, accept, ping, read and write on every stream then
//! resolves with an error — never `Ok(0)` (a clean EOF) on a stream the peer did not finish —
//! and nothing hangs (awaits are wrapped in a hang guard, under a paused clock where the
//! transport is in memory).

mod support;

use std::{future::Future, io, pin::Pin, time::Duration};

use braid::{
    frame::{Flags, Frame, FrameType, Header, Preface},
    Config, Error, Session, Stream,
};
use support::{
    fault::FaultyIo,
    raw::{self, RawPeer},
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// No timer of the session's may fire during a test: only the peer's disappearance ends it.
fn quiet_config() -> Config {
    let hour = Duration::from_secs(3600);
    Config::default()
        .with_keepalive_interval(None)
        .with_keepalive_timeout(hour)
        .with_write_timeout(hour)
        .with_open_timeout(hour)
}

/// An operation that must fail; `Ok` carries a description of the unexpected success.
type Op = Pin<Box<dyn Future<Output = Result<String, io::Error>>>>;

/// Operations left pending on a session, to check after the peer is gone.
#[derive(Default)]
struct Ops(Vec<(String, Op)>);

impl Ops {
    fn push(
        &mut self,
        name: String,
        op: impl Future<Output = Result<String, io::Error>> + 'static,
    ) {
        self.0.push((name, Box::pin(op)));
    }

    fn session(&mut self, tag: &str, session: &Session, ping: bool) {
        let s = session.clone();
        self.push(format!("{tag} open"), async move {
            Ok(format!("opened {}", s.open().await?.id()))
        });
        let s = session.clone();
        self.push(format!("{tag} accept"), async move {
            Ok(format!("accepted {}", s.accept().await?.id()))
        });
        if ping {
            let s = session.clone();
            self.push(format!("{tag} ping"), async move {
                Ok(format!("ping {:?}", s.ping().await?))
            });
        }
    }

    /// A read (nothing to read) and a write of more than window + send buffer.
    fn stream(&mut self, tag: &str, stream: Stream) {
        let id = stream.id();
        let (mut rx, tx) = stream.into_split();
        self.push(format!("{tag} read on stream {id}"), async move {
            let n = rx.read(&mut [0u8; 1024]).await?;
            Ok(format!("read returned Ok({n})"))
        });
        self.write(&format!("{tag} write on stream {id}"), tx);
    }

    fn write(&mut self, name: &str, mut tx: braid::SendStream) {
        self.push(name.to_string(), async move {
            tx.write_all(&vec![0u8; 2 << 20]).await?;
            Ok("wrote 2 MiB".to_string())
        });
    }

    async fn assert_all_pending(&mut self) {
        for (name, op) in &mut self.0 {
            assert!(
                support::poll_once(op).await.is_pending(),
                "{name} is not pending"
            );
        }
    }

    /// Awaits every operation; each must fail. Returns the errors.
    async fn expect_all_errors(self) -> Vec<io::Error> {
        let (names, ops): (Vec<_>, Vec<_>) = self.0.into_iter().unzip();
        let results = support::guard("pending operations", futures::future::join_all(ops)).await;
        names
            .into_iter()
            .zip(results)
            .map(|(name, r)| match r {
                Ok(what) => panic!("{name} succeeded after the peer vanished: {what}"),
                Err(err) => err,
            })
            .collect()
    }
}

/// Reads frames from the session until `n` SYNs arrived, answering PINGs on the way.
async fn expect_syns<T: AsyncRead + AsyncWrite + Unpin>(peer: &mut RawPeer<T>, mut n: usize) {
    while n > 0 {
        match support::guard("frame", peer.recv())
            .await
            .expect("session frame")
        {
            Frame::Data { flags, .. } if flags.contains(Flags::SYN) => n -= 1,
            Frame::Ping { ack: false, opaque } => {
                peer.send(Frame::Ping { ack: true, opaque }).await
            }
            _ => {}
        }
    }
}

/// `session` (a client) talks to the raw `peer`, which allows it 2 streams. Sets up: streams
/// 1 and 3 opened by the session and acknowledged (3 also finished by the peer, with "done"),
/// stream 2 opened by the peer and accepted; then leaves pending an open (over the limit), an
/// accept, a ping (never answered), a read and a write on each stream — except that stream
/// 3's receive side is returned, as the peer finished it.
async fn raw_setup<T: AsyncRead + AsyncWrite + Unpin>(
    session: &Session,
    peer: &mut RawPeer<T>,
) -> (Ops, braid::RecvStream) {
    peer.handshake_with(Preface {
        max_concurrent_streams: 2,
        ..raw::default_preface()
    })
    .await;
    let s1 = session.open().await.unwrap();
    let s3 = session.open().await.unwrap();
    expect_syns(peer, 2).await;
    peer.send(raw::data(1, Flags::ACK, b"a1")).await;
    peer.send(raw::data(3, Flags::ACK.union(Flags::FIN), b"done"))
        .await;
    peer.send(raw::data(2, Flags::SYN, b"in")).await;
    let s2 = support::guard("accept", session.accept()).await.unwrap();

    let mut ops = Ops::default();
    for (mut s, first) in [(s1, b"a1"), (s2, b"in")] {
        let mut buf = [0u8; 2];
        support::guard("first bytes", s.read_exact(&mut buf))
            .await
            .unwrap();
        assert_eq!(&buf, first);
        ops.stream("session", s);
    }
    let (rx3, tx3) = s3.into_split();
    ops.write("session write on finished stream 3", tx3);
    ops.session("session", session, true);
    ops.assert_all_pending().await;
    (ops, rx3)
}

/// After the peer vanished: every pending operation failed, the stream the peer finished
/// still reads its bytes then EOF, the session has ended, and new calls fail at once.
async fn check_all_failed(session: &Session, ops: Ops, mut finished: braid::RecvStream) -> Error {
    let errors = ops.expect_all_errors().await;
    assert_eq!(errors.len(), 8);
    let mut done = Vec::new();
    support::guard("finished stream", finished.read_to_end(&mut done))
        .await
        .unwrap();
    assert_eq!(done, b"done", "a stream the peer finished keeps its bytes");
    let reason = session.closed_reason().expect("the session ended");
    assert!(session.open().await.is_err() && session.accept().await.is_err());
    assert!(session.ping().await.is_err());
    reason
}

/// Asserts `reason` is a transport error of one of `kinds`; returns its text.
fn assert_transport_error(reason: &Error, kinds: &[io::ErrorKind]) -> String {
    match reason {
        Error::Io(err) => {
            assert!(kinds.contains(&err.kind()), "{err:?}");
            err.to_string()
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn peer_pipe_dropped() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let session = Session::client(a, quiet_config()).unwrap();
    let mut peer = RawPeer::new(b);
    let (ops, finished) = raw_setup(&session, &mut peer).await;
    drop(peer);
    let reason = check_all_failed(&session, ops, finished).await;
    // Whichever the session notices first: the EOF, or its next write failing.
    assert_transport_error(
        &reason,
        &[io::ErrorKind::UnexpectedEof, io::ErrorKind::BrokenPipe],
    );
}

/// The peer closes its sending direction between frames, without GOAWAY (it still takes our
/// bytes, so only the EOF can end the session).
#[tokio::test(start_paused = true)]
async fn peer_closes_its_side_without_goaway() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let session = Session::client(a, quiet_config()).unwrap();
    let mut peer = RawPeer::new(b);
    let (ops, finished) = raw_setup(&session, &mut peer).await;
    peer.io.shutdown().await.unwrap();
    let reason = check_all_failed(&session, ops, finished).await;
    let text = assert_transport_error(&reason, &[io::ErrorKind::UnexpectedEof]);
    assert!(text.contains("without GOAWAY"), "{text}");
}

/// The peer sends a header promising 100 bytes (with FIN, even) on stream 1, only 10 of them,
/// then closes its sending direction: the 10 bytes are not data and the FIN is not an EOF.
#[tokio::test(start_paused = true)]
async fn eof_in_the_middle_of_a_frame() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let session = Session::client(a, quiet_config()).unwrap();
    let mut peer = RawPeer::new(b);
    let (ops, finished) = raw_setup(&session, &mut peer).await;
    let header = Header {
        kind: FrameType::Data,
        flags: Flags::FIN,
        stream: 1,
        len: 100,
    };
    peer.send_raw(&header.encode()).await;
    peer.send_raw(&[b'x'; 10]).await;
    peer.io.shutdown().await.unwrap();
    let reason = check_all_failed(&session, ops, finished).await;
    let text = assert_transport_error(&reason, &[io::ErrorKind::UnexpectedEof]);
    assert!(text.contains("middle of a frame"), "{text}");
}

/// The peer's TCP socket is dropped (with unread bytes in it, so the kernel may reset the
/// connection rather than close it). Real clock: the transport is a real socket.
#[tokio::test]
async fn tcp_peer_socket_dropped() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let session = Session::client(c.unwrap(), quiet_config()).unwrap();
    let mut peer = RawPeer::new(s.unwrap().0);
    let (ops, finished) = raw_setup(&session, &mut peer).await;
    drop(peer);
    let reason = check_all_failed(&session, ops, finished).await;
    assert!(matches!(reason, Error::Io(_)), "{reason:?}");
}

/// The transport's reads and writes start failing: the session fails everything, then closes
/// the pipe, so the peer sees it end too.
#[tokio::test(start_paused = true)]
async fn transport_error() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (a, fault) = FaultyIo::new(a);
    let session = Session::client(a, quiet_config()).unwrap();
    let mut peer = RawPeer::new(b);
    let (ops, finished) = raw_setup(&session, &mut peer).await;
    fault.trigger();
    let reason = check_all_failed(&session, ops, finished).await;
    assert_transport_error(&reason, &[io::ErrorKind::ConnectionReset]);
    support::guard("peer sees the end", async {
        while peer.recv().await.is_some() {}
    })
    .await;
}

/// Two real sessions, every kind of operation pending on both, then the client's transport
/// fails: the client fails with the transport error, the server with the EOF that follows.
#[tokio::test(start_paused = true)]
async fn transport_error_fails_both_real_sessions() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (a, fault) = FaultyIo::new(a);
    let client = Session::client(a, quiet_config().with_max_outbound_streams(2)).unwrap();
    let server = Session::server(b, quiet_config().with_max_outbound_streams(1)).unwrap();

    let mut pairs = Vec::new();
    for _ in 0..2 {
        let c = client.open().await.unwrap();
        let s = support::guard("accept", server.accept()).await.unwrap();
        pairs.push((c, s));
    }
    let s = server.open().await.unwrap();
    let c = support::guard("accept", client.accept()).await.unwrap();
    pairs.push((c, s));
    let mut ops = Ops::default();
    for (mut c, mut s) in pairs {
        // One byte each way, so each stream is established on both sides.
        c.write_all(b"c").await.unwrap();
        s.write_all(b"s").await.unwrap();
        support::guard("byte", s.read_exact(&mut [0u8; 1]))
            .await
            .unwrap();
        support::guard("byte", c.read_exact(&mut [0u8; 1]))
            .await
            .unwrap();
        ops.stream("client", c);
        ops.stream("server", s);
    }
    ops.session("client", &client, false);
    ops.session("server", &server, false);
    ops.assert_all_pending().await;

    fault.trigger();
    let errors = ops.expect_all_errors().await;
    assert_eq!(errors.len(), 16);
    let reason = client.closed_reason().expect("client ended");
    assert_transport_error(&reason, &[io::ErrorKind::ConnectionReset]);
    assert!(server.closed_reason().is_some());
    assert!(server.open().await.is_err() && client.open().await.is_err());
}

/// The peer closes in the middle of its preface: pending open, accept and ping fail.
#[tokio::test(start_paused = true)]
async fn eof_during_the_preface() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let session = Session::server(a, quiet_config()).unwrap();
    let mut peer = RawPeer::new(b);
    let mut ops = Ops::default();
    ops.session("session", &session, true);
    ops.assert_all_pending().await;
    peer.send_raw(&raw::default_preface().encode()[..10]).await;
    peer.io.shutdown().await.unwrap();
    ops.expect_all_errors().await;
    let reason = session.closed_reason().expect("ended");
    assert_transport_error(&reason, &[io::ErrorKind::UnexpectedEof]);
}

/// A driver dropped before the session ended (task aborted, runtime shut down) fails the
/// session: nothing waits forever.
#[tokio::test]
async fn dropping_the_driver_fails_pending_operations() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (client, driver) =
        braid::Session::with_driver(a, braid::Config::default(), braid::Role::Client).unwrap();
    let _server = braid::Session::server(b, braid::Config::default()).unwrap();
    let task = tokio::spawn(driver);
    let accept = tokio::spawn({
        let client = client.clone();
        async move { client.accept().await }
    });
    tokio::task::yield_now().await;
    task.abort();
    let err = accept.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("driver was dropped"), "{err}");
    assert!(client.open().await.is_err());
}

/// A session over a pipe whose writes now fail (reads still work), with one open stream
/// acknowledged by nobody yet, on which a write has just failed.
async fn stream_whose_next_write_fails() -> (Session, RawPeer, Stream) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (a, fault) = FaultyIo::new(a);
    let session = Session::client(a, quiet_config()).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    let mut stream = session.open().await.unwrap();
    stream.write_all(b"request").await.unwrap();
    expect_syns(&mut peer, 1).await;
    fault.trigger_writes();
    stream.write_all(b"more").await.unwrap(); // queued; writing it to the transport fails
    support::until("a write failed", || fault.failed_writes() > 0).await;
    (session, peer, stream)
}

/// The peer answered and closed at once (as a server turning a request down does): our next
/// write fails, but the answer and its FIN are still in the transport. The session reads them
/// before failing (spec §8.3): the stream delivers every byte and its end, then the session
/// ends with an error.
#[tokio::test(start_paused = true)]
async fn an_answer_sent_before_the_peer_closed_survives_our_failed_write() {
    let (session, mut peer, mut stream) = stream_whose_next_write_fails().await;
    peer.send(raw::data(1, Flags::ACK.union(Flags::FIN), b"the answer"))
        .await;
    drop(peer);

    let mut answer = Vec::new();
    support::guard("the answer", stream.read_to_end(&mut answer))
        .await
        .expect("the finished direction keeps its bytes");
    assert_eq!(answer, b"the answer");
    support::guard("session end", async {
        while session.closed_reason().is_none() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(session.open().await.is_err());
}

/// Same, with PINGs ahead of the answer: their replies can't be written any more, and that
/// must not stop input (spec V35: the single reply slot is given up once writes fail).
#[tokio::test(start_paused = true)]
async fn a_ping_after_our_failed_write_does_not_stop_input() {
    let (session, mut peer, mut stream) = stream_whose_next_write_fails().await;
    for opaque in [7, 8] {
        peer.send(Frame::Ping { ack: false, opaque }).await;
    }
    peer.send(raw::data(1, Flags::ACK.union(Flags::FIN), b"the answer"))
        .await;
    let started = tokio::time::Instant::now();
    let mut answer = Vec::new();
    support::guard("the answer", stream.read_to_end(&mut answer))
        .await
        .expect("the answer arrives though the PING can't be answered");
    assert_eq!(answer, b"the answer");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "not after the drain timeout"
    );
    drop((peer, session));
}

/// Reading on after a failed write is bounded: a peer that neither sends nor closes leaves
/// the session failing with the write error a second later (paused clock), every pending read
/// with it.
#[tokio::test(start_paused = true)]
async fn a_failed_write_fails_the_session_within_the_drain_time() {
    let (session, peer, mut stream) = stream_whose_next_write_fails().await;
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 8];
    let err = support::guard("read fails", stream.read(&mut buf))
        .await
        .expect_err("the session failed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited <= Duration::from_secs(2),
        "failed after {waited:?}"
    );
    let reason = session.closed_reason().expect("the session ended");
    assert_transport_error(&reason, &[io::ErrorKind::BrokenPipe]);
    assert!(Error::from_io(&err).is_some(), "{err:?}");
    drop(peer);
}
