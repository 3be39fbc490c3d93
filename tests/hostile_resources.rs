//! Hostile peers that try to make a session hold resources (issue rows 5, 6, 13, 14, 16, 17,
//! 19, 21; spec §5.1, §6, §7, §11, §12): accept backlog, unacknowledged opens, a peer that
//! grants credit but never reads, data dribble, frames for closed streams, linger, id-space
//! exhaustion and a stalled stream. Row 8 (heap per byte and per idle stream) is in
//! `hostile_memory.rs`, which needs its own global allocator.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::SeqCst},
        Arc,
    },
    time::Duration,
};

use braid::{
    frame::{ErrorCode, Flags, Frame, Preface, MAX_WINDOW},
    Config, Error, TimeoutKind,
};
use bytes::Bytes;
use hostile::{
    client_and_raw, data_frame, ping, quiet, recv_until, server_and_raw, settle, spawn_flood,
    split, syn, sync, FOREVER,
};
use support::raw::default_preface;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};

/// Asserts `err` (from a stream read or write) carries `Error::Timeout(kind)`.
fn assert_timeout(err: &std::io::Error, kind: TimeoutKind) {
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(
        matches!(Error::from_io(err), Some(Error::Timeout(k)) if *k == kind),
        "expected Timeout({kind:?}), got {err:?}"
    );
}

/// row 5: a peer opens streams faster than the application accepts: the accept backlog is
/// bounded, every SYN beyond it is refused with RESET(BACKLOG_FULL), and the session tracks
/// no more streams than the backlog holds.
#[tokio::test]
async fn row5_opens_beyond_the_accept_backlog_are_refused() {
    const BACKLOG: u32 = 16;
    const SYNS: u64 = 2_000;
    let config = quiet(
        Config::default()
            .with_accept_backlog(BACKLOG)
            .with_max_local_resets(u32::MAX),
    );
    let (server, peer) = server_and_raw(config, 64 * 1024).await;
    let (mut reader, wr) = split(peer);
    let flood = spawn_flood(wr, SYNS, 16, Arc::default(), |i| {
        syn(2 * i as u32 + 1, b"request")
    });
    let mut next = 2 * BACKLOG + 1;
    let mut max_tracked = 0;
    while next < 2 * SYNS as u32 {
        match reader.recv().await.expect("session ended") {
            Frame::Reset { stream, code } => {
                assert_eq!((stream, code), (next, ErrorCode::BACKLOG_FULL));
                next += 2;
            }
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
        max_tracked = max_tracked.max(server.stats().tracked_streams);
    }
    flood.await.unwrap();
    let stats = server.stats();
    assert!(
        max_tracked <= BACKLOG as usize,
        "{max_tracked} streams tracked"
    );
    assert_eq!(
        (stats.backlog, stats.tracked_streams),
        (BACKLOG as usize, BACKLOG as usize)
    );
    assert_eq!(
        stats.recv_buffered,
        BACKLOG as usize * 7,
        "refused payloads are not kept"
    );
    for k in 0..BACKLOG {
        let mut s = server.accept().await.unwrap();
        assert_eq!(s.id(), 2 * k + 1);
        let mut got = [0u8; 7];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"request");
    }
    assert!(server.closed_reason().is_none());
}

/// row 6: a peer (posing as server, accept_backlog = 4 in its preface) never acknowledges our
/// opens. The 5th `open()` waits; after `open_timeout` the four streams fail with
/// Timeout(Open) for reads and writes, RESET(TIMEOUT) appears on the wire for each, and the
/// waiting open proceeds. Each timeout RESET counts against max_local_resets (spec §11 L16).
#[tokio::test(start_paused = true)]
async fn row6_unacknowledged_opens_time_out_and_free_their_slots() {
    const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
    let config = quiet(Config::default().with_open_timeout(OPEN_TIMEOUT));
    let preface = Preface {
        accept_backlog: 4,
        ..default_preface()
    };
    let (client, mut peer) = client_and_raw(config, preface, 1 << 20).await;
    let started = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut s = client.open().await.unwrap();
        s.write_all(b"hello").await.unwrap();
        streams.push(s);
    }
    let fifth = tokio::spawn({
        let client = client.clone();
        async move { client.open().await }
    });
    let mut syns = Vec::new();
    while syns.len() < 4 {
        match peer.recv().await.expect("session ended") {
            Frame::Data { stream, flags, .. } if flags.contains(Flags::SYN) => syns.push(stream),
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(syns, [1, 3, 5, 7]);
    settle("fifth open waits", || fifth.is_finished()).await;
    assert!(
        !fifth.is_finished(),
        "the 5th open must wait for an ACK or a timeout"
    );
    assert_eq!(Instant::now(), started, "no time passed yet");

    // Nothing more: the clock runs to the open timeout.
    let mut resets = Vec::new();
    while resets.len() < 4 {
        match support::guard("RESET(TIMEOUT)", peer.recv())
            .await
            .expect("session ended")
        {
            Frame::Reset { stream, code } => {
                assert_eq!(code, ErrorCode::TIMEOUT);
                resets.push(stream);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(resets, [1, 3, 5, 7]);
    assert_eq!(started.elapsed(), OPEN_TIMEOUT);
    for s in &mut streams {
        assert_timeout(&s.read(&mut [0u8; 8]).await.unwrap_err(), TimeoutKind::Open);
        assert_timeout(&s.write_all(b"more").await.unwrap_err(), TimeoutKind::Open);
    }
    let mut s5 = support::guard("fifth open", fifth).await.unwrap().unwrap();
    assert_eq!(s5.id(), 9);
    s5.write_all(b"x").await.unwrap();
    match peer.recv().await.expect("session ended") {
        Frame::Data {
            stream: 9, flags, ..
        } => assert!(flags.contains(Flags::SYN)),
        other => panic!("unexpected {other:?}"),
    }
    let stats = client.stats();
    assert_eq!(stats.outbound_streams, 1);
    assert_eq!(
        stats.local_resets, 4,
        "open timeouts count as locally generated resets (spec §11 L16)"
    );
    assert!(client.closed_reason().is_none());
}

/// Writes `total` bytes to `s` in 16 KiB writes, counting accepted bytes in `progress`.
fn spawn_writer(
    mut s: braid::Stream,
    total: usize,
    progress: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let chunk = vec![0x5a; 16 * 1024];
        let mut left = total;
        while left > 0 {
            let n = s.write(&chunk[..left.min(chunk.len())]).await?;
            left -= n;
            progress.fetch_add(n as u64, SeqCst);
        }
        s.shutdown().await
    })
}

/// row 13: the peer grants huge windows (2^31-1) but never reads the transport. Unsent data is
/// capped per stream (stream_send_buffer) and per session (session_send_buffer), writers
/// block, and after `write_timeout` the session fails with Timeout(Write) and every writer
/// gets that error.
#[tokio::test(start_paused = true)]
async fn row13_peer_that_grants_credit_but_never_reads() {
    const STREAM_BUF: u32 = 64 * 1024;
    const SESSION_BUF: u32 = 256 * 1024;
    const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
    const PER_WRITER: usize = 8 << 20;
    let config = quiet(
        Config::default()
            .with_stream_send_buffer(STREAM_BUF)
            .with_session_send_buffer(SESSION_BUF)
            .with_write_timeout(WRITE_TIMEOUT)
            .with_open_timeout(FOREVER),
    );
    let preface = Preface {
        initial_stream_window: MAX_WINDOW,
        session_window: MAX_WINDOW,
        ..default_preface()
    };
    // The peer sends its preface, reads ours, and from then on reads nothing.
    let (client, peer) = client_and_raw(config, preface, 64 * 1024).await;

    let progress: Vec<Arc<AtomicU64>> = (0..8).map(|_| Arc::default()).collect();
    let total = |p: &[Arc<AtomicU64>]| p.iter().map(|a| a.load(SeqCst)).sum::<u64>();
    let mut writers = vec![spawn_writer(
        client.open().await.unwrap(),
        PER_WRITER,
        progress[0].clone(),
    )];
    let (written, buffered) = settle("one writer blocks", || {
        (total(&progress), client.stats().send_buffered)
    })
    .await;
    eprintln!("row 13: one stream: {written} bytes written, {buffered} unsent");
    assert!(
        buffered <= STREAM_BUF as usize,
        "{buffered} bytes buffered on one stream"
    );
    assert!(
        written < PER_WRITER as u64 / 4,
        "writer never blocked: {written}"
    );

    for p in &progress[1..] {
        writers.push(spawn_writer(
            client.open().await.unwrap(),
            PER_WRITER,
            p.clone(),
        ));
    }
    let (written, buffered) = settle("all writers block", || {
        (total(&progress), client.stats().send_buffered)
    })
    .await;
    eprintln!("row 13: eight streams: {written} bytes written, {buffered} unsent");
    assert!(
        buffered <= SESSION_BUF as usize,
        "{buffered} bytes buffered in the session"
    );
    assert!(written < 2 << 20, "writers never blocked: {written}");
    assert!(writers.iter().all(|w| !w.is_finished()));
    assert!(client.closed_reason().is_none());

    let stalled = Instant::now();
    for w in writers {
        let err = support::guard("writer fails", w)
            .await
            .unwrap()
            .unwrap_err();
        assert_timeout(&err, TimeoutKind::Write);
    }
    assert_eq!(stalled.elapsed(), WRITE_TIMEOUT);
    assert!(matches!(
        client.closed_reason(),
        Some(Error::Timeout(TimeoutKind::Write))
    ));
    assert_eq!(client.stats().send_buffered, 0);
    drop(peer);
}

/// Reads DATA frames of stream 1 until `bytes` payload bytes arrived; returns the sizes of the
/// frames, answering PINGs.
async fn read_data(peer: &mut support::raw::RawPeer, bytes: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut got = 0;
    while got < bytes {
        match support::guard("DATA", peer.recv())
            .await
            .expect("session ended")
        {
            Frame::Data {
                stream: 1, payload, ..
            } => {
                got += payload.len();
                sizes.push(payload.len());
            }
            Frame::Ping { ack: false, opaque } => {
                peer.send(Frame::Ping { ack: true, opaque }).await
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    sizes
}

/// Data frame sizes of stream 1 among `frames` (anything else but PINGs is unexpected).
fn data_sizes(frames: &[Frame]) -> Vec<usize> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data {
                stream: 1, payload, ..
            } => Some(payload.len()),
            Frame::Ping { .. } => None,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Runs a dribble: the client has `TOTAL` bytes to send on stream 1; once the peer's initial
/// windows (`window` for the stream, `session_window`) are used up, the peer grants `GRANTS`
/// bytes of credit one byte per WINDOW_UPDATE on stream `dribbled` (1, or 0 for the session
/// window, in which case the stream gets its credit in one piece), each followed by a PING
/// round trip so the session acts on every single byte. Checks frames per byte, then lets
/// the rest through.
async fn dribble(window: u32, session_window: u32, dribbled: u32) {
    const TOTAL: usize = 256 * 1024;
    const GRANTS: u32 = 3 * 4096;
    let preface = Preface {
        initial_stream_window: window,
        session_window,
        ..default_preface()
    };
    let min_chunk = (window / 4).min(4096) as usize;
    let (client, mut peer) = client_and_raw(quiet(Config::default()), preface, 1 << 20).await;
    let mut s = client.open().await.unwrap();
    let payload = support::data(14, TOTAL);
    let writer = tokio::spawn({
        let payload = payload.clone();
        async move {
            s.write_all(&payload).await.unwrap();
            s.shutdown().await.unwrap();
            s
        }
    });
    let initial = window.min(session_window) as usize;
    assert_eq!(
        read_data(&mut peer, initial).await.iter().sum::<usize>(),
        initial
    );
    peer.send(data_frame(1, Flags::ACK, Bytes::new())).await;
    if dribbled == 0 {
        peer.send(Frame::WindowUpdate {
            stream: 1,
            increment: GRANTS,
        })
        .await;
    }
    let mut sizes = Vec::new();
    for i in 1..=GRANTS as u64 {
        let grant = Frame::WindowUpdate {
            stream: dribbled,
            increment: 1,
        };
        peer.try_send_all(&[grant, ping(i)]).await.unwrap();
        let frames = recv_until(&mut peer, "PING reply", |f| {
            matches!(f, Frame::Ping { ack: true, .. })
        })
        .await;
        sizes.extend(data_sizes(&frames[..frames.len() - 1]));
    }
    sizes.extend(data_sizes(&sync(&mut peer, 0).await));
    let bytes: usize = sizes.iter().sum();
    eprintln!(
        "row 14 (dribbling {}): {GRANTS} one-byte grants -> {} DATA frames, {bytes} bytes",
        if dribbled == 0 {
            "the session window"
        } else {
            "the stream window"
        },
        sizes.len()
    );
    assert_eq!(bytes, GRANTS as usize, "every granted byte is used");
    assert!(
        sizes.iter().all(|n| *n >= min_chunk),
        "frames smaller than min(peer window/4, 4 KiB) = {min_chunk}: {} frames, smallest {:?}",
        sizes.len(),
        sizes.iter().min()
    );
    assert!(sizes.len() <= GRANTS as usize / min_chunk);

    // Grant the rest in one piece: everything arrives, in order.
    let rest = TOTAL - initial - bytes;
    peer.try_send_all(&[
        Frame::WindowUpdate {
            stream: 1,
            increment: rest as u32,
        },
        Frame::WindowUpdate {
            stream: 0,
            increment: rest as u32,
        },
    ])
    .await
    .unwrap();
    let mut got = Vec::new();
    loop {
        match support::guard("rest", peer.recv())
            .await
            .expect("session ended")
        {
            Frame::Data {
                stream: 1,
                flags,
                payload,
            } => {
                got.extend_from_slice(&payload);
                if flags.contains(Flags::FIN) {
                    break;
                }
            }
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got.len(), rest);
    assert!(got[..] == payload[TOTAL - rest..]);
    drop(writer.await.unwrap());
    assert!(client.closed_reason().is_none());
}

/// row 14: data dribble (CVE-2019-9511): the peer opens the stream window one byte at a time
/// while the session has much to send. The session must not answer with a tiny frame per
/// byte: it waits until credit reaches min(buffered, peer initial window/4, 4 KiB).
#[tokio::test]
async fn row14_stream_window_dribble_gets_no_tiny_frames() {
    dribble(64 * 1024, 64 << 20, 1).await;
}

/// row 14, session-window variant: the same dribble through WINDOW_UPDATE(0, 1) while the
/// stream itself has plenty of credit.
#[tokio::test]
async fn row14_session_window_dribble_gets_no_tiny_frames() {
    dribble(16 * 1024, 16 * 1024, 0).await;
}

/// row 16: frames for streams we reset or closed are discarded without buffering or a reply
/// (the session stays up), and the memory of closed ids stays within closed_stream_memory
/// after 10,000 closed streams; frames for forgotten ids are discarded too.
#[tokio::test]
async fn row16_frames_for_closed_streams_are_discarded() {
    const MEMORY: u32 = 64;
    const STREAMS: u32 = 10_000;
    let config = quiet(Config::default().with_closed_stream_memory(MEMORY));
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    let app_code = ErrorCode(0x200);

    // Stream 1: the application resets it.
    peer.send(syn(1, b"abc")).await;
    let mut s = server.accept().await.unwrap();
    s.reset(app_code);
    drop(s);
    let replies = recv_until(&mut peer, "RESET", |f| matches!(f, Frame::Reset { .. })).await;
    assert!(
        matches!(replies[..], [Frame::Reset { stream: 1, code }] if code == app_code),
        "{replies:?}"
    );

    // Stream 3: closed cleanly both ways.
    peer.send(data_frame(
        3,
        Flags::SYN.union(Flags::FIN),
        Bytes::from_static(b"q"),
    ))
    .await;
    let mut s = server.accept().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    s.write_all(b"a").await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    recv_until(
        &mut peer,
        "FIN",
        |f| matches!(f, Frame::Data { stream: 3, flags, .. } if flags.contains(Flags::FIN)),
    )
    .await;
    sync(&mut peer, 2).await;

    let late = |stream: u32, with_data: bool| {
        let mut frames = vec![
            Frame::WindowUpdate {
                stream,
                increment: 100,
            },
            Frame::StopSending {
                stream,
                code: ErrorCode::CANCEL,
            },
            Frame::Reset {
                stream,
                code: ErrorCode::CANCEL,
            },
        ];
        if with_data {
            frames.insert(
                0,
                data_frame(stream, Flags::NONE, Bytes::from(vec![7u8; 1000])),
            );
            frames.insert(
                1,
                data_frame(stream, Flags::FIN, Bytes::from(vec![7u8; 10])),
            );
        }
        frames
    };
    let before = server.stats();
    let mut frames = late(1, true); // in flight when we reset: DATA is discarded
    frames.extend(late(3, false)); // DATA here would be after the peer's FIN: only control
    peer.try_send_all(&frames).await.unwrap();
    let replies = sync(&mut peer, 3).await;
    assert!(replies.is_empty(), "late frames get no reply: {replies:?}");
    let after = server.stats();
    assert_eq!(
        after.frames_sent,
        before.frames_sent + 1,
        "only the PING reply"
    );
    assert_eq!((after.tracked_streams, after.recv_buffered), (0, 0));
    assert_eq!(after.bytes_received, before.bytes_received + 1010);
    assert!(server.closed_reason().is_none());

    // 10,000 more streams, each closed cleanly.
    let acceptor = tokio::spawn({
        let server = server.clone();
        async move {
            for _ in 0..STREAMS {
                let mut s = server.accept().await.unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                s.shutdown().await.unwrap();
            }
        }
    });
    let mut id = 5;
    let mut max_remembered = 0;
    for batch in 0..STREAMS / 100 {
        let syns: Vec<Frame> = (0..100)
            .map(|k| {
                data_frame(
                    id + 2 * k,
                    Flags::SYN.union(Flags::FIN),
                    Bytes::from_static(b"z"),
                )
            })
            .collect();
        id += 200;
        peer.try_send_all(&syns).await.unwrap();
        let mut fins = 0;
        while fins < 100 {
            match peer.recv().await.expect("session ended") {
                Frame::Data { flags, .. } if flags.contains(Flags::FIN) => fins += 1,
                Frame::Data { .. } => {}
                Frame::Ping { ack: false, opaque } => {
                    peer.send(Frame::Ping { ack: true, opaque }).await
                }
                other => panic!("unexpected {other:?} in batch {batch}"),
            }
        }
        max_remembered = max_remembered.max(server.stats().remembered_closed);
    }
    acceptor.await.unwrap();
    sync(&mut peer, 4).await;
    let stats = server.stats();
    assert_eq!(stats.remembered_closed, MEMORY as usize);
    assert!(
        max_remembered <= MEMORY as usize,
        "{max_remembered} ids remembered"
    );
    assert_eq!(stats.tracked_streams, 0);

    // Ids 1 and 3 are long forgotten; the newest is remembered. Late frames: no reply.
    let before = server.stats();
    let mut frames = late(1, true);
    frames.extend(late(3, true));
    frames.extend(late(id - 2, false));
    peer.try_send_all(&frames).await.unwrap();
    let replies = sync(&mut peer, 5).await;
    assert!(replies.is_empty(), "late frames get no reply: {replies:?}");
    let after = server.stats();
    assert_eq!(after.frames_sent, before.frames_sent + 1);
    assert_eq!((after.tracked_streams, after.recv_buffered), (0, 0));
    assert!(server.closed_reason().is_none());
}

/// row 17: we half-closed, the peer never finishes: after the application drops its finished
/// stream, `linger_timeout` frees it (RESET(TIMEOUT) on the wire, tracked_streams back to 0).
#[tokio::test(start_paused = true)]
async fn row17_linger_timeout_frees_a_stream_the_peer_never_finishes() {
    const LINGER: Duration = Duration::from_secs(10);
    let config = quiet(Config::default().with_linger_timeout(LINGER));
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    peer.send(syn(1, b"hi")).await;
    let mut s = server.accept().await.unwrap();
    let mut got = [0u8; 2];
    s.read_exact(&mut got).await.unwrap();
    s.write_all(b"bye").await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    let dropped = Instant::now();
    assert_eq!(server.stats().tracked_streams, 1);

    let mut reply = Vec::new();
    let mut fin = false;
    let mut stopped = false;
    loop {
        match support::guard("RESET(TIMEOUT)", peer.recv())
            .await
            .expect("session ended")
        {
            Frame::Data {
                stream: 1,
                flags,
                payload,
            } => {
                reply.extend_from_slice(&payload);
                fin |= flags.contains(Flags::FIN);
            }
            Frame::StopSending { stream: 1, code } => {
                assert_eq!(code, ErrorCode::CANCEL);
                stopped = true;
            }
            Frame::Reset { stream: 1, code } => {
                assert_eq!(code, ErrorCode::TIMEOUT);
                break;
            }
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(reply, b"bye");
    assert!(
        fin && stopped,
        "FIN and STOP_SENDING(CANCEL) precede the timeout"
    );
    assert_eq!(dropped.elapsed(), LINGER);
    let stats = server.stats();
    assert_eq!((stats.tracked_streams, stats.open_streams), (0, 0));
    assert_eq!(
        stats.local_resets, 1,
        "linger timeouts count as locally generated resets (spec §11 L16)"
    );
    assert!(server.closed_reason().is_none());
}

// Row 19 (stream ids exhausted) is a unit test in src/proto/core.rs: it needs a core
// whose next id is near the end of the id space, which no public call can set.

/// row 21: one stream is never read: every other stream keeps moving. A second stream carries
/// 64 MiB while the first is stalled with a full window (assert completion, not speed).
#[tokio::test]
async fn row21_a_stalled_stream_does_not_stall_the_others() {
    const BULK: usize = 64 << 20;
    let (client, server) = support::duplex_pair(1 << 20, Config::default(), Config::default());

    let stalled_progress = Arc::new(AtomicU64::new(0));
    let stalled_writer = spawn_writer(
        client.open().await.unwrap(),
        16 << 20,
        stalled_progress.clone(),
    );
    let stalled = server.accept().await.unwrap(); // accepted, never read
    assert_eq!(stalled.id(), 1);

    let pattern = Bytes::from(support::data(21, 1 << 20));
    let mut bulk = client.open().await.unwrap();
    let writer = tokio::spawn({
        let pattern = pattern.clone();
        async move {
            for _ in 0..BULK / pattern.len() {
                bulk.write_all(&pattern).await?;
            }
            bulk.shutdown().await?;
            Ok::<_, std::io::Error>(bulk)
        }
    });
    let mut reader = server.accept().await.unwrap();
    assert_eq!(reader.id(), 3);
    let mut buf = vec![0u8; 256 * 1024];
    let mut off = 0;
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        let mut k = 0;
        while k < n {
            let at = (off + k) % pattern.len();
            let m = (n - k).min(pattern.len() - at);
            assert!(
                buf[k..k + m] == pattern[at..at + m],
                "corrupt at offset {}",
                off + k
            );
            k += m;
        }
        off += n;
    }
    assert_eq!(off, BULK);
    writer.await.unwrap().unwrap();

    assert!(
        !stalled_writer.is_finished(),
        "the stalled stream's writer is still blocked"
    );
    let stats = server.stats();
    let window = Config::default().initial_stream_window as usize;
    assert_eq!(
        stats.recv_buffered, window,
        "the stalled stream holds one window"
    );
    assert!(stalled_progress.load(SeqCst) < 4 << 20);
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
    drop(stalled);
}
