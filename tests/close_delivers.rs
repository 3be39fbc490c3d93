//! Closing a session never costs the peer data (spec §8.2, §8.3 step 3, L22): after its last
//! frame an endpoint shuts down its write side and reads and discards input until the peer's
//! EOF, so the kernel never answers a late frame with a TCP RST that would destroy bytes the
//! peer has not read yet. The RST is the kernel's doing, so these tests run on real loopback
//! sockets, not in-memory pipes.

mod support;

use std::time::{Duration, Instant};

use braid::{
    frame::{ErrorCode, Flags, Frame},
    Config, Error, Session,
};
use bytes::Bytes;
use support::raw::{default_preface, RawPeer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const ECHO_STREAMS: usize = 10;
const ECHO_BYTES: usize = 1 << 20;
/// Rounds of the echo scenario, cycling through the GOAWAY gaps (the issue's "100 times in a
/// row"), and a bound on their total time so a hang fails rather than stalls CI.
const ECHO_ROUNDS: usize = 100;
const ECHO_GAPS_MS: [u64; 4] = [0, 1, 2, 5];
const ROUND_LIMIT: Duration = Duration::from_secs(20);

/// The server of the echo scenario: echoes every stream until its FIN, then finishes it;
/// once no more streams can arrive it closes the session, as an application would. Returns
/// how many echoes its application saw succeed.
async fn echo_server(session: Session) -> usize {
    let mut tasks = Vec::new();
    while let Ok(stream) = session.accept().await {
        tasks.push(tokio::spawn(async move {
            let (mut rx, mut tx) = stream.into_split();
            let n = tokio::io::copy(&mut rx, &mut tx).await?;
            tx.finish()?;
            tx.flush().await?;
            Ok::<u64, std::io::Error>(n)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(n)) if n == ECHO_BYTES as u64) {
            ok += 1;
        }
    }
    session.close().await;
    ok
}

/// One stream of the echo client: writes 1 MiB and its FIN while reading the echo to the end.
async fn echo_client_stream(stream: braid::Stream, seed: u64) -> Result<(), String> {
    let payload = support::data(seed, ECHO_BYTES);
    let (mut rx, mut tx) = stream.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        tx.write_all(&sent).await?;
        tx.shutdown().await
    });
    let mut echoed = Vec::with_capacity(ECHO_BYTES);
    let read = rx.read_to_end(&mut echoed).await;
    writer
        .await
        .unwrap()
        .map_err(|e| format!("write failed: {e}"))?;
    read.map_err(|e| format!("read failed after {} bytes: {e}", echoed.len()))?;
    if echoed != payload {
        return Err(format!("echo differs ({} bytes back)", echoed.len()));
    }
    Ok(())
}

/// The scenario: 10 streams each echo 1 MiB, the client sends GOAWAY `gap` in (it
/// opens no more; the open ones finish), the server closes once its echoes are done. Without
/// the lingering close the server's close arrived before the client had read the last echo
/// bytes, and the client's next WINDOW_UPDATE or PING reply drew a RST that destroyed them.
async fn echo_round(gap: Duration, round: usize) -> Result<(), String> {
    let (c, s) = support::tcp_connection().await;
    let client = Session::client(c, Config::default()).unwrap();
    let server = tokio::spawn(echo_server(Session::server(s, Config::default()).unwrap()));
    let mut streams = Vec::new();
    for i in 0..ECHO_STREAMS {
        let stream = client.open().await.map_err(|e| format!("open: {e}"))?;
        streams.push(tokio::spawn(echo_client_stream(
            stream,
            (round * ECHO_STREAMS + i) as u64,
        )));
    }
    tokio::time::sleep(gap).await; // the scenario's timing, not a synchronisation
    client.goaway();
    let mut failures = Vec::new();
    for (i, t) in streams.into_iter().enumerate() {
        if let Err(e) = t.await.unwrap() {
            failures.push(format!("stream {i}: {e}"));
        }
    }
    let served = server.await.unwrap();
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    if served != ECHO_STREAMS {
        return Err(format!("server application saw {served} echoes succeed"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_survive_a_goaway_and_the_servers_close_100_times() {
    let started = Instant::now();
    for round in 0..ECHO_ROUNDS {
        let gap = Duration::from_millis(ECHO_GAPS_MS[round % ECHO_GAPS_MS.len()]);
        let result = tokio::time::timeout(ROUND_LIMIT, echo_round(gap, round))
            .await
            .unwrap_or_else(|_| Err("round hung".into()));
        if let Err(e) = result {
            panic!("round {round} (GOAWAY at {gap:?}) lost data: {e}");
        }
    }
    eprintln!("{ECHO_ROUNDS} rounds in {:?}", started.elapsed());
}

/// A raw client over TCP, handshake done: it reads only when the test says so, as a slow
/// application on a plain socket would, so bytes wait in its kernel receive buffer.
async fn raw_client(addr: std::net::SocketAddr) -> RawPeer<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut peer = RawPeer::new(tcp);
    peer.handshake_with(default_preface()).await;
    peer
}

/// Reads frames until EOF; fails on a transport error (a RST destroys unread bytes).
async fn read_to_eof(peer: &mut RawPeer<TcpStream>) -> Result<Vec<Frame>, std::io::Error> {
    let mut frames = Vec::new();
    loop {
        while let Some(frame) = peer
            .decoder
            .decode(&mut peer.buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        {
            frames.push(frame);
        }
        if peer.io.read_buf(&mut peer.buf).await? == 0 {
            return Ok(frames);
        }
    }
}

/// A slow reader: the server replies and finishes, its session ends and it closes; the
/// client reads the reply only 300 ms later, and sends a PING meanwhile. Without the
/// lingering close the PING reached a closed socket, the kernel answered with a RST, and the
/// reply waiting in the client's receive buffer was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_the_whole_reply_after_the_server_closed() {
    const REPLY: usize = 128 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shut_tx, shut_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let session = Session::server(tcp, Config::default()).unwrap();
        let mut stream = session.accept().await.unwrap();
        let mut request = Vec::new();
        stream.read_to_end(&mut request).await.unwrap();
        stream.write_all(&support::data(7, REPLY)).await.unwrap();
        stream.shutdown().await.unwrap();
        drop(stream);
        // Ends the session: our GOAWAY, and no stream is left. `close` returns once the
        // GOAWAY is out and the write side is shut down.
        session.close().await;
        shut_tx.send(()).unwrap();
        session.closed().await
    });
    let mut peer = raw_client(addr).await;
    peer.send(Frame::Data {
        stream: 1,
        flags: Flags::SYN.union(Flags::FIN),
        payload: Bytes::from_static(b"request"),
    })
    .await;
    shut_rx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the slow reader, not a sync
    peer.send(Frame::Ping {
        ack: false,
        opaque: 99,
    })
    .await;
    let frames = read_to_eof(&mut peer)
        .await
        .expect("the reply must survive the server's close");
    let mut reply = Vec::new();
    let mut fin = false;
    let mut goaway = None;
    for frame in frames {
        match frame {
            Frame::Data {
                stream: 1,
                flags,
                payload,
            } => {
                reply.extend_from_slice(&payload);
                fin |= flags.contains(Flags::FIN);
            }
            Frame::GoAway { code, .. } => goaway = Some(code),
            _ => {}
        }
    }
    assert_eq!(reply.len(), REPLY);
    assert_eq!(reply, support::data(7, REPLY));
    assert!(fin, "the reply ends with the server's FIN");
    assert_eq!(goaway, Some(ErrorCode::NO_ERROR));
    peer.io.shutdown().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server closes once the client's EOF arrives")
        .unwrap();
    assert!(matches!(reason, Error::SessionClosed { .. }), "{reason:?}");
}

/// A protocol violation followed by 1 MiB more input: the server ends the session with
/// GOAWAY(PROTOCOL_ERROR); the peer, still sending, must be able to read that GOAWAY and its
/// code. Without the lingering close the server closed with the peer's bytes unread, and the
/// RST destroyed the GOAWAY in the peer's receive buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_goaway_after_a_protocol_error_reaches_a_peer_still_sending() {
    const MORE: usize = 1 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let session = Session::server(tcp, Config::default()).unwrap();
        session.closed().await
    });
    let RawPeer {
        mut io,
        mut buf,
        mut decoder,
        ..
    } = raw_client(addr).await;
    // Frame type 0x9 is undefined: PROTOCOL_ERROR (§10 V5). Then 1 MiB the server no longer
    // examines, all written before the peer reads anything, as a busy uploader would.
    let mut input = vec![9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    input.resize(input.len() + MORE, 0);
    let wrote = io.write_all(&input).await;
    let _ = io.shutdown().await;
    let mut goaway = None;
    let read = async {
        loop {
            while let Some(frame) = decoder.decode(&mut buf).expect("valid frames") {
                if let Frame::GoAway { code, .. } = frame {
                    goaway = Some(code);
                }
            }
            if io.read_buf(&mut buf).await? == 0 {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    let read = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server closes after the peer's EOF");
    assert_eq!(
        goaway,
        Some(ErrorCode::PROTOCOL_ERROR),
        "the GOAWAY was destroyed: write {wrote:?}, read {read:?}"
    );
    read.expect("the server's EOF, not a reset");
    wrote.expect("the server drained what we sent");
    let reason = server.await.unwrap();
    assert_eq!(reason.code(), Some(ErrorCode::PROTOCOL_ERROR), "{reason:?}");
}

/// `close()` completes only once the GOAWAY is handed to the transport and the write side is
/// shut down: right after it returns, with no other task run in between, the peer can read
/// the GOAWAY and then EOF. (It used to return before the driver had written anything, so a
/// program returning from `main` after `close().await` lost the GOAWAY.)
#[tokio::test]
async fn close_returns_once_the_goaway_is_out_and_the_write_side_shut() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let client = Session::client(a, Config::default()).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    client.close().await;
    // Read what is already in the pipe, without yielding to the driver.
    let mut goaway = None;
    let mut eof = false;
    loop {
        while let Some(frame) = peer.decoder.decode(&mut peer.buf).unwrap() {
            if let Frame::GoAway { code, .. } = frame {
                goaway = Some(code);
            }
        }
        use futures::FutureExt;
        match peer.io.read_buf(&mut peer.buf).now_or_never() {
            Some(Ok(0)) => {
                eof = true;
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
    }
    assert_eq!(goaway, Some(ErrorCode::NO_ERROR), "GOAWAY written by then");
    assert!(eof, "write side shut down by then");
    // The drain ends at our EOF, and `closed` reports why the session ended.
    peer.io.shutdown().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .expect("closed after the peer's EOF");
    assert!(
        matches!(
            reason,
            Error::SessionClosed {
                code: ErrorCode::NO_ERROR,
                by: braid::Side::Local,
                ..
            }
        ),
        "{reason:?}"
    );
}

/// Dropping the last handle inside a runtime that is about to stop: the driver never runs
/// again, but the GOAWAY still goes out (written once, without waiting, as the driver is
/// dropped), so the peer sees a graceful end rather than a transport closed without GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_as_the_runtime_stops_still_sends_the_goaway() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let client = Session::client(tcp, Config::default()).unwrap();
            client.ping().await.unwrap(); // the handshake is done
            drop(client); // GOAWAY queued; the driver gets no further turn
        });
        drop(rt);
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let server = Session::server(tcp, Config::default()).unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), server.closed())
        .await
        .expect("the server's session ends");
    client_thread.join().unwrap();
    assert!(
        matches!(
            reason,
            Error::SessionClosed {
                code: ErrorCode::NO_ERROR,
                by: braid::Side::Remote,
                ..
            }
        ),
        "{reason:?}"
    );
}

/// The drain is bounded (L22): a peer that never closes its side keeps an ended session's
/// transport open for `close_drain_timeout`, not longer (paused clock, in-memory pipe).
#[tokio::test(start_paused = true)]
async fn the_drain_ends_at_close_drain_timeout_when_the_peer_never_closes() {
    const DRAIN: Duration = Duration::from_secs(7);
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config::default().with_close_drain_timeout(DRAIN);
    let client = Session::client(a, config).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    client.close().await;
    let shut = tokio::time::Instant::now();
    // The peer keeps its side open (and never sends EOF): only the deadline ends the drain.
    let reason = tokio::time::timeout(Duration::from_secs(60), client.closed())
        .await
        .expect("the drain is bounded");
    assert_eq!(shut.elapsed(), DRAIN);
    assert!(matches!(reason, Error::SessionClosed { .. }), "{reason:?}");
    drop(peer);
}
