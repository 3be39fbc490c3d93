//! `braid::rpc` call semantics end to end over an in-memory session: send / close_send /
//! header / recv / trailer / status, split halves, cancellation by drop, a server ending
//! early, unknown methods, panicking handlers, transport failure.

mod rpc_common;

use braid::rpc::{Client, Code, MetadataMap, SendError, Server, ServerStream, Status};
use bytes::Bytes;
use rpc_common::{all_closed, all_freed, echo_server, md, start, start_with};
use tokio::sync::{mpsc, oneshot};

#[tokio::test(start_paused = true)]
async fn bidirectional_echo_with_metadata_header_and_trailer() {
    let server = Server::new().route("/test.Svc/Meta", |mut s: ServerStream| async move {
        assert_eq!(s.method(), "/test.Svc/Meta");
        assert_eq!(s.metadata().get("user"), Some("alice"));
        assert_eq!(s.metadata().get_bin("token-bin"), Some(&b"\x00\xff"[..]));
        assert!(s.deadline().is_none());
        s.set_header(md(&[("h1", "a")]))?;
        s.set_header(md(&[("h2", "b")]))?;
        s.set_trailer(md(&[("t1", "x")]))?;
        while let Some(msg) = s.recv().await? {
            s.send(msg).await?;
        }
        s.set_trailer(md(&[("t2", "y")]))?;
        Ok(())
    });
    let (client, _, _) = start(server);
    let metadata = md(&[("user", "alice")])
        .with_bin("token-bin", &b"\x00\xff"[..])
        .unwrap();
    let mut call = client.call("/test.Svc/Meta", metadata).await.unwrap();
    for i in 0..10u8 {
        call.send(Bytes::from(vec![i; 100 * i as usize]))
            .await
            .unwrap();
        assert_eq!(
            call.recv().await.unwrap().unwrap(),
            vec![i; 100 * i as usize]
        );
    }
    let header = call.header().await.unwrap();
    assert_eq!(header.get("h1"), Some("a"));
    assert_eq!(header.get("h2"), Some("b"));
    assert!(call.trailer().is_none() && call.status().is_none());
    call.close_send().unwrap();
    call.close_send().unwrap(); // idempotent
    assert_eq!(call.recv().await, Ok(None));
    assert_eq!(call.recv().await, Ok(None)); // stays ended
    assert_eq!(call.status().unwrap().code(), Code::Ok);
    let trailer = call.trailer().unwrap();
    assert_eq!(
        (trailer.get("t1"), trailer.get("t2")),
        (Some("x"), Some("y"))
    );
}

#[tokio::test(start_paused = true)]
async fn close_send_gives_server_end_of_stream() {
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let server = Server::new().route("/test.Svc/Count", move |mut s: ServerStream| {
        let tx = tx.lock().unwrap().take();
        async move {
            let mut n = 0;
            while s.recv().await?.is_some() {
                n += 1;
            }
            assert_eq!(s.recv().await?, None, "end of stream repeats");
            tx.unwrap().send(n).unwrap();
            s.send(Bytes::from(n.to_string())).await
        }
    });
    let (client, _, _) = start(server);
    let mut call = client
        .call("/test.Svc/Count", MetadataMap::new())
        .await
        .unwrap();
    for _ in 0..5 {
        call.send(Bytes::from_static(b"x")).await.unwrap();
    }
    call.close_send().unwrap();
    assert_eq!(rx.await.unwrap(), 5);
    assert_eq!(call.recv().await.unwrap().unwrap(), "5");
    assert_eq!(call.recv().await, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn header_arrives_before_messages_and_trailer_only_at_the_end() {
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let go = std::sync::Mutex::new(Some(go_rx));
    let server = Server::new().route("/test.Svc/Slow", move |mut s: ServerStream| {
        let go = go.lock().unwrap().take().unwrap();
        async move {
            s.send_header(md(&[("early", "1")])).await?;
            assert_eq!(
                s.send_header(MetadataMap::new()).await.unwrap_err().code(),
                Code::FailedPrecondition
            );
            assert!(s.set_header(md(&[("late", "1")])).is_err());
            go.await.unwrap(); // no message until the client saw the header
            s.send(Bytes::from_static(b"m")).await?;
            s.set_trailer(md(&[("done", "yes")]))?;
            Err(Status::not_found("nothing here").with_details(&b"\x01\x02"[..]))
        }
    });
    let (client, _, _) = start(server);
    let mut call = client
        .call("/test.Svc/Slow", MetadataMap::new())
        .await
        .unwrap();
    assert_eq!(call.header().await.unwrap().get("early"), Some("1"));
    assert!(call.trailer().is_none());
    go_tx.send(()).unwrap();
    assert_eq!(call.recv().await.unwrap().unwrap(), "m");
    assert!(call.trailer().is_none(), "no trailer before the end");
    let err = call.recv().await.unwrap_err();
    assert_eq!(
        (err.code(), err.message(), err.details()),
        (Code::NotFound, "nothing here", &b"\x01\x02"[..])
    );
    assert_eq!(call.status(), Some(&err));
    assert_eq!(call.trailer().unwrap().get("done"), Some("yes"));
    assert_eq!(
        call.header().await.unwrap().get("early"),
        Some("1"),
        "header kept"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_method_is_unimplemented_without_header() {
    let (client, c, s) = start(echo_server());
    let mut call = client
        .call("/test.Nope/Nothing", MetadataMap::new())
        .await
        .unwrap();
    assert!(call.header().await.is_none());
    let err = call.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("/test.Nope/Nothing"), "{err}");
    assert!(matches!(
        call.send(Bytes::from_static(b"late")).await,
        Err(SendError::Ended)
    ));
    assert!(call.trailer().unwrap().is_empty());
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn server_ends_early_while_client_is_still_sending() {
    let server = Server::new().route("/test.Svc/Early", |mut s: ServerStream| async move {
        s.recv().await?;
        Err(Status::aborted("enough"))
    });
    let (client, c, s) = start(server);
    let mut call = client
        .call("/test.Svc/Early", MetadataMap::new())
        .await
        .unwrap();
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let mut sent = 0;
    loop {
        match call.send(chunk.clone()).await {
            Ok(()) => sent += 1,
            Err(SendError::Ended) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 1000, "send never noticed the end");
    }
    let err = call.recv().await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::Aborted, "enough"));
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_mid_stream_cancels_it_on_the_server() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = Server::new().route("/test.Svc/Stream", move |mut s: ServerStream| {
        let tx = tx.clone();
        async move {
            let result = async {
                while let Some(m) = s.recv().await? {
                    s.send(m).await?;
                }
                Ok(())
            }
            .await;
            tx.send(result.clone()).unwrap();
            result
        }
    });
    let (client, c, s) = start(server);
    let mut call = client
        .call("/test.Svc/Stream", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from_static(b"one")).await.unwrap();
    assert_eq!(call.recv().await.unwrap().unwrap(), "one");
    drop(call);
    let seen: Result<(), Status> = rx.recv().await.unwrap();
    assert_eq!(seen.unwrap_err().code(), Code::Cancelled);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn panicking_handler_ends_the_call_with_internal() {
    let server = Server::new().route("/test.Svc/Panic", |mut s: ServerStream| async move {
        s.recv().await?;
        panic!("handler bug");
    });
    let (client, c, s) = start(server);
    let mut call = client
        .call("/test.Svc/Panic", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from_static(b"boom")).await.unwrap();
    let err = call.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("handler bug"), "{err}");
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn trailer_and_status_stay_readable_after_the_stream_and_session_close() {
    let server = Server::new().route("/test.Svc/T", |mut s: ServerStream| async move {
        s.set_trailer(md(&[("final", "1")]))?;
        Ok(())
    });
    let (client, c, s) = start(server);
    let mut call = client
        .call("/test.Svc/T", MetadataMap::new())
        .await
        .unwrap();
    assert_eq!(call.recv().await, Ok(None));
    all_closed(&c, &s).await; // the stream is closed on both sides
    c.close().await;
    assert_eq!(call.trailer().unwrap().get("final"), Some("1"));
    assert!(call.status().unwrap().is_ok());
    assert_eq!(call.recv().await, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn split_halves_send_and_receive_in_two_tasks() {
    let (client, _, _) = start(echo_server());
    let call = client
        .call("/test.Echo/Echo", MetadataMap::new())
        .await
        .unwrap();
    let (mut tx, mut rx) = call.split();
    let sender = tokio::spawn(async move {
        for i in 0..100u32 {
            tx.send(Bytes::from(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
        }
        tx.close_send().unwrap();
    });
    let mut got = 0u32;
    while let Some(m) = rx.recv().await.unwrap() {
        assert_eq!(m, got.to_be_bytes().to_vec());
        got += 1;
    }
    sender.await.unwrap();
    assert_eq!(got, 100);
    assert!(rx.status().unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn transport_failure_is_unavailable_not_a_clean_end() {
    let (client, c, _s) = start(echo_server());
    let mut call = client
        .call("/test.Echo/Echo", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(call.recv().await.unwrap().unwrap(), "x");
    c.close().await;
    let err = call.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(client
        .call("/test.Echo/Echo", MetadataMap::new())
        .await
        .is_err());
}

/// UTF-8 strings as messages.
#[derive(Debug, Clone, Copy, Default)]
struct Text;

impl braid::rpc::Codec for Text {
    type Encode = String;
    type Decode = String;
    fn encode(&mut self, item: String) -> Result<Bytes, Status> {
        Ok(Bytes::from(item))
    }
    fn decode(&mut self, bytes: Bytes) -> Result<String, Status> {
        String::from_utf8(bytes.to_vec()).map_err(|_| Status::invalid_argument("not UTF-8"))
    }
}

#[tokio::test(start_paused = true)]
async fn custom_codec_and_decode_failure() {
    let server = Server::new().route_with_codec(
        "/test.Text/Upper",
        Text,
        |mut s: ServerStream<Text>| async move {
            while let Some(line) = s.recv().await? {
                s.send(line.to_uppercase()).await?;
            }
            Ok(())
        },
    );
    let (client, c, s) = start(server);
    let text = client.clone().with_codec(Text);
    let reply = text
        .unary("/test.Text/Upper", "hello".to_owned(), Default::default())
        .await;
    assert_eq!(reply.unwrap(), "HELLO");

    // Invalid UTF-8 from a bytes client: the server's codec ends the call.
    let mut call = client
        .call("/test.Text/Upper", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from_static(b"\xff\xfe")).await.unwrap();
    let err = call.recv().await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "not UTF-8")
    );
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn a_send_cancelled_mid_message_cancels_the_call() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = Server::new().route("/test.Svc/Lazy", move |mut s: ServerStream| {
        let tx = tx.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await; // not reading yet
            let r = async {
                while s.recv().await?.is_some() {}
                Ok(())
            }
            .await;
            tx.send(r.clone()).unwrap();
            r
        }
    });
    // No window growth (session window = 16 x initial): the server's framework reading the
    // request head must not open room for the whole message.
    let config = braid::Config::default()
        .with_session_window(16 * braid::Config::default().initial_stream_window);
    let (client, c, s) = start_with(server, config);
    let mut call = client
        .call("/test.Svc/Lazy", MetadataMap::new())
        .await
        .unwrap();
    // 2 MiB can't be queued before the server reads: the send blocks midway.
    let big = Bytes::from(vec![0u8; 2 << 20]);
    let blocked = tokio::time::timeout(std::time::Duration::from_millis(10), call.send(big)).await;
    assert!(
        blocked.is_err(),
        "the send should still be waiting for credit"
    );
    assert_eq!(
        call.send(Bytes::from_static(b"next")).await,
        Err(SendError::Ended)
    );
    assert_eq!(call.recv().await.unwrap_err().code(), Code::Cancelled);
    assert_eq!(
        rx.recv().await.unwrap().unwrap_err().code(),
        Code::Cancelled
    );
    drop(call);
    all_freed(&c, &s).await;
}

#[test]
fn a_dropped_handler_ends_the_call_with_cancelled() {
    // The sessions (and their drivers) run on `main`; the server's call tasks, and so the
    // handler, on `calls`, which is shut down while the handler waits.
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (entered, mut handler_running) = mpsc::unbounded_channel::<()>();
    let server = Server::new().route("/test.Svc/Forever", move |_s: ServerStream| {
        let entered = entered.clone();
        async move {
            let _ = entered.send(());
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let (client, c, s, mut call) = main.block_on(async {
        let (c, s) = rpc_common::sessions();
        let served = s.clone();
        calls.spawn(async move { server.serve(served).await });
        let client = Client::new(c.clone());
        let call = client
            .call("/test.Svc/Forever", MetadataMap::new())
            .await
            .unwrap();
        handler_running.recv().await.unwrap();
        (client, c, s, call)
    });
    drop(calls); // drops every task on it, the handler's among them
    main.block_on(async move {
        let err = call.recv().await.unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "{err}");
        drop(call);
        drop(client);
        all_freed(&c, &s).await;
    });
}
