//! Flow control: a stream whose reader stops stalls only that stream's writer, once its window
//! (plus its send buffer) is full; other streams on the session keep moving, and the receiver
//! never buffers more than the stalled windows allow (checked with `Session::stats`). Also:
//! a 1 KiB transport pipe, and both ends of one stream overfilling it at once.

mod support;

use std::{cell::Cell, future::Future, io, pin::Pin};

use braid::{Config, Session, Stream};
use futures::future::select_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

type Writer<'a> = Pin<Box<dyn Future<Output = io::Error> + 'a>>;

/// Writes `chunk` to `tx` forever, adding each accepted byte count to `accepted`; ends only
/// with the write error.
fn write_forever<'a, W: AsyncWriteExt + Unpin + 'a>(
    tx: &'a mut W,
    chunk: &'a [u8],
    accepted: &'a Cell<usize>,
) -> Writer<'a> {
    Box::pin(async move {
        loop {
            match tx.write(chunk).await {
                Ok(n) => accepted.set(accepted.get() + n),
                Err(err) => return err,
            }
        }
    })
}

async fn stream_pair(client: &Session, server: &Session) -> (Stream, Stream) {
    let c = client.open().await.expect("open");
    let s = support::guard("accept", server.accept())
        .await
        .expect("accept");
    (c, s)
}

/// `stalled` streams whose server side never reads are written to until they stop taking
/// bytes; then another stream moves `moving` bytes to completion while their writers stay
/// pending, and the server's buffered bytes stay within the windows throughout.
async fn stalled_streams_leave_others_moving(config: Config, stalled: usize, moving: usize) {
    let window = config.initial_stream_window as usize;
    let send_buf = config.stream_send_buffer as usize;
    let session_window = config.session_window as usize;
    let max_window = config.max_stream_window as usize;
    let (client, server) = support::duplex_pair(MIB, config.clone(), config);

    let mut senders = Vec::new();
    let mut held = Vec::new(); // kept alive, never read
    for _ in 0..stalled {
        let (c, s) = stream_pair(&client, &server).await;
        let (c_rx, c_tx) = c.into_split();
        senders.push(c_tx);
        held.push((c_rx, s));
    }
    let accepted: Vec<Cell<usize>> = (0..stalled).map(|_| Cell::new(0)).collect();
    let chunk = vec![0x5au8; MIB];
    let mut writers = select_all(
        senders
            .iter_mut()
            .zip(&accepted)
            .map(|(tx, n)| write_forever(tx, &chunk, n)),
    );

    // 1. The stalled writers fill their windows and send buffers, then stop.
    let filled = stalled * window;
    tokio::select! {
        biased;
        (err, i, _) = &mut writers => panic!("stalled writer {i} ended: {err}"),
        () = support::until("stalled windows fill", || {
            server.stats().recv_buffered == filled && client.stats().send_buffered == stalled * send_buf
        }) => {}
    }
    for (i, n) in accepted.iter().enumerate() {
        assert_eq!(
            n.get(),
            window + send_buf,
            "stalled writer {i} took more than window + send buffer"
        );
    }

    // 2. Another stream moves `moving` bytes while the stalled writers are polled throughout.
    let (mut b_c, mut b_s) = stream_pair(&client, &server).await;
    let payload = support::data(99, moving);
    let mut peak = 0;
    let transfer = async {
        let write = support::write_random_chunks(&mut b_c, &payload, 1);
        let read = async {
            let mut buf = vec![0u8; 64 * 1024];
            let (mut len, mut h) = (0, support::Hasher::default());
            loop {
                let n = b_s.read(&mut buf).await?;
                if n == 0 {
                    return io::Result::Ok((len, h.finish()));
                }
                len += n;
                h.update(&buf[..n]);
                let st = server.stats();
                peak = peak.max(st.recv_buffered);
                assert!(
                    st.recv_buffered <= filled + max_window,
                    "buffered beyond the windows: {st:?}"
                );
                assert!(
                    st.recv_buffered + st.session_recv_credit as usize <= session_window,
                    "{st:?}"
                );
            }
        };
        tokio::join!(write, read)
    };
    let (wrote, read) = tokio::select! {
        biased;
        (err, i, _) = &mut writers => panic!("stalled writer {i} ended: {err}"),
        r = transfer => r,
    };
    wrote.expect("moving stream: write");
    assert_eq!(
        read.expect("moving stream: read"),
        (moving, support::hash(&payload))
    );
    assert!(peak >= filled, "stalled bytes were not buffered meanwhile");

    // 3. The stalled writers are still pending and made no progress; buffers are unchanged.
    assert!(
        support::poll_once(&mut writers).await.is_pending(),
        "a stalled writer finished"
    );
    for (i, n) in accepted.iter().enumerate() {
        assert_eq!(n.get(), window + send_buf, "stalled writer {i} progressed");
    }
    let st = server.stats();
    assert_eq!(st.recv_buffered, filled, "{st:?}");
    assert!(
        st.recv_buffered + st.session_recv_credit as usize <= session_window,
        "{st:?}"
    );
    assert_eq!(client.stats().send_buffered, stalled * send_buf);
    support::guard("ping", client.ping())
        .await
        .expect("control frames still flow");

    // 4. Reading one stalled stream releases its writer (and only it).
    let (_, s0) = &mut held[0];
    let mut buf = vec![0u8; window];
    s0.read_exact(&mut buf)
        .await
        .expect("read the stalled window");
    assert!(buf.iter().all(|b| *b == 0x5a));
    tokio::select! {
        biased;
        (err, i, _) = &mut writers => panic!("stalled writer {i} ended: {err}"),
        () = support::until("first writer resumes", || accepted[0].get() > window + send_buf) => {}
    }
    for (i, n) in accepted.iter().enumerate().skip(1) {
        assert_eq!(n.get(), window + send_buf, "stalled writer {i} progressed");
    }
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
}

/// The largest windows a config allows next to a 1 GiB session window (which must be at least
/// 16 × the max stream window).
fn large_windows() -> Config {
    let c = Config::default()
        .with_initial_stream_window(64 << 20)
        .with_max_stream_window(64 << 20)
        .with_session_window(1 << 30);
    c.validate().expect("valid config");
    c
}

#[tokio::test]
async fn one_stalled_stream_default_windows() {
    stalled_streams_leave_others_moving(Config::default(), 1, 32 * MIB).await;
}

#[tokio::test]
async fn eight_stalled_streams_default_windows() {
    stalled_streams_leave_others_moving(Config::default(), 8, 32 * MIB).await;
}

#[tokio::test]
async fn one_stalled_stream_large_windows() {
    stalled_streams_leave_others_moving(large_windows(), 1, 32 * MIB).await;
}

#[tokio::test]
async fn eight_stalled_streams_large_windows() {
    stalled_streams_leave_others_moving(large_windows(), 8, 32 * MIB).await;
}

/// Spec §7.5: with session_window = 16 × max window, 15 stalled streams hold 15/16 of the
/// session window, and the last sixteenth still carries any amount of data.
#[tokio::test]
async fn fifteen_stalled_streams_leave_a_window_of_session_credit() {
    let c = Config::default()
        .with_initial_stream_window(64 * 1024)
        .with_max_stream_window(64 * 1024)
        .with_session_window(16 * 64 * 1024);
    c.validate().expect("valid config");
    stalled_streams_leave_others_moving(c, 15, 4 * MIB).await;
}

/// A transport pipe of 1 KiB: a 1 MiB echo with the client writing and reading at once.
#[tokio::test(start_paused = true)]
async fn one_kib_pipe_echo() {
    let (client, server) = support::duplex_pair(1024, Config::default(), Config::default());
    let (_accept_end, mut reports) = support::spawn_hashing_echo(server);
    let stream = client.open().await.unwrap();
    let payload = support::data(5, MIB);
    let (mut rx, mut tx) = stream.into_split();
    let (w, r) = support::guard("echo", async {
        tokio::join!(
            support::write_random_chunks(&mut tx, &payload, 5),
            support::read_hashed(&mut rx, 6)
        )
    })
    .await;
    w.expect("write");
    let expected = (MIB, support::hash(&payload));
    assert_eq!(r.expect("read"), expected);
    let report = reports.recv().await.expect("report");
    assert_eq!((report.len, report.hash), expected);
}

/// Both ends of one stream write more than its window without reading: only that stream
/// stalls; a second stream on the same session still echoes 1 MiB.
#[tokio::test(start_paused = true)]
async fn both_ends_overfilling_one_stream_stall_only_it() {
    let config = Config::default();
    let window = config.initial_stream_window as usize;
    let send_buf = config.stream_send_buffer as usize;
    let (client, server) = support::duplex_pair(64 * 1024, config.clone(), config);
    let (c, s) = stream_pair(&client, &server).await;
    let (_c_rx, mut c_tx) = c.into_split();
    let (_s_rx, mut s_tx) = s.into_split();
    let chunk = vec![7u8; 100_000];
    let (c_n, s_n) = (Cell::new(0), Cell::new(0));
    let mut writers = select_all([
        write_forever(&mut c_tx, &chunk, &c_n),
        write_forever(&mut s_tx, &chunk, &s_n),
    ]);

    tokio::select! {
        biased;
        (err, i, _) = &mut writers => panic!("writer {i} ended: {err}"),
        () = support::until("both directions fill", || {
            client.stats().recv_buffered == window && server.stats().recv_buffered == window
                && client.stats().send_buffered == send_buf && server.stats().send_buffered == send_buf
        }) => {}
    }

    let (y_c, mut y_s) = stream_pair(&client, &server).await;
    let payload = support::data(6, MIB);
    let echo = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = y_s.read(&mut buf).await.expect("echo read");
            if n == 0 {
                break y_s.shutdown().await.expect("echo shutdown");
            }
            y_s.write_all(&buf[..n]).await.expect("echo write");
        }
    };
    let (mut y_rx, mut y_tx) = y_c.into_split();
    let client_side = async {
        let (w, r) = tokio::join!(
            support::write_random_chunks(&mut y_tx, &payload, 7),
            support::read_hashed(&mut y_rx, 8)
        );
        w.expect("write");
        r.expect("read echo")
    };
    let ((), echoed) = tokio::select! {
        biased;
        (err, i, _) = &mut writers => panic!("writer {i} ended: {err}"),
        r = async { tokio::join!(echo, client_side) } => r,
    };
    assert_eq!(echoed, (MIB, support::hash(&payload)));

    assert!(
        support::poll_once(&mut writers).await.is_pending(),
        "an overfilled writer finished"
    );
    assert_eq!(
        (c_n.get(), s_n.get()),
        (window + send_buf, window + send_buf)
    );
    assert_eq!(client.stats().recv_buffered, window);
    assert_eq!(server.stats().recv_buffered, window);
}
