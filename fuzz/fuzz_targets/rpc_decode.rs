//! Arbitrary bytes through the RPC record decoder (`braid::rpc::wire::RecordDecoder`, the
//! framing of spec/RPC.md §3) in arbitrary chunks, and every HEADERS / TRAILERS body through
//! the body decoders (§4).
//!
//! Input layout: `[limits][chunk seed][wire bytes...]`.
//! * `limits & 3` picks `max_message`: 4 MiB (the default), 64, 0, 1 KiB; `(limits >> 2) & 3`
//!   picks `max_metadata`: 16 KiB (the default), 32, 0, 256.
//! * The chunk seed drives a xorshift that cuts the wire bytes into the chunks pushed: 0 pushes
//!   everything at once, otherwise chunks of `1..=2 * seed` bytes.
//!
//! Properties: no panic; `buffered()` is always the bytes pushed and not yet returned; every
//! record is within its limit and re-encodes (`encode_record`) to exactly the bytes it came
//! from; an error is `UnknownKind` / `TooLarge` exactly when the next header says so; once
//! the decoder wants more, it holds less than one record of at most the limit (memory follows
//! the limit, never an announced length); `finish` fails exactly when a partial record is
//! left. Body decoders never panic, and what they accept re-encodes to the same body.
#![no_main]

use braid::rpc::wire::{
    decode_request_head, decode_response_head, decode_trailers, encode_record, encode_request_head,
    encode_response_head, encode_trailers, Kind, Limits, Record, RecordDecoder, WireError,
    RECORD_HEADER_LEN,
};
use braid::rpc::Code;
use bytes::Bytes;

// For its `chunk_sizes`: both decoders are fed the same way.
#[allow(dead_code)]
#[path = "../harness/decode.rs"]
mod frame_harness;
use frame_harness::chunk_sizes;

fn limits(mode: u8) -> Limits {
    let max_message = match mode & 3 {
        0 => 4 << 20,
        1 => 64,
        2 => 0,
        _ => 1024,
    };
    let max_metadata = match (mode >> 2) & 3 {
        0 => 16 << 10,
        1 => 32,
        2 => 0,
        _ => 256,
    };
    Limits {
        max_message,
        max_metadata,
    }
}

/// The limit for a record kind byte, `None` for an invalid kind.
fn limit_for(kind: u8, l: Limits) -> Option<usize> {
    match kind {
        2 => Some(l.max_message),
        1 | 3 => Some(l.max_metadata),
        _ => None,
    }
}

/// Body decoders on a HEADERS or TRAILERS body: no panic; accepted bodies are canonical.
fn check_body(rec: &Record) {
    match rec.kind {
        Kind::Headers => {
            if let Ok(head) = decode_request_head(rec.body.clone()) {
                assert!(head.method.starts_with('/'));
                let again = encode_request_head(&head.method, head.timeout, &head.metadata);
                assert_eq!(again, rec.body, "request head does not re-encode");
            }
            if let Ok(md) = decode_response_head(rec.body.clone()) {
                assert_eq!(encode_response_head(&md), rec.body);
                // Reading every entry back is safe too.
                for (key, value) in md.iter() {
                    assert!(!key.is_empty());
                    let _ = value;
                }
            }
        }
        Kind::Trailers => {
            if let Ok((status, md)) = decode_trailers(rec.body.clone()) {
                let raw_code = rec.body[0];
                let msg_len = u16::from_be_bytes([rec.body[1], rec.body[2]]) as usize;
                let raw_msg = &rec.body[3..3 + msg_len];
                if raw_code <= 16 && std::str::from_utf8(raw_msg).is_ok() {
                    assert_eq!(status.code().as_u8(), raw_code);
                    assert_eq!(encode_trailers(&status, &md), rec.body);
                } else if raw_code > 16 {
                    assert_eq!(status.code(), Code::Unknown);
                }
            }
        }
        Kind::Message => {}
    }
}

fn check(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (mode, seed, wire) = (data[0], data[1], &data[2..]);
    let l = limits(mode);
    let mut dec = RecordDecoder::new(l);
    // Wire offset of the first byte the decoder has not returned in a record.
    let mut consumed = 0usize;
    let mut fed = 0usize;
    for n in chunk_sizes(seed, wire.len()) {
        dec.push(Bytes::copy_from_slice(&wire[fed..fed + n]));
        fed += n;
        loop {
            assert_eq!(dec.buffered(), fed - consumed);
            let pending = &wire[consumed..fed];
            match dec.next_record() {
                Ok(Some(rec)) => {
                    let limit = limit_for(rec.kind as u8, l).expect("decoded a valid kind");
                    assert!(rec.body.len() <= limit, "{} > {limit}", rec.body.len());
                    let end = consumed + RECORD_HEADER_LEN + rec.body.len();
                    assert_eq!(
                        encode_record(rec.kind, &rec.body),
                        wire[consumed..end],
                        "record does not re-encode to its bytes"
                    );
                    consumed = end;
                    check_body(&rec);
                }
                Ok(None) => {
                    // Wants more: less than one record is held, and that record is within its
                    // limit (the header was checked before waiting for the body).
                    if pending.len() >= RECORD_HEADER_LEN {
                        let limit = limit_for(pending[0], l).expect("kind checked");
                        let len =
                            u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]])
                                as usize;
                        assert!(len <= limit);
                        assert!(pending.len() < RECORD_HEADER_LEN + len);
                    }
                    break;
                }
                Err(err) => {
                    assert!(pending.len() >= RECORD_HEADER_LEN);
                    let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]);
                    match (&err, limit_for(pending[0], l)) {
                        (WireError::UnknownKind(k), None) => assert_eq!(*k, pending[0]),
                        (
                            WireError::TooLarge {
                                len: got, limit, ..
                            },
                            Some(want),
                        ) => {
                            assert_eq!((*got, *limit), (len as usize, want));
                            assert!(*got > *limit);
                            assert_eq!(err.to_status().code(), Code::ResourceExhausted);
                        }
                        _ => panic!("unexpected error {err:?} for header {:?}", &pending[..5]),
                    }
                    // A refused header is not consumed: the decoder stays refused.
                    assert_eq!(dec.buffered(), pending.len());
                    assert!(dec.next_record().is_err());
                    return;
                }
            }
        }
    }
    assert_eq!(dec.finish().is_ok(), consumed == wire.len());
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
