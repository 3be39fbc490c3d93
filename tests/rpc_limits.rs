//! `braid::rpc` deadlines (paused clock), message and metadata size limits, and 1,000
//! concurrent bidirectional calls on one session.

mod rpc_common;

use std::time::Duration;

use braid::rpc::{CallOptions, Code, MetadataMap, SendError, Server, ServerStream, Status};
use bytes::Bytes;
use rpc_common::{all_freed, echo_server, md, start};
use tokio::sync::mpsc;

#[tokio::test(start_paused = true)]
async fn deadline_expires_on_both_sides() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = Server::new().route("/test.Svc/Hang", move |mut s: ServerStream| {
        let tx = tx.clone();
        async move {
            assert!(s.deadline().is_some());
            let r = s.recv().await; // the client never sends
            tx.send((tokio::time::Instant::now(), r.clone())).unwrap();
            r.map(|_| ())
        }
    });
    let (client, c, s) = start(server);
    let start = tokio::time::Instant::now();
    let opts = CallOptions {
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let mut call = client
        .call_with("/test.Svc/Hang", MetadataMap::new(), opts)
        .await
        .unwrap();
    assert_eq!(call.deadline(), Some(start + Duration::from_secs(5)));
    let err = call.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(tokio::time::Instant::now() - start, Duration::from_secs(5));
    let (when, seen) = rx.recv().await.unwrap();
    assert_eq!(seen.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(when - start, Duration::from_secs(5));
    assert!(matches!(
        call.send(Bytes::new()).await,
        Err(SendError::Ended)
    ));
    assert_eq!(call.status().unwrap().code(), Code::DeadlineExceeded);
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn deadline_interrupts_a_blocked_send() {
    // The handler never reads, so the client's sends block on flow control.
    let server = Server::new().route("/test.Svc/Deaf", |_s: ServerStream| async move {
        std::future::pending::<()>().await;
        Ok(())
    });
    let (client, _, _) = start(server);
    let opts = CallOptions {
        timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let mut call = client
        .call_with("/test.Svc/Deaf", MetadataMap::new(), opts)
        .await
        .unwrap();
    let chunk = Bytes::from(vec![0u8; 256 * 1024]);
    let ended = loop {
        if let Err(e) = call.send(chunk.clone()).await {
            break e;
        }
    };
    assert_eq!(ended, SendError::Ended);
    assert_eq!(
        call.recv().await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
}

/// A handler that returned while its status can't be written (the client grants no more
/// credit) is still bound by the deadline: the server resets the call when it passes
/// (spec/RPC.md §6.3), instead of holding the stream for as long as the client stays silent.
#[tokio::test(start_paused = true)]
async fn the_deadline_covers_a_status_waiting_for_credit() {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let server = Server::new().route("/test.Svc/Fill", move |mut s: ServerStream| {
        let done_tx = done_tx.clone();
        async move {
            // 511 records of 1 KiB: the client's 256 KiB window plus most of the 256 KiB
            // stream send buffer. The 2 KiB trailer below then no longer fits.
            let msg = Bytes::from(vec![0u8; 1024 - 5]);
            for _ in 0..511 {
                s.send(msg.clone()).await?;
            }
            s.set_trailer(MetadataMap::new().with("pad", &"x".repeat(2048)).unwrap())?;
            done_tx.send(()).unwrap();
            Ok(())
        }
    });
    let (client, c, _s) = start(server);
    let opts = CallOptions {
        timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    // The client never reads, and without reading it never checks its own deadline.
    let _call = client
        .call_with("/test.Svc/Fill", MetadataMap::new(), opts)
        .await
        .unwrap();
    done_rx.recv().await.expect("the handler returned");
    assert_eq!(
        c.stats().open_streams,
        1,
        "the status is stuck behind flow control"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        c.stats().open_streams,
        0,
        "the server reset the call at its deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn oversize_messages_fail_with_resource_exhausted_both_ways() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = Server::new()
        .max_send_message_size(8 * 1024 * 1024)
        .route("/test.Svc/Big", move |mut s: ServerStream| {
            let tx = tx.clone();
            async move {
                let n = s.recv().await;
                let n = match n {
                    Ok(Some(m)) => m,
                    other => {
                        tx.send(other.clone().map(|_| ())).unwrap();
                        return other.map(|_| ());
                    }
                };
                let size: usize = std::str::from_utf8(&n).unwrap().parse().unwrap();
                let r = s.send(Bytes::from(vec![1u8; size])).await;
                tx.send(r.clone()).unwrap();
                r
            }
        })
        .route("/test.Echo/Echo", |mut s: ServerStream| async move {
            while let Some(msg) = s.recv().await? {
                s.send(msg).await?;
            }
            Ok(())
        });
    let (client, c, s) = start(server);

    // Client -> server, over the client's own send limit: only that send fails.
    let small = client.clone().max_send_message_size(1000);
    let mut call = small
        .call("/test.Echo/Echo", MetadataMap::new())
        .await
        .unwrap();
    match call.send(Bytes::from(vec![0u8; 1001])).await {
        Err(SendError::Rejected(st)) => assert_eq!(st.code(), Code::ResourceExhausted),
        other => panic!("{other:?}"),
    }
    call.send(Bytes::from_static(b"fits")).await.unwrap();
    assert_eq!(call.recv().await.unwrap().unwrap(), "fits");
    call.close_send().unwrap();
    assert_eq!(call.recv().await, Ok(None));

    // Client -> server, over the server's 4 MiB receive limit: the call ends at once.
    drop(call);
    let mut call = client
        .call("/test.Svc/Big", MetadataMap::new())
        .await
        .unwrap();
    let _ = call.send(Bytes::from(vec![0u8; 4 * 1024 * 1024 + 1])).await;
    let err = call.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("4194305"), "{err}");
    assert_eq!(
        rx.recv().await.unwrap().unwrap_err().code(),
        Code::ResourceExhausted
    );

    // Server -> client, over this call's receive limit.
    let opts = CallOptions {
        max_recv_message_size: Some(1024),
        ..Default::default()
    };
    drop(call);
    let mut call = client
        .call_with("/test.Svc/Big", MetadataMap::new(), opts)
        .await
        .unwrap();
    call.send(Bytes::from_static(b"1025")).await.unwrap();
    let err = call.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let seen = rx.recv().await.unwrap();
    assert!(seen.is_ok(), "the send itself was queued: {seen:?}");

    // Server -> client, over the server's send limit.
    drop(call);
    let mut call = client
        .call("/test.Svc/Big", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from((8 * 1024 * 1024 + 1).to_string()))
        .await
        .unwrap();
    let err = call.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert_eq!(
        rx.recv().await.unwrap().unwrap_err().code(),
        Code::ResourceExhausted
    );

    // Nothing else on the session was disturbed.
    drop(call);
    let mut call = client
        .call("/test.Echo/Echo", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from(vec![3u8; 1024 * 1024]))
        .await
        .unwrap();
    assert_eq!(call.recv().await.unwrap().unwrap().len(), 1024 * 1024);
    call.close_send().unwrap();
    assert_eq!(call.recv().await, Ok(None));
    drop(call);
    all_freed(&c, &s).await;
}

#[tokio::test(start_paused = true)]
async fn metadata_over_the_limit_is_a_clear_error() {
    let server = Server::new().route("/test.Svc/Md", |mut s: ServerStream| async move {
        let big = md(&[("k", &"v".repeat(20_000))]);
        let err = s.set_header(big.clone()).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(s.set_trailer(big).is_err());
        Ok(())
    });
    let (client, _, _) = start(server);
    let err = client
        .call("/test.Svc/Md", md(&[("k", &"v".repeat(20_000))]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("over the 16384-byte metadata limit"),
        "{err}"
    );
    let mut call = client
        .call("/test.Svc/Md", MetadataMap::new())
        .await
        .unwrap();
    assert_eq!(call.recv().await, Ok(None));
    // A server with a smaller limit refuses the same head.
    let tight = Server::new()
        .max_metadata_size(64)
        .route("/test.Svc/Md", |_s: ServerStream| async { Ok(()) });
    let (client, _, _) = start(tight);
    let mut call = client
        .call("/test.Svc/Md", md(&[("k", &"v".repeat(100))]))
        .await
        .unwrap();
    assert_eq!(
        call.recv().await.unwrap_err().code(),
        Code::ResourceExhausted
    );
}

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_bidirectional_calls_on_one_session() {
    let (client, c, s) = start(echo_server());
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut call = client.call("/test.Echo/Echo", MetadataMap::new()).await?;
            for j in 0..3u32 {
                let msg = Bytes::from(format!("{i}:{j}"));
                call.send(msg.clone())
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
                if call.recv().await? != Some(msg) {
                    return Err(Status::internal("wrong echo"));
                }
            }
            call.close_send()
                .map_err(|e| Status::internal(e.to_string()))?;
            match call.recv().await? {
                None => Ok(()),
                Some(_) => Err(Status::internal("extra message")),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    all_freed(&c, &s).await;
}
