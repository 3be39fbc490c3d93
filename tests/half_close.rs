//! Half-close: `shutdown()` / `finish()` end one direction only. The peer reads end-of-stream
//! after exactly the bytes sent, and the other direction keeps flowing until its own FIN.
//! Also the chunk API: `SendStream::send(Bytes)` + `finish()`, and `RecvStream::recv()`
//! returning `Some(..)` chunks then `None`.

mod support;

use std::io::ErrorKind;

use braid::{Config, Session, Stream};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pipe() -> (Session, Session) {
    support::duplex_pair(64 * 1024, Config::default(), Config::default())
}

/// Opens a stream and accepts it on the other side.
async fn stream_pair(client: &Session, server: &Session) -> (Stream, Stream) {
    let c = client.open().await.expect("open");
    let s = support::guard("accept", server.accept())
        .await
        .expect("accept");
    assert_eq!(c.id(), s.id());
    (c, s)
}

/// Request/response: the client writes, shuts down its write side, then reads the whole reply;
/// the server reads EOF after exactly the request, then replies and finishes.
async fn request_then_reply(client: Session, server: Session, req_len: usize, reply_len: usize) {
    let request = support::data(10, req_len);
    let reply = support::data(11, reply_len);
    let (mut c, mut s) = stream_pair(&client, &server).await;

    let server_side = async {
        let got = support::read_hashed(&mut s, 1)
            .await
            .expect("server reads the request");
        assert_eq!(got, (req_len, support::hash(&request)), "request differs");
        // EOF is sticky.
        assert_eq!(s.read(&mut [0u8; 16]).await.expect("read after EOF"), 0);
        // The server's direction is still open: reply, then finish.
        support::write_random_chunks(&mut s, &reply, 2)
            .await
            .expect("reply");
        s
    };
    let client_side = async {
        support::write_random_chunks(&mut c, &request, 3)
            .await
            .expect("request");
        // Writes after shutdown fail; reading goes on.
        let err = c.write(b"late").await.expect_err("write after shutdown");
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
        let got = support::read_hashed(&mut c, 4)
            .await
            .expect("client reads the reply");
        assert_eq!(got, (reply_len, support::hash(&reply)), "reply differs");
        assert_eq!(c.read(&mut [0u8; 16]).await.expect("read after EOF"), 0);
    };
    let (s, ()) = support::guard("request/reply", async {
        tokio::join!(server_side, client_side)
    })
    .await;

    // Both directions ended with FIN: the stream is closed on both sides.
    assert_eq!(client.stats().open_streams, 0);
    assert_eq!(server.stats().open_streams, 0);
    drop((c, s));
    assert_eq!(client.stats().tracked_streams, 0);
    assert_eq!(server.stats().tracked_streams, 0);
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
}

#[tokio::test(start_paused = true)]
async fn request_then_reply_small() {
    let (c, s) = pipe();
    request_then_reply(c, s, 5, 7).await;
}

/// Both directions larger than window + send buffer, so each side blocks on credit.
#[tokio::test(start_paused = true)]
async fn request_then_reply_beyond_windows() {
    let (c, s) = pipe();
    request_then_reply(c, s, 3 << 20, 2 << 20).await;
}

#[tokio::test]
async fn request_then_reply_tcp() {
    let (c, s) = support::tcp_pair(Config::default(), Config::default()).await;
    request_then_reply(c, s, 1 << 20, 1 << 20).await;
}

/// The acceptor finishes its direction first, before reading anything: the opener reads the
/// whole reply and EOF, then still sends its request, which the acceptor reads to EOF.
#[tokio::test(start_paused = true)]
async fn acceptor_finishes_first() {
    let (client, server) = pipe();
    let (mut c, mut s) = stream_pair(&client, &server).await;
    let reply = support::data(20, 700 * 1024);
    let request = support::data(21, 600 * 1024);

    let server_side = async {
        support::write_random_chunks(&mut s, &reply, 5)
            .await
            .expect("reply");
        let got = support::read_hashed(&mut s, 6).await.expect("server reads");
        assert_eq!(got, (request.len(), support::hash(&request)));
    };
    let client_side = async {
        let got = support::read_hashed(&mut c, 7).await.expect("client reads");
        assert_eq!(got, (reply.len(), support::hash(&reply)));
        support::write_random_chunks(&mut c, &request, 8)
            .await
            .expect("request");
    };
    support::guard("transfer", async { tokio::join!(server_side, client_side) }).await;
    assert_eq!(client.stats().open_streams + server.stats().open_streams, 0);
}

/// Shutting down before writing anything: the peer reads EOF at once and can still reply.
#[tokio::test(start_paused = true)]
async fn empty_direction() {
    let (client, server) = pipe();
    let mut c = client.open().await.unwrap();
    c.shutdown().await.unwrap();
    c.shutdown().await.expect("shutdown is idempotent");
    let mut s = support::guard("accept", server.accept()).await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(support::guard("read", s.read(&mut buf)).await.unwrap(), 0);
    s.write_all(b"reply").await.unwrap();
    s.finish().unwrap();
    let mut out = Vec::new();
    support::guard("read reply", c.read_to_end(&mut out))
        .await
        .unwrap();
    assert_eq!(out, b"reply");
}

/// The chunk API: owned `Bytes` in, `Some(chunk)`s out, `None` after FIN (and again after).
#[tokio::test(start_paused = true)]
async fn send_and_recv_chunks() {
    let (client, server) = pipe();
    let (c, s) = stream_pair(&client, &server).await;
    let (mut c_rx, mut c_tx) = c.into_split();
    let (mut s_rx, mut s_tx) = s.into_split();

    // Small and large chunks; the large one exceeds window + send buffer, so `send` waits.
    let chunks: Vec<Bytes> = [1usize, 100, 5000, 2 << 20, 3, 70_000]
        .iter()
        .enumerate()
        .map(|(i, &n)| Bytes::from(support::data(30 + i as u64, n)))
        .collect();
    let expected: Vec<u8> = chunks.iter().flat_map(|b| b.iter().copied()).collect();

    let send = async {
        for chunk in &chunks {
            c_tx.send(chunk.clone()).await.expect("send");
        }
        c_tx.finish().expect("finish");
        c_tx.finish().expect("finish is idempotent");
        c_tx.flush_queued().await.expect("flush_queued");
    };
    let recv = async {
        let mut got = Vec::new();
        while let Some(chunk) = s_rx.recv().await.expect("recv") {
            assert!(!chunk.is_empty(), "recv returned an empty chunk");
            got.extend_from_slice(&chunk);
        }
        assert!(s_rx.recv().await.expect("recv after end").is_none());
        got
    };
    let ((), got) = support::guard("chunks", async { tokio::join!(send, recv) }).await;
    assert_eq!(got.len(), expected.len());
    assert_eq!(support::hash(&got), support::hash(&expected));
    assert!(
        c_tx.send(Bytes::from_static(b"late")).await.is_err(),
        "send after finish"
    );

    // And back the other way, after the first direction has ended.
    s_tx.send(Bytes::from_static(b"pong")).await.unwrap();
    s_tx.finish().unwrap();
    let mut back = Vec::new();
    while let Some(chunk) = support::guard("recv back", c_rx.recv()).await.unwrap() {
        back.extend_from_slice(&chunk);
    }
    assert_eq!(back, b"pong");
    assert!(c_rx.recv().await.unwrap().is_none());
    assert_eq!(client.stats().open_streams + server.stats().open_streams, 0);
}

/// Bytes written before `shutdown()` and the FIN arrive in order over many streams at once,
/// each with its own length: no stream sees another's EOF.
#[tokio::test(start_paused = true)]
async fn many_streams_each_end_at_their_own_length() {
    let (client, server) = pipe();
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let mut c = client.open().await.unwrap();
        let mut s = server.accept().await.unwrap();
        let len = (i as usize * 37_000) % 400_000;
        tasks.push(tokio::spawn(async move {
            let payload = support::data(40 + i, len);
            let (w, r) = tokio::join!(
                support::write_random_chunks(&mut c, &payload, i),
                support::read_hashed(&mut s, i)
            );
            w.unwrap();
            assert_eq!(r.unwrap(), (len, support::hash(&payload)), "stream {i}");
        }));
    }
    for t in tasks {
        support::guard("stream", t).await.unwrap();
    }
}
