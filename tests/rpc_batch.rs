//! `braid::rpc` batched sending and message streams: `CallSender::send_all`,
//! `ServerSender::send_all`, `CallReceiver::messages` / `ServerReceiver::messages`, and
//! `ServerStream::split`: order, every message whole, errors that stop the batch where
//! they happened, deadlines while waiting for the source; codecs with and without
//! `Codec::encode_into`, and sending halves re-typed with `with_codec`.

mod rpc_common;

use std::time::Duration;

use braid::rpc::{
    CallOptions, CallReceiver, CallSender, Client, Code, Codec, MetadataMap, SendError, Server,
    ServerStream, Status,
};
use bytes::{Bytes, BytesMut};
use futures::{stream, StreamExt, TryStreamExt};
use rpc_common::{all_freed, md, start};

/// A server whose echo route answers with `send_all(messages())` on split halves.
fn batch_echo_server() -> Server {
    Server::new().route("/test.Echo/Batch", |s: ServerStream| async move {
        let (mut tx, mut rx) = s.split();
        tx.set_header(md(&[("mode", "batch")]))?;
        tx.send_all(rx.messages()).await
    })
}

/// A call to [`batch_echo_server`]'s route, split.
async fn batch_echo_call(client: &Client) -> (CallSender, CallReceiver) {
    let call = client
        .call("/test.Echo/Batch", MetadataMap::new())
        .await
        .unwrap();
    call.split()
}

/// Message `i`: its index and a length that varies from 0 to 700 bytes, so batches hold
/// records of many sizes and cross the 32 KiB batch limit at odd offsets.
fn message(i: u32) -> Bytes {
    let mut m = i.to_be_bytes().to_vec();
    m.resize(4 + (i as usize * 37) % 700, (i % 251) as u8);
    Bytes::from(m)
}

#[tokio::test(start_paused = true)]
async fn send_all_both_ways_echoes_every_message_in_order() {
    let (client, c, s) = start(batch_echo_server());
    let (mut tx, mut rx) = batch_echo_call(&client).await;
    // ~7 MiB: far more than the stream windows and send buffers, so batches wait for credit.
    const COUNT: u32 = 20_000;
    let sender = tokio::spawn(async move {
        tx.send_all(stream::iter((0..COUNT).map(message))).await?;
        tx.close_send()
    });
    assert_eq!(rx.header().await.unwrap().get("mode"), Some("batch"));
    let got: Vec<Bytes> = rx.messages().try_collect().await.unwrap();
    assert_eq!(got.len(), COUNT as usize);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &message(i as u32), "message {i}");
    }
    sender.await.unwrap().unwrap();
    assert!(rx.status().unwrap().is_ok());
    drop(rx);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn send_all_does_not_hold_a_message_back_for_the_next_one() {
    let (client, _, _) = start(batch_echo_server());
    let (mut tx, mut rx) = batch_echo_call(&client).await;
    let (feed, source) = futures::channel::mpsc::unbounded::<Bytes>();
    let sender = tokio::spawn(async move { tx.send_all(source).await.map(|()| tx) });
    // One message at a time: each echo must come back while the source is still open.
    for i in 0..5u32 {
        feed.unbounded_send(message(i)).unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the message was held back");
        assert_eq!(echo.unwrap().unwrap(), message(i));
    }
    drop(feed); // the source ends: send_all returns, the call is still open
    let mut tx = sender.await.unwrap().unwrap();
    tx.send(message(5)).await.unwrap();
    tx.close_send().unwrap();
    assert_eq!(rx.recv().await.unwrap().unwrap(), message(5));
    assert_eq!(rx.recv().await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn send_all_stops_at_an_oversize_message_and_the_call_goes_on() {
    let (client, _, _) = start(batch_echo_server());
    let client = client.max_send_message_size(1000);
    let (mut tx, mut rx) = batch_echo_call(&client).await;
    let msgs = vec![
        message(1),
        message(2),
        Bytes::from(vec![7u8; 1001]),
        message(3),
    ];
    let mut source = stream::iter(msgs);
    match tx.send_all(source.by_ref()).await {
        Err(SendError::Rejected(status)) => assert_eq!(status.code(), Code::ResourceExhausted),
        other => panic!("{other:?}"),
    }
    // The rest of the source is left unread, and the call goes on.
    assert_eq!(source.next().await, Some(message(3)));
    tx.send(message(4)).await.unwrap();
    tx.close_send().unwrap();
    let got: Vec<Bytes> = rx.messages().try_collect().await.unwrap();
    assert_eq!(got, vec![message(1), message(2), message(4)]);
}

#[tokio::test(start_paused = true)]
async fn server_send_all_ends_the_call_with_the_sources_error() {
    let server = Server::new().route("/test.Svc/Fail", |mut s: ServerStream| async move {
        let items = vec![
            Ok(message(1)),
            Ok(message(2)),
            Err(Status::aborted("source failed")),
            Ok(message(3)),
        ];
        s.send_all(stream::iter(items)).await
    });
    let (client, c, s) = start(server);
    let mut call = client
        .call("/test.Svc/Fail", MetadataMap::new())
        .await
        .unwrap();
    call.close_send().unwrap();
    assert_eq!(call.recv().await.unwrap().unwrap(), message(1));
    assert_eq!(call.recv().await.unwrap().unwrap(), message(2));
    let err = call.recv().await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::Aborted, "source failed")
    );
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn messages_stream_ends_with_the_calls_error() {
    let server = Server::new().route("/test.Svc/Two", |mut s: ServerStream| async move {
        s.send(message(1)).await?;
        s.send(message(2)).await?;
        Err(Status::not_found("no third"))
    });
    let (client, _, _) = start(server);
    let mut call = client
        .call("/test.Svc/Two", MetadataMap::new())
        .await
        .unwrap();
    call.close_send().unwrap();
    let (_tx, mut rx) = call.split();
    let items: Vec<Result<Bytes, Status>> = rx.messages().collect().await;
    assert_eq!(
        items.len(),
        3,
        "two messages, then the error once: {items:?}"
    );
    assert_eq!(items[0].as_ref().unwrap(), &message(1));
    assert_eq!(items[1].as_ref().unwrap(), &message(2));
    assert_eq!(items[2].as_ref().unwrap_err().code(), Code::NotFound);
    assert_eq!(rx.status().unwrap().code(), Code::NotFound);
}

#[tokio::test(start_paused = true)]
async fn send_all_waiting_for_its_source_ends_at_the_deadline() {
    let (client, _, _) = start(batch_echo_server());
    let opts = CallOptions {
        timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let call = client
        .call_with("/test.Echo/Batch", MetadataMap::new(), opts)
        .await
        .unwrap();
    let (mut tx, mut rx) = call.split();
    let start = tokio::time::Instant::now();
    // One message, then a source that never yields again.
    let source = stream::iter([message(1)]).chain(stream::pending());
    let sender = tokio::spawn(async move { tx.send_all(source).await });
    // The first message went out at once, not held for the next one.
    assert_eq!(rx.recv().await.unwrap().unwrap(), message(1));
    assert!(tokio::time::Instant::now() - start < Duration::from_secs(1));
    assert_eq!(sender.await.unwrap(), Err(SendError::Ended));
    assert_eq!(tokio::time::Instant::now() - start, Duration::from_secs(2));
    assert_eq!(rx.recv().await.unwrap_err().code(), Code::DeadlineExceeded);
}

#[tokio::test(start_paused = true)]
async fn split_server_halves_work_from_two_tasks() {
    let server = Server::new().route("/test.Svc/Split", |s: ServerStream| async move {
        let (mut tx, mut rx) = s.split();
        tx.set_trailer(md(&[("t", "1")]))?;
        // The receiving half counts in a task of its own; the sender answers with the count.
        let counter = tokio::spawn(async move {
            let mut n = 0u32;
            while rx.recv().await?.is_some() {
                n += 1;
            }
            Ok::<u32, Status>(n)
        });
        let n = counter
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        tx.send(Bytes::from(n.to_be_bytes().to_vec())).await
    });
    let (client, _, _) = start(server);
    let mut call = client
        .call("/test.Svc/Split", MetadataMap::new())
        .await
        .unwrap();
    call.send_all(stream::iter((0..300).map(message)))
        .await
        .unwrap();
    call.close_send().unwrap();
    assert_eq!(
        call.recv().await.unwrap().unwrap(),
        300u32.to_be_bytes().to_vec()
    );
    assert_eq!(call.recv().await.unwrap(), None);
    assert_eq!(call.trailer().unwrap().get("t"), Some("1"));
}

/// A server whose route answers from a source that never yields, and reports what
/// `send_all` returned (and that the handler got to return at all). With `drop_receiver`
/// the handler drops its receiving half once `send_all` is waiting on its source.
fn never_yielding_server(
    outcome: tokio::sync::mpsc::UnboundedSender<Status>,
    drop_receiver: bool,
) -> Server {
    Server::new().route("/test.Svc/Pending", move |s: ServerStream| {
        let outcome = outcome.clone();
        async move {
            let (mut tx, rx) = s.split();
            tx.send_header(md(&[("waiting", "yes")])).await?;
            // With `drop_receiver`, a task of its own drops the receiving half; it runs once
            // this task is waiting inside send_all.
            let (go, gone) = tokio::sync::oneshot::channel::<()>();
            let _kept = if drop_receiver {
                tokio::spawn(async move {
                    let _ = gone.await;
                    drop(rx);
                });
                None
            } else {
                Some(rx)
            };
            let _ = go.send(());
            let err = tx
                .send_all(stream::pending::<Result<Bytes, Status>>())
                .await
                .expect_err("a source that never yields can't end send_all cleanly");
            let _ = outcome.send(err.clone());
            Err(err)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn server_send_all_waiting_for_its_source_ends_when_the_client_cancels() {
    for drop_receiver in [false, true] {
        server_send_all_ends_when_the_client_cancels(drop_receiver).await;
    }
}

async fn server_send_all_ends_when_the_client_cancels(drop_receiver: bool) {
    let (report, mut outcome) = tokio::sync::mpsc::unbounded_channel();
    let (client, c, s) = start(never_yielding_server(report, drop_receiver));
    let mut call = client
        .call("/test.Svc/Pending", MetadataMap::new())
        .await
        .unwrap();
    // The header says the handler is inside send_all (or about to be).
    assert_eq!(call.header().await.unwrap().get("waiting"), Some("yes"));
    drop(call); // cancels the call: RESET to the server
    let status = tokio::time::timeout(Duration::from_secs(30), outcome.recv())
        .await
        .unwrap_or_else(|_| {
            panic!("the handler stayed in send_all after the client cancelled (receiver dropped: {drop_receiver})")
        })
        .unwrap();
    assert_eq!(status.code(), Code::Cancelled);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn server_send_all_waiting_for_its_source_ends_at_the_deadline() {
    let (report, mut outcome) = tokio::sync::mpsc::unbounded_channel();
    let (client, c, s) = start(never_yielding_server(report, false));
    let opts = CallOptions {
        timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let start = tokio::time::Instant::now();
    let mut call = client
        .call_with("/test.Svc/Pending", MetadataMap::new(), opts)
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), outcome.recv())
        .await
        .expect("the handler stayed in send_all past the deadline")
        .unwrap();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(tokio::time::Instant::now() - start, Duration::from_secs(2));
    assert_eq!(
        call.recv().await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn client_send_all_waiting_for_its_source_ends_when_the_server_finishes() {
    // The handler answers without reading the client's messages.
    let server = Server::new().route("/test.Svc/Early", |mut s: ServerStream| async move {
        s.send(Bytes::from_static(b"done")).await
    });
    let (client, c, s) = start(server);
    let (mut tx, mut rx) = client
        .call("/test.Svc/Early", MetadataMap::new())
        .await
        .unwrap()
        .split();
    let sender = tokio::spawn(async move { tx.send_all(stream::pending::<Bytes>()).await });
    let sent = tokio::time::timeout(Duration::from_secs(30), sender)
        .await
        .expect("send_all stayed waiting for its source after the server ended the call")
        .unwrap();
    assert_eq!(sent, Err(SendError::Ended));
    // The real outcome comes from recv.
    assert_eq!(rx.recv().await.unwrap().unwrap(), &b"done"[..]);
    assert_eq!(rx.recv().await.unwrap(), None);
    assert!(rx.status().unwrap().is_ok());
    drop(rx);
    all_freed(&c, &s).await;
}

/// UTF-8 strings, with only `encode` and `decode` (no `encoded_len`): batches encode each
/// message, then copy it in.
#[derive(Debug, Clone, Copy)]
struct Text;

impl Codec for Text {
    type Encode = String;
    type Decode = String;
    fn encode(&mut self, item: String) -> Result<Bytes, Status> {
        Ok(Bytes::from(item))
    }
    fn decode(&mut self, bytes: Bytes) -> Result<String, Status> {
        String::from_utf8(bytes.to_vec()).map_err(|_| Status::internal("not UTF-8"))
    }
}

fn text(i: u32) -> String {
    format!("{i}:{}", "x".repeat((i as usize * 37) % 700))
}

#[tokio::test(start_paused = true)]
async fn send_all_with_a_codec_that_only_encodes_both_ways() {
    // The server's half is re-typed too: it receives Bytes and answers with Text.
    let server = Server::new().route("/test.Text/Echo", |s: ServerStream| async move {
        let (tx, mut rx) = s.split();
        let mut tx = tx.with_codec(Text);
        let texts = rx.messages().map(|m| {
            m.and_then(|b| String::from_utf8(b.to_vec()).map_err(|_| Status::internal("utf-8")))
        });
        tx.send_all(texts).await
    });
    let (client, c, s) = start(server);
    let (mut tx, mut rx) = client
        .with_codec(Text)
        .call("/test.Text/Echo", MetadataMap::new())
        .await
        .unwrap()
        .split();
    const COUNT: u32 = 5_000; // ~1.7 MiB: many batches, some waiting for credit
    let sender = tokio::spawn(async move {
        tx.send_all(stream::iter((0..COUNT).map(text))).await?;
        tx.close_send()
    });
    let got: Vec<String> = rx.messages().try_collect().await.unwrap();
    assert_eq!(got.len(), COUNT as usize);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &text(i as u32), "message {i}");
    }
    sender.await.unwrap().unwrap();
    drop(rx);
    all_freed(&c, &s).await;
}

/// Writes messages in place; a message starting with `fail` is half written, then refused.
#[derive(Debug, Clone, Copy)]
struct InPlace;

impl Codec for InPlace {
    type Encode = &'static [u8];
    type Decode = Bytes;
    fn encode(&mut self, item: &'static [u8]) -> Result<Bytes, Status> {
        Ok(Bytes::from_static(item))
    }
    fn encoded_len(&self, item: &&'static [u8]) -> Option<usize> {
        Some(item.len())
    }
    fn encode_into(&mut self, item: &'static [u8], buf: &mut BytesMut) -> Result<(), Status> {
        if let Some(rest) = item.strip_prefix(b"fail") {
            buf.extend_from_slice(rest);
            return Err(Status::invalid_argument("refused midway"));
        }
        buf.extend_from_slice(item);
        Ok(())
    }
    fn decode(&mut self, bytes: Bytes) -> Result<Bytes, Status> {
        Ok(bytes)
    }
}

#[tokio::test(start_paused = true)]
async fn send_all_encodes_in_place_and_drops_what_a_failed_encode_into_wrote() {
    static BIG: [u8; 1001] = [7; 1001];
    let (client, c, s) = start(batch_echo_server());
    let client = client.max_send_message_size(1000);
    let (tx, mut rx) = batch_echo_call(&client).await;
    let mut tx = tx.with_codec(InPlace);
    // The codec's error: what it appended is dropped, the messages before it go out.
    let mut source = stream::iter([&b"a"[..], b"bb", b"fail, half written", b"c"]);
    match tx.send_all(source.by_ref()).await {
        Err(SendError::Rejected(status)) => assert_eq!(status.code(), Code::InvalidArgument),
        other => panic!("{other:?}"),
    }
    assert_eq!(source.next().await, Some(&b"c"[..]));
    // Over the send limit (by its encoded_len): refused, and the batch is intact.
    match tx
        .send_all(stream::iter([&b"dd"[..], &BIG[..], b"e"]))
        .await
    {
        Err(SendError::Rejected(status)) => assert_eq!(status.code(), Code::ResourceExhausted),
        other => panic!("{other:?}"),
    }
    tx.send_all(stream::iter([&b""[..], b"fff"])).await.unwrap();
    tx.close_send().unwrap();
    let got: Vec<Bytes> = rx.messages().try_collect().await.unwrap();
    let want: [&[u8]; 5] = [b"a", b"bb", b"dd", b"", b"fff"];
    assert_eq!(got, want);
    drop((tx, rx));
    all_freed(&c, &s).await;
}
