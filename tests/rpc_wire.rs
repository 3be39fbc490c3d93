//! The `braid::rpc` wire format (spec/RPC.md): the worked example's exact bytes, and how
//! each side handles a peer that breaks the format (raw braid streams play the peer).

mod rpc_common;

use std::time::Duration;

use braid::rpc::wire::{
    decode_request_head, decode_response_head, decode_trailers, encode_record, encode_request_head,
    encode_response_head, encode_trailers, Kind, Limits, Record, RecordDecoder, WireError,
};
use braid::rpc::{Client, Code, MetadataMap, Server, ServerStream, Status, RESET_CODE_BASE};
use braid::{ErrorCode, Stream};
use bytes::{Bytes, BytesMut};
use rpc_common::sessions;
use tokio::io::AsyncWriteExt;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// spec/RPC.md Appendix A, byte for byte.
#[test]
fn worked_example_bytes() {
    let md = MetadataMap::new().with("user", "ann").unwrap();
    let head = encode_request_head("/demo.Echo/Say", Some(Duration::from_secs(2)), &md);
    assert_eq!(
        hex(&encode_record(Kind::Headers, &head)),
        "01 00 00 00 27 01 00 0e 2f 64 65 6d 6f 2e 45 63 68 6f 2f 53 61 79 \
         00 00 00 00 00 1e 84 80 00 01 04 75 73 65 72 00 00 00 03 61 6e 6e"
    );
    assert_eq!(
        hex(&encode_record(Kind::Message, b"hi")),
        "02 00 00 00 02 68 69"
    );
    let empty = encode_response_head(&MetadataMap::new());
    assert_eq!(
        hex(&encode_record(Kind::Headers, &empty)),
        "01 00 00 00 02 00 00"
    );
    let trailer = MetadataMap::new().with("n", "1").unwrap();
    let trailers = encode_trailers(&Status::ok(), &trailer);
    assert_eq!(
        hex(&encode_record(Kind::Trailers, &trailers)),
        "03 00 00 00 10 00 00 00 00 00 00 00 00 01 01 6e 00 00 00 01 31"
    );
    let status = Status::not_found("no").with_details(&b"\xff"[..]);
    assert_eq!(
        hex(&encode_trailers(&status, &MetadataMap::new())),
        "05 00 02 6e 6f 00 00 00 01 ff 00 00"
    );
}

/// Reads every record the server sends until its FIN.
async fn read_all(stream: &mut braid::RecvStream) -> Vec<Record> {
    let mut dec = RecordDecoder::new(Limits {
        max_message: 1 << 20,
        max_metadata: 1 << 20,
    });
    let mut out = Vec::new();
    while let Some(chunk) = stream.recv().await.unwrap() {
        dec.push(chunk);
        while let Some(rec) = dec.next_record().unwrap() {
            out.push(rec);
        }
    }
    dec.finish().unwrap();
    out
}

/// Sends `bytes` as a raw client to an echo server; returns the status it answers with.
async fn raw_call(bytes: Vec<u8>) -> (Status, Vec<Record>) {
    let (c, s) = sessions();
    let server = Server::new().route("/t.S/M", |mut st: ServerStream| async move {
        while st.recv().await?.is_some() {}
        Ok(())
    });
    tokio::spawn(async move { server.serve(s).await });
    let stream = c.open().await.unwrap();
    let (mut rx, mut tx) = stream.into_split();
    tx.write_all(&bytes).await.unwrap();
    let records = read_all(&mut rx).await;
    let last = records.last().expect("a TRAILERS record").clone();
    assert_eq!(last.kind, Kind::Trailers);
    (decode_trailers(last.body).unwrap().0, records)
}

fn request(method: &str) -> Vec<u8> {
    encode_record(
        Kind::Headers,
        &encode_request_head(method, None, &MetadataMap::new()),
    )
    .to_vec()
}

#[tokio::test(start_paused = true)]
async fn server_rejects_broken_requests_with_a_status() {
    // Unknown record kind after the head.
    let mut bytes = request("/t.S/M");
    bytes.extend_from_slice(&[9, 0, 0, 0, 0]);
    let (status, _) = raw_call(bytes).await;
    assert_eq!(status.code(), Code::Internal, "{status}");

    // A message first, instead of the head: trailers only.
    let (status, records) = raw_call(encode_record(Kind::Message, b"x").to_vec()).await;
    assert_eq!(status.code(), Code::Internal, "{status}");
    assert_eq!(records.len(), 1);

    // A head announcing 1 GiB: refused from the 5-byte record header alone.
    let (status, _) = raw_call(vec![1, 0x40, 0, 0, 0]).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");

    // A malformed head (bad metadata count).
    let (status, _) = raw_call(vec![1, 0, 0, 0, 6, 0, 0, 2, b'/', b'x', 0xff]).await;
    assert_eq!(status.code(), Code::Internal, "{status}");

    // A message announcing more than the 4 MiB default.
    let mut bytes = request("/t.S/M");
    bytes.extend_from_slice(&[2, 0, 0x40, 0, 1]);
    let (status, records) = raw_call(bytes).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert_eq!(
        records[0].kind,
        Kind::Headers,
        "header sent with the status"
    );

    // Unknown method.
    let (status, records) = raw_call(request("/t.S/Other")).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status}");
    assert_eq!(records.len(), 1, "trailers only");
}

/// A raw server that answers the first call with `reply` bytes, then does `then`.
async fn raw_server_call(
    reply: Vec<u8>,
    then: impl FnOnce(&mut Stream) + Send + 'static,
) -> Status {
    let (c, s) = sessions();
    tokio::spawn(async move {
        let mut stream = s.accept().await.unwrap();
        stream.write_all(&reply).await.unwrap();
        then(&mut stream);
        // Keep the stream until the client is done with it.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let client = Client::new(c);
    let mut call = client.call("/t.S/M", MetadataMap::new()).await.unwrap();
    call.close_send().unwrap();
    loop {
        match call.recv().await {
            Ok(Some(_)) => continue,
            Ok(None) => return Status::ok(),
            Err(status) => return status,
        }
    }
}

fn header_record() -> Vec<u8> {
    encode_record(Kind::Headers, &encode_response_head(&MetadataMap::new())).to_vec()
}

#[tokio::test(start_paused = true)]
async fn client_never_mistakes_a_broken_response_for_success() {
    // FIN without TRAILERS.
    let st = raw_server_call(header_record(), |s| s.finish().unwrap()).await;
    assert_eq!(st.code(), Code::Internal, "{st}");
    assert!(st.message().contains("without sending a status"), "{st}");

    // FIN in the middle of a record.
    let mut bytes = header_record();
    bytes.extend_from_slice(&[2, 0, 0, 0, 9, 1]);
    let st = raw_server_call(bytes, |s| s.finish().unwrap()).await;
    assert_eq!(st.code(), Code::Internal, "{st}");

    // MESSAGE before HEADERS.
    let st = raw_server_call(encode_record(Kind::Message, b"x").to_vec(), |s| {
        s.finish().unwrap()
    })
    .await;
    assert_eq!(st.code(), Code::Internal, "{st}");

    // A record after TRAILERS.
    let mut bytes = header_record();
    bytes.extend_from_slice(&encode_record(
        Kind::Trailers,
        &encode_trailers(&Status::ok(), &MetadataMap::new()),
    ));
    bytes.extend_from_slice(&encode_record(Kind::Message, b"late"));
    let st = raw_server_call(bytes, |s| s.finish().unwrap()).await;
    assert_eq!(st.code(), Code::Internal, "{st}");

    // A RESET carrying an RPC status code, and one with a plain braid code.
    let st = raw_server_call(header_record(), |s| s.reset(ErrorCode(RESET_CODE_BASE + 7))).await;
    assert_eq!(st.code(), Code::PermissionDenied, "{st}");
    let st = raw_server_call(Vec::new(), |s| s.reset(ErrorCode::INTERNAL_ERROR)).await;
    assert_eq!(st.code(), Code::Internal, "{st}");
    let st = raw_server_call(Vec::new(), |s| s.reset(ErrorCode::CANCEL)).await;
    assert_eq!(st.code(), Code::Cancelled, "{st}");

    // A well-formed trailers-only answer is accepted as is.
    let mut bytes = BytesMut::new();
    bytes.extend_from_slice(&encode_record(
        Kind::Trailers,
        &encode_trailers(&Status::unavailable("busy"), &MetadataMap::new()),
    ));
    let st = raw_server_call(bytes.to_vec(), |s| s.finish().unwrap()).await;
    assert_eq!((st.code(), st.message()), (Code::Unavailable, "busy"));
}

#[tokio::test(start_paused = true)]
async fn a_request_head_that_never_completes_times_out() {
    let started = tokio::time::Instant::now();
    let (status, _) = raw_call(vec![1, 0, 0, 0, 10, 0]).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[test]
fn decoder_never_trusts_lengths() {
    let limits = Limits {
        max_message: 1 << 20,
        max_metadata: 1 << 10,
    };
    // Every prefix of a valid stream either needs more bytes or yields records.
    let mut all = Vec::new();
    all.extend_from_slice(&header_record());
    all.extend_from_slice(&encode_record(Kind::Message, &[5; 300]));
    for cut in 0..all.len() {
        let mut dec = RecordDecoder::new(limits);
        dec.push(Bytes::copy_from_slice(&all[..cut]));
        while dec.next_record().unwrap().is_some() {}
        assert!(dec.buffered() < all.len());
    }
    // Trailers whose lengths point past the body fail cleanly.
    for body in [
        &[0u8, 0xff, 0xff][..],
        &[0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 0, 0, 0, 0, 0, 1],
    ] {
        assert!(decode_trailers(Bytes::copy_from_slice(body)).is_err());
    }
}

fn small_limits() -> Limits {
    Limits {
        max_message: 1024,
        max_metadata: 1024,
    }
}

#[test]
fn heads_and_trailers_round_trip() {
    let md = MetadataMap::new()
        .with("a", "b")
        .unwrap()
        .with_bin("c-bin", &b"\0\x01"[..])
        .unwrap();
    let body = encode_request_head("/p.S/M", Some(Duration::from_millis(1500)), &md);
    let head = decode_request_head(body).unwrap();
    assert_eq!(head.method, "/p.S/M");
    assert_eq!(head.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(head.metadata, md);
    assert_eq!(decode_response_head(encode_response_head(&md)).unwrap(), md);
    let status = Status::aborted("x").with_details(&b"d"[..]);
    assert_eq!(
        decode_trailers(encode_trailers(&status, &md)).unwrap(),
        (status, md)
    );
}

#[test]
fn decoder_splits_across_chunks_and_rejects_bad_input() {
    let mut dec = RecordDecoder::new(small_limits());
    let mut all = BytesMut::new();
    all.extend_from_slice(&encode_record(
        Kind::Headers,
        &encode_response_head(&MetadataMap::new()),
    ));
    all.extend_from_slice(&encode_record(Kind::Message, b"hello"));
    all.extend_from_slice(&encode_record(Kind::Message, b""));
    let all = all.freeze();
    for i in 0..all.len() {
        dec.push(all.slice(i..i + 1));
    }
    assert_eq!(dec.next_record().unwrap().unwrap().kind, Kind::Headers);
    assert_eq!(dec.next_record().unwrap().unwrap().body, &b"hello"[..]);
    assert_eq!(dec.next_record().unwrap().unwrap().body, &b""[..]);
    assert_eq!(dec.next_record().unwrap(), None);
    assert!(dec.finish().is_ok());

    let mut dec = RecordDecoder::new(small_limits());
    dec.push(Bytes::from_static(&[9, 0, 0, 0, 0]));
    assert_eq!(dec.next_record(), Err(WireError::UnknownKind(9)));

    let mut dec = RecordDecoder::new(small_limits());
    dec.push(Bytes::from_static(&[3, 0xff, 0xff, 0xff, 0xff]));
    assert!(matches!(
        dec.next_record(),
        Err(WireError::TooLarge {
            kind: "metadata",
            ..
        })
    ));

    let mut dec = RecordDecoder::new(small_limits());
    dec.push(Bytes::from_static(&[2, 0, 0, 0, 3, 1]));
    assert_eq!(dec.next_record(), Ok(None));
    assert_eq!(dec.finish(), Err(WireError::Truncated));
}

#[test]
fn bodies_with_bad_lengths_are_rejected() {
    // count says 65535 entries in a tiny body
    assert!(decode_response_head(Bytes::from_static(&[0xff, 0xff, 0])).is_err());
    // value length beyond the body
    assert!(decode_response_head(Bytes::from_static(&[0, 1, 1, b'a', 0xff, 0, 0, 0])).is_err());
    // bad key
    assert!(decode_response_head(Bytes::from_static(&[0, 1, 1, b'A', 0, 0, 0, 0])).is_err());
    // trailing bytes
    assert!(decode_response_head(Bytes::from_static(&[0, 0, 1])).is_err());
    // method without '/'
    let body = encode_request_head("/x", None, &MetadataMap::new());
    let mut bad = body.to_vec();
    bad[3] = b'x';
    assert!(decode_request_head(bad.into()).is_err());
    // unknown flags
    let mut bad = body.to_vec();
    bad[0] = 0x80;
    assert!(decode_request_head(bad.into()).is_err());
    assert!(decode_trailers(Bytes::from_static(&[0, 0, 5])).is_err());
}
