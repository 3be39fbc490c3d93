//! Aborting streams: either side's `reset(code)` fails the peer's pending read and write with
//! `StreamReset { code, by: Remote }`; dropping a `Stream` without `shutdown()` resets it with
//! CANCEL (the peer sees an error, never EOF), while dropping after `shutdown()` still
//! delivers every byte then EOF; `RecvStream::stop(code)` fails the peer's writes with
//! `StreamStopped { code }` while the other direction keeps working.

mod support;

use std::io::ErrorKind;

use braid::{Config, Error, ErrorCode, Session, Side, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

fn pipe() -> (Session, Session) {
    support::duplex_pair(64 * 1024, Config::default(), Config::default())
}

/// A stream opened by the client and accepted by the server: (client end, server end).
async fn stream_pair(client: &Session, server: &Session) -> (Stream, Stream) {
    let c = client.open().await.expect("open");
    let s = support::guard("accept", server.accept())
        .await
        .expect("accept");
    (c, s)
}

/// Waits (on the paused clock) until the server's ACK of every open has arrived: an accepted
/// stream's ACK is held for up to `ACK_DELAY` to ride on a reply (spec §6.1).
async fn acknowledged(client: &Session) {
    support::guard("ACK", async {
        while client.stats().unacked_opens > 0 {
            tokio::time::sleep(braid::proto::ACK_DELAY).await;
        }
    })
    .await;
}

/// The victim has a read and a write pending (no data; more than window + send buffer to
/// write) when the other side resets: both fail with the code, by the remote side, and the
/// resetter's own operations fail with the same code, by the local side.
async fn reset_fails_pending_ops(client_resets: bool, code: ErrorCode) {
    let (client, server) = pipe();
    let (c, s) = stream_pair(&client, &server).await;
    let ((mut resetter, resetter_session), (victim, victim_session)) = if client_resets {
        ((c, &client), (s, &server))
    } else {
        ((s, &server), (c, &client))
    };
    let (mut v_rx, mut v_tx) = victim.into_split();
    let big = vec![1u8; 2 * MIB];
    let mut buf = [0u8; 64];
    let mut read = Box::pin(v_rx.read(&mut buf));
    let mut write = Box::pin(v_tx.write_all(&big));
    assert!(
        support::poll_once(&mut read).await.is_pending(),
        "read should wait for data"
    );
    assert!(
        support::poll_once(&mut write).await.is_pending(),
        "write should wait for credit"
    );

    resetter.reset(code);
    let (r, w) = support::guard("pending ops after reset", async {
        tokio::join!(read, write)
    })
    .await;
    support::assert_reset(&r.expect_err("read after reset"), code, Side::Remote);
    support::assert_reset(&w.expect_err("write after reset"), code, Side::Remote);

    // Later calls keep failing the same way: never a clean EOF.
    support::assert_reset(&v_rx.read(&mut buf).await.unwrap_err(), code, Side::Remote);
    support::assert_reset(&v_tx.write(b"x").await.unwrap_err(), code, Side::Remote);
    support::assert_reset(
        &resetter.read(&mut buf).await.unwrap_err(),
        code,
        Side::Local,
    );
    support::assert_reset(&resetter.write(b"x").await.unwrap_err(), code, Side::Local);

    // The stream is closed on both sides; the session goes on.
    assert_eq!(resetter_session.stats().open_streams, 0);
    assert_eq!(victim_session.stats().open_streams, 0);
    assert_eq!(
        victim_session.stats().send_buffered,
        0,
        "unsent bytes are discarded"
    );
    let (mut c2, mut s2) = stream_pair(&client, &server).await;
    c2.write_all(b"still alive").await.unwrap();
    c2.shutdown().await.unwrap();
    let mut out = Vec::new();
    support::guard("second stream", s2.read_to_end(&mut out))
        .await
        .unwrap();
    assert_eq!(out, b"still alive");
}

#[tokio::test(start_paused = true)]
async fn opener_reset_fails_acceptors_pending_read_and_write() {
    reset_fails_pending_ops(true, ErrorCode(0x1234)).await;
}

#[tokio::test(start_paused = true)]
async fn acceptor_reset_fails_openers_pending_read_and_write() {
    reset_fails_pending_ops(false, ErrorCode(0x1_0000)).await;
}

#[tokio::test(start_paused = true)]
async fn reset_with_a_braid_code() {
    reset_fails_pending_ops(true, ErrorCode::INTERNAL_ERROR).await;
}

/// Bytes that arrived but were not read when the RESET comes are discarded: the read fails.
#[tokio::test(start_paused = true)]
async fn reset_discards_unread_bytes() {
    let (client, server) = pipe();
    let (mut c, mut s) = stream_pair(&client, &server).await;
    c.write_all(&[9u8; 1000]).await.unwrap();
    support::until("bytes arrive", || server.stats().recv_buffered == 1000).await;
    c.reset(ErrorCode(0x42));
    support::until("the RESET arrives", || server.stats().open_streams == 0).await;
    assert_eq!(server.stats().recv_buffered, 0);
    let err = support::guard("read", s.read(&mut [0u8; 100]))
        .await
        .unwrap_err();
    support::assert_reset(&err, ErrorCode(0x42), Side::Remote);
    assert_eq!(server.stats().recv_buffered, 0);
}

/// Dropping a stream whose write side was not shut down resets it with CANCEL, whichever
/// side drops; the peer's read fails instead of seeing a (truncated) clean end.
async fn drop_without_shutdown(opener_drops: bool) {
    let (client, server) = pipe();
    let (c, s) = stream_pair(&client, &server).await;
    let (mut dropper, mut peer) = if opener_drops { (c, s) } else { (s, c) };
    let mut out = Vec::new();
    let mut peer_reads = Box::pin(peer.read_to_end(&mut out));
    assert!(support::poll_once(&mut peer_reads).await.is_pending());
    dropper.write_all(&support::data(1, 100_000)).await.unwrap();
    drop(dropper);
    let err = support::guard("peer read", peer_reads)
        .await
        .expect_err("the peer must not see EOF on a dropped, unfinished stream");
    support::assert_reset(&err, ErrorCode::CANCEL, Side::Remote);
    assert_eq!(client.stats().open_streams + server.stats().open_streams, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_opener_without_shutdown_resets_with_cancel() {
    drop_without_shutdown(true).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_acceptor_without_shutdown_resets_with_cancel() {
    drop_without_shutdown(false).await;
}

/// Dropping right after `shutdown()` still delivers every byte (more than window + send
/// buffer, so most are still queued at the drop), then EOF; the unread receive side tells the
/// peer to stop sending (STOP_SENDING(CANCEL)), and the stream is freed on both sides.
#[tokio::test(start_paused = true)]
async fn dropping_after_shutdown_delivers_everything_then_eof() {
    let (client, server) = pipe();
    let (mut c, mut s) = stream_pair(&client, &server).await;
    let payload = support::data(2, 3 * MIB);
    let receiver = tokio::spawn(async move {
        let got = support::read_hashed(&mut s, 3).await;
        (s, got)
    });
    c.write_all(&payload).await.unwrap();
    c.shutdown().await.unwrap();
    drop(c);
    assert!(
        client.stats().send_buffered > 0,
        "the drop should leave bytes queued"
    );

    let (mut s, got) = support::guard("receiver", receiver).await.unwrap();
    assert_eq!(
        got.expect("all bytes then EOF"),
        (payload.len(), support::hash(&payload))
    );
    let err = support::guard("write to a dropped peer", async {
        loop {
            if let Err(err) = s.write(&[0u8; 4096]).await {
                break err;
            }
        }
    })
    .await;
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    assert!(
        matches!(
            Error::from_io(&err),
            Some(Error::StreamStopped {
                code: ErrorCode::CANCEL
            })
        ),
        "{err}"
    );
    drop(s);
    support::until("both sides free the stream", || {
        client.stats().tracked_streams == 0 && server.stats().tracked_streams == 0
    })
    .await;
}

/// A stream dropped after `shutdown()` whose queued bytes the peer never reads can't finish:
/// after the linger timeout it is reset with TIMEOUT (paused clock), and the peer's read
/// fails instead of returning a truncated stream.
#[tokio::test(start_paused = true)]
async fn dropped_stream_the_peer_never_drains_is_reset_after_linger() {
    let (client, server) = pipe();
    let (mut c, mut s) = stream_pair(&client, &server).await;
    acknowledged(&client).await; // else the open timeout would fire first in the jump below
    c.write_all(&support::data(3, 400 * 1024)).await.unwrap();
    c.shutdown().await.unwrap();
    drop(c);
    let linger = Config::default().linger_timeout;
    tokio::time::advance(linger / 2).await;
    assert_eq!(client.stats().open_streams, 1, "lingering, not reset yet");
    tokio::time::advance(linger).await;
    support::until("the linger RESET arrives", || {
        server.stats().open_streams == 0
    })
    .await;
    let mut out = Vec::new();
    let err = s.read_to_end(&mut out).await.unwrap_err();
    support::assert_reset(&err, ErrorCode::TIMEOUT, Side::Remote);
    assert_eq!(client.stats().tracked_streams, 0);
}

/// `stop(code)` on one side's receive half: the peer's pending and later writes fail with
/// `StreamStopped { code }`, and the opposite direction still carries data to EOF.
async fn stop_fails_peer_writes(client_stops: bool) {
    let (client, server) = pipe();
    let (c, s) = stream_pair(&client, &server).await;
    let (stopper, stopper_session, peer) = if client_stops {
        (c, &client, s)
    } else {
        (s, &server, c)
    };
    let (mut stop_rx, mut stop_tx) = stopper.into_split();
    let (mut peer_rx, mut peer_tx) = peer.into_split();
    let code = ErrorCode(0x77);

    let big = vec![3u8; 2 * MIB];
    let mut write = Box::pin(peer_tx.write_all(&big));
    // The write goes on while the window fills (a large write queues only a quantum ahead
    // while it has credit, so it must be polled throughout).
    tokio::select! {
        biased;
        r = &mut write => panic!("a 2 MiB write into a 256 KiB window ended: {r:?}"),
        () = support::until("the window fills", || {
            stopper_session.stats().recv_buffered
                == Config::default().initial_stream_window as usize
        }) => {}
    }
    stop_rx.stop(code);
    assert_eq!(
        stopper_session.stats().recv_buffered,
        0,
        "stop discards buffered bytes"
    );

    let err = support::guard("pending write after stop", write)
        .await
        .expect_err("stopped");
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    assert!(
        matches!(Error::from_io(&err), Some(Error::StreamStopped { code: c }) if *c == code),
        "{err}"
    );
    let err = peer_tx.write(b"more").await.expect_err("later write");
    assert!(
        matches!(Error::from_io(&err), Some(Error::StreamStopped { code: c }) if *c == code),
        "{err}"
    );

    // The stopper's direction is unaffected.
    let payload = support::data(4, MIB);
    let (w, r) = support::guard("other direction", async {
        tokio::join!(
            support::write_random_chunks(&mut stop_tx, &payload, 5),
            support::read_hashed(&mut peer_rx, 6)
        )
    })
    .await;
    w.expect("stopper still writes");
    assert_eq!(r.expect("peer still reads"), (MIB, support::hash(&payload)));
    assert_eq!(client.stats().open_streams + server.stats().open_streams, 0);
}

#[tokio::test(start_paused = true)]
async fn stop_by_acceptor_fails_openers_writes() {
    stop_fails_peer_writes(false).await;
}

#[tokio::test(start_paused = true)]
async fn stop_by_opener_fails_acceptors_writes() {
    stop_fails_peer_writes(true).await;
}

/// `stop()` on a stream whose SYN is not on the wire yet, while an earlier stream's SYN is
/// also still queued: the SYNs must still go out in id order (spec §5.1), and both streams
/// work.
#[tokio::test(start_paused = true)]
async fn stop_before_the_syns_are_sent_keeps_id_order() {
    let (client, server) = pipe();
    support::guard("ping", client.ping()).await.unwrap();
    let mut a = client.open().await.unwrap();
    let (mut b_rx, mut b_tx) = client.open().await.unwrap().into_split();
    b_rx.stop(ErrorCode(5));
    for (tx, msg) in [
        (&mut a as &mut (dyn tokio::io::AsyncWrite + Unpin), b"a"),
        (&mut b_tx, b"b"),
    ] {
        tx.write_all(msg).await.unwrap();
        tx.shutdown().await.unwrap();
    }
    for msg in [b"a", b"b"] {
        let mut s = support::guard("accept", server.accept()).await.unwrap();
        let mut got = Vec::new();
        support::guard("read", s.read_to_end(&mut got))
            .await
            .unwrap();
        assert_eq!(got, msg);
    }
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
}

/// After `stop(code)` the reader never sees a clean end, not even once the peer's answering
/// FIN arrived: bytes were discarded, so every read fails with the local stop code.
#[tokio::test]
async fn reads_after_stop_fail_with_the_stop_code_even_after_the_peers_fin() {
    let (client, server) = pipe();
    let (a, b) = stream_pair(&client, &server).await;
    let (mut a_rx, mut a_tx) = a.into_split();
    let (_b_rx, mut b_tx) = b.into_split();
    b_tx.write_all(b"discarded").await.unwrap();
    a_rx.stop(ErrorCode(0x77));
    // The peer's writer learns of the stop; its half ends with the answering FIN.
    let err = support::guard("peer write fails", async {
        loop {
            if let Err(e) = b_tx.write_all(b"more").await {
                break e;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        matches!(Error::from_io(&err), Some(braid::Error::StreamStopped { code }) if *code == ErrorCode(0x77))
    );
    // Once our FIN is out and the peer's FIN is in, the stream is closed on the wire.
    a_tx.finish().unwrap();
    support::until("both FINs exchanged", || client.stats().open_streams == 0).await;
    let mut buf = [0u8; 16];
    for _ in 0..3 {
        let err = a_rx.read(&mut buf).await.unwrap_err();
        support::assert_reset(&err, ErrorCode(0x77), Side::Local);
        tokio::task::yield_now().await;
    }
}
