//! Property tests of the frame codec (spec §2–§4, §10): frames round-trip, decoding is
//! independent of how the byte stream is split into reads, arbitrary input never panics and
//! whatever decodes re-encodes to the exact bytes it came from, and the preface round-trips
//! and is validated in the order spec §2 gives.

use braid::frame::{
    encode_frame, Decoder, ErrorCode, Flags, Frame, FrameType, Header, Preface, PrefaceError,
    HEADER_LEN, MAX_FRAME_PAYLOAD_LIMIT, MAX_GOAWAY_DEBUG, MAX_WINDOW, PREFACE_LEN,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

/// A decoder limit larger than any payload generated here.
const BIG: u32 = 1 << 20;

// ----- strategies -----

fn stream_id() -> impl Strategy<Value = u32> {
    prop_oneof![
        1u32..=16,
        Just(u32::MAX),
        Just(u32::MAX - 1),
        1u32..=u32::MAX
    ]
}

fn any_id() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), stream_id()]
}

fn code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![0u32..=0xc, any::<u32>()].prop_map(ErrorCode)
}

/// GOAWAY debug text: valid UTF-8 (what a sender must send), or arbitrary bytes (what a
/// receiver must tolerate, spec §4.4 / §10 V36); never above 1024 bytes.
fn debug_text() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        // At most 4 bytes per char: 256 chars fit in 1024 bytes.
        prop::collection::vec(any::<char>(), 0..=256)
            .prop_map(|cs| Bytes::from(cs.into_iter().collect::<String>().into_bytes())),
        prop::collection::vec(any::<u8>(), 0..=MAX_GOAWAY_DEBUG).prop_map(Bytes::from),
        Just(Bytes::from(vec![b'x'; MAX_GOAWAY_DEBUG])),
    ]
}

/// Any valid frame of any of the six types.
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        3 => (stream_id(), 0u8..8, prop::collection::vec(any::<u8>(), 0..=4096)).prop_map(
            |(stream, flags, payload)| Frame::Data {
                stream,
                flags: Flags(flags),
                payload: Bytes::from(payload),
            }
        ),
        1 => (any_id(), any::<u32>())
            .prop_map(|(stream, increment)| Frame::WindowUpdate { stream, increment }),
        1 => (any::<bool>(), any::<u64>()).prop_map(|(ack, opaque)| Frame::Ping { ack, opaque }),
        1 => (any::<u32>(), code(), debug_text()).prop_map(|(last_stream, code, debug)| {
            Frame::GoAway {
                last_stream,
                code,
                debug,
            }
        }),
        1 => (stream_id(), code()).prop_map(|(stream, code)| Frame::Reset { stream, code }),
        1 => (stream_id(), code()).prop_map(|(stream, code)| Frame::StopSending { stream, code }),
    ]
}

fn encode(frame: &Frame) -> BytesMut {
    let mut out = BytesMut::new();
    encode_frame(frame, &mut out);
    out
}

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        encode_frame(f, &mut out);
    }
    out.to_vec()
}

/// Cuts `len` bytes into consecutive chunks at the given (unsorted, possibly repeated) points.
fn chunks(len: usize, cuts: &[prop::sample::Index]) -> Vec<std::ops::Range<usize>> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.windows(2).map(|w| w[0]..w[1]).collect()
}

/// What spec §3 says about 12 header bytes, checked in the order it gives.
fn spec_header_verdict(b: &[u8; HEADER_LEN], max_frame_payload: u32) -> Result<(), ErrorCode> {
    let kind = b[0];
    let flags = b[1];
    let stream = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let len = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    if kind > 5 {
        return Err(ErrorCode::PROTOCOL_ERROR);
    }
    let allowed = match kind {
        0 => 0x7,
        2 => 0x2,
        _ => 0,
    };
    if flags & !allowed != 0 {
        return Err(ErrorCode::PROTOCOL_ERROR);
    }
    if b[2] != 0 || b[3] != 0 {
        return Err(ErrorCode::PROTOCOL_ERROR);
    }
    let stream_ok = match kind {
        2 | 3 => stream == 0,
        1 => true,
        _ => stream != 0,
    };
    if !stream_ok {
        return Err(ErrorCode::PROTOCOL_ERROR);
    }
    let len_ok = match kind {
        0 => len <= max_frame_payload,
        1 | 4 | 5 => len == 4,
        2 => len == 8,
        _ => (8..=8 + MAX_GOAWAY_DEBUG as u32).contains(&len),
    };
    if !len_ok {
        return Err(ErrorCode::FRAME_SIZE_ERROR);
    }
    Ok(())
}

/// Header bytes biased towards the interesting values of every field.
fn header_bytes() -> impl Strategy<Value = [u8; HEADER_LEN]> {
    let kind = prop_oneof![4 => 0u8..=5, 1 => 6u8..=255];
    let flags = prop_oneof![2 => Just(0u8), 2 => 0u8..8, 1 => any::<u8>()];
    let reserved = prop_oneof![6 => Just(0u16), 1 => any::<u16>()];
    let stream = prop_oneof![Just(0u32), Just(1u32), any::<u32>()];
    let len = prop_oneof![
        0u32..=16,
        1016u32..=1040,
        Just(MAX_FRAME_PAYLOAD_LIMIT),
        Just(MAX_FRAME_PAYLOAD_LIMIT + 1),
        any::<u32>(),
    ];
    (kind, flags, reserved, stream, len).prop_map(|(kind, flags, reserved, stream, len)| {
        let mut b = [0u8; HEADER_LEN];
        b[0] = kind;
        b[1] = flags;
        b[2..4].copy_from_slice(&reserved.to_be_bytes());
        b[4..8].copy_from_slice(&stream.to_be_bytes());
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b
    })
}

/// Input for the decoder: pure noise, or valid frames with some bytes overwritten.
fn wire_noise() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=512),
        (
            prop::collection::vec(frame(), 0..6),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        )
            .prop_map(|(frames, flips)| {
                let mut bytes = encode_all(&frames);
                if !bytes.is_empty() {
                    for (at, v) in flips {
                        let i = at.index(bytes.len());
                        bytes[i] = v;
                    }
                }
                bytes
            }),
    ]
}

fn valid_preface() -> impl Strategy<Value = Preface> {
    (
        prop_oneof![Just(1024u32), Just(MAX_WINDOW), 1024..=MAX_WINDOW],
        any::<prop::sample::Index>(),
        prop_oneof![Just(1u32), Just(u32::MAX), 1..=u32::MAX],
        prop_oneof![Just(1u32), Just(u32::MAX), 1..=u32::MAX],
        prop_oneof![
            Just(1024u32),
            Just(MAX_FRAME_PAYLOAD_LIMIT),
            1024..=MAX_FRAME_PAYLOAD_LIMIT
        ],
    )
        .prop_map(|(isw, sw, mcs, bl, mfp)| Preface {
            initial_stream_window: isw,
            // session_window in isw ..= 2^31-1
            session_window: isw + sw.index((MAX_WINDOW - isw) as usize + 1) as u32,
            max_concurrent_streams: mcs,
            accept_backlog: bl,
            max_frame_payload: mfp,
        })
}

/// Any five settings, biased to the edges of their ranges.
fn any_settings() -> impl Strategy<Value = [u32; 5]> {
    let edge = || {
        prop_oneof![
            Just(0u32),
            Just(1u32),
            1023u32..=1025,
            Just(MAX_FRAME_PAYLOAD_LIMIT),
            Just(MAX_FRAME_PAYLOAD_LIMIT + 1),
            Just(MAX_WINDOW),
            Just(MAX_WINDOW + 1),
            Just(u32::MAX),
            any::<u32>(),
        ]
    };
    [edge(), edge(), edge(), edge(), edge()]
}

fn spec_settings_ok(s: &[u32; 5]) -> bool {
    let [isw, sw, mcs, bl, mfp] = *s;
    (1024..=MAX_WINDOW).contains(&isw)
        && (isw..=MAX_WINDOW).contains(&sw)
        && mcs >= 1
        && bl >= 1
        && (1024..=MAX_FRAME_PAYLOAD_LIMIT).contains(&mfp)
}

fn preface_bytes(magic: [u8; 8], version: u16, reserved: u16, s: &[u32; 5]) -> [u8; PREFACE_LEN] {
    let mut b = [0u8; PREFACE_LEN];
    b[..8].copy_from_slice(&magic);
    b[8..10].copy_from_slice(&version.to_be_bytes());
    b[10..12].copy_from_slice(&reserved.to_be_bytes());
    for (i, v) in s.iter().enumerate() {
        b[12 + 4 * i..16 + 4 * i].copy_from_slice(&v.to_be_bytes());
    }
    b
}

const MAGIC: [u8; 8] = *b"\x8bBRAID\r\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // ----- (a) round trip -----

    #[test]
    fn frame_round_trips(frame in frame(), two_step in any::<bool>()) {
        let mut wire = encode(&frame);
        let expected_len = HEADER_LEN
            + match &frame {
                Frame::Data { payload, .. } => payload.len(),
                Frame::WindowUpdate { .. } | Frame::Reset { .. } | Frame::StopSending { .. } => 4,
                Frame::Ping { .. } => 8,
                Frame::GoAway { debug, .. } => 8 + debug.len(),
            };
        prop_assert_eq!(wire.len(), expected_len);
        // Reserved header bits are always sent as zero.
        prop_assert_eq!(&wire[2..4], &[0u8, 0][..]);

        let mut decoder = Decoder::new(BIG);
        let decoded = if two_step {
            let header = decoder.next_header(&mut wire).unwrap().expect("whole header present");
            prop_assert_eq!(header.stream, frame.stream_id());
            prop_assert_eq!(header.len as usize, expected_len - HEADER_LEN);
            // The header is handed out once.
            prop_assert_eq!(decoder.next_header(&mut wire).unwrap(), None);
            prop_assert_eq!(decoder.pending_header(), Some(&header));
            decoder.next_frame(&mut wire).unwrap()
        } else {
            decoder.decode(&mut wire).unwrap()
        };
        prop_assert_eq!(decoded, Some(frame));
        prop_assert!(wire.is_empty());
        prop_assert!(decoder.at_frame_boundary(&wire));
        prop_assert_eq!(decoder.decode(&mut wire).unwrap(), None);
    }

    /// The decoder accepts a DATA payload of exactly its limit and refuses one byte more,
    /// from the header alone.
    #[test]
    fn data_limit_is_inclusive(limit in 1024u32..=8192, stream in stream_id(), flags in 0u8..8) {
        let at_limit = Frame::Data { stream, flags: Flags(flags), payload: Bytes::from(vec![7u8; limit as usize]) };
        let mut wire = encode(&at_limit);
        prop_assert_eq!(Decoder::new(limit).decode(&mut wire).unwrap(), Some(at_limit));

        let over = Frame::Data { stream, flags: Flags(flags), payload: Bytes::from(vec![7u8; limit as usize + 1]) };
        let mut header_only = BytesMut::from(&encode(&over)[..HEADER_LEN]);
        let err = Decoder::new(limit).next_header(&mut header_only).unwrap_err();
        prop_assert_eq!(err.code, ErrorCode::FRAME_SIZE_ERROR);
    }

    // ----- (b) split-independence -----

    #[test]
    fn decoding_is_independent_of_read_boundaries(
        frames in prop::collection::vec(frame(), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        two_step in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let wire = encode_all(&frames);
        let mut decoder = Decoder::new(BIG);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut turn = 0usize;
        for range in chunks(wire.len(), &cuts) {
            buf.extend_from_slice(&wire[range]);
            loop {
                prop_assert!(decoder.bytes_needed(&buf) >= 1);
                turn += 1;
                let step = if two_step[turn % two_step.len()] {
                    // Vet the header first, as the runtime does (spec §3).
                    let header = decoder.next_header(&mut buf).unwrap();
                    if let Some(h) = header {
                        prop_assert_eq!(Some(&h), decoder.pending_header());
                    }
                    decoder.next_frame(&mut buf).unwrap()
                } else {
                    decoder.decode(&mut buf).unwrap()
                };
                match step {
                    Some(f) => out.push(f),
                    None => break,
                }
            }
        }
        prop_assert_eq!(out, frames);
        prop_assert!(buf.is_empty());
        prop_assert!(decoder.at_frame_boundary(&buf));
    }

    // ----- (c) arbitrary input -----

    #[test]
    fn arbitrary_bytes_never_panic_and_decoded_frames_reencode_exactly(
        input in wire_noise(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        limit in prop_oneof![Just(1024u32), Just(BIG), Just(MAX_FRAME_PAYLOAD_LIMIT)],
    ) {
        let mut decoder = Decoder::new(limit);
        let mut buf = BytesMut::new();
        let mut fed = 0usize;
        let mut frame_start = 0usize;
        'feed: for range in chunks(input.len(), &cuts) {
            fed += range.len();
            buf.extend_from_slice(&input[range]);
            loop {
                let needed = decoder.bytes_needed(&buf);
                prop_assert!(needed >= 1);
                prop_assert!(needed <= HEADER_LEN.max(limit as usize).max(8 + MAX_GOAWAY_DEBUG));
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        let end = fed - buf.len();
                        let reencoded = encode(&frame);
                        prop_assert_eq!(&reencoded[..], &input[frame_start..end]);
                        frame_start = end;
                    }
                    Ok(None) => break,
                    Err(err) => {
                        prop_assert!(
                            err.code == ErrorCode::PROTOCOL_ERROR || err.code == ErrorCode::FRAME_SIZE_ERROR,
                            "unexpected code {:?}", err.code
                        );
                        // The session ends here; the offending header is spec-invalid.
                        let raw: [u8; HEADER_LEN] = input[frame_start..frame_start + HEADER_LEN].try_into().unwrap();
                        prop_assert_eq!(spec_header_verdict(&raw, limit), Err(err.code));
                        break 'feed;
                    }
                }
            }
        }
    }

    /// Header validation matches spec §3 exactly: same verdict, same code, decided from the
    /// 12 header bytes alone.
    #[test]
    fn header_validation_follows_spec_order(raw in header_bytes(), limit in prop_oneof![Just(1024u32), Just(65536u32), Just(MAX_FRAME_PAYLOAD_LIMIT)]) {
        let got = Header::decode(&raw, limit).map(|_| ()).map_err(|e| e.code);
        prop_assert_eq!(got, spec_header_verdict(&raw, limit));
        if let Ok(h) = Header::decode(&raw, limit) {
            prop_assert_eq!(h.encode(), raw);
            // Incremental decoding refuses/accepts from the header alone, too.
            let mut buf = BytesMut::from(&raw[..]);
            let mut d = Decoder::new(limit);
            prop_assert_eq!(d.next_header(&mut buf).unwrap(), Some(h));
            prop_assert_eq!(h.kind as u8, raw[0]);
            prop_assert!(matches!(h.kind, FrameType::Data | FrameType::WindowUpdate | FrameType::Ping | FrameType::GoAway | FrameType::Reset | FrameType::StopSending));
        } else {
            let mut buf = BytesMut::from(&raw[..]);
            prop_assert!(Decoder::new(limit).next_header(&mut buf).is_err());
        }
    }

    // ----- (d) preface -----

    #[test]
    fn preface_round_trips(p in valid_preface()) {
        let bytes = p.encode();
        prop_assert_eq!(&bytes[..8], &MAGIC[..]);
        prop_assert_eq!(&bytes[8..12], &[0u8, 1, 0, 0][..]);
        prop_assert_eq!(Preface::decode(&bytes), Ok(p));
        prop_assert_eq!(p.validate(), Ok(()));
    }

    /// Reserved bytes 10..12 are ignored by the receiver.
    #[test]
    fn preface_reserved_is_ignored(p in valid_preface(), reserved in any::<u16>()) {
        let mut bytes = p.encode();
        bytes[10..12].copy_from_slice(&reserved.to_be_bytes());
        prop_assert_eq!(Preface::decode(&bytes), Ok(p));
    }

    /// Magic first: a wrong magic is PROTOCOL_ERROR whatever follows it.
    #[test]
    fn preface_bad_magic(
        at in 0usize..8, xor in 1u8..=255, version in any::<u16>(), settings in any_settings(),
    ) {
        let mut magic = MAGIC;
        magic[at] ^= xor;
        let bytes = preface_bytes(magic, version, 0, &settings);
        let err = Preface::decode(&bytes).unwrap_err();
        prop_assert_eq!(&err, &PrefaceError::BadMagic);
        prop_assert_eq!(err.code(), ErrorCode::PROTOCOL_ERROR);
    }

    /// Version second: any version but 1 is VERSION_MISMATCH, even with bad settings.
    #[test]
    fn preface_bad_version(version in any::<u16>().prop_filter("not 1", |v| *v != 1), settings in any_settings()) {
        let bytes = preface_bytes(MAGIC, version, 0, &settings);
        let err = Preface::decode(&bytes).unwrap_err();
        prop_assert_eq!(&err, &PrefaceError::Version(version));
        prop_assert_eq!(err.code(), ErrorCode::VERSION_MISMATCH);
    }

    /// Settings last: accepted exactly when every field is in its spec §2 range.
    #[test]
    fn preface_settings_ranges(settings in any_settings(), reserved in any::<u16>()) {
        let bytes = preface_bytes(MAGIC, 1, reserved, &settings);
        let got = Preface::decode(&bytes);
        if spec_settings_ok(&settings) {
            let p = got.unwrap();
            prop_assert_eq!(
                [p.initial_stream_window, p.session_window, p.max_concurrent_streams, p.accept_backlog, p.max_frame_payload],
                settings
            );
        } else {
            let err = got.unwrap_err();
            prop_assert!(matches!(err, PrefaceError::Setting(_)), "{:?}", err);
            prop_assert_eq!(err.code(), ErrorCode::PROTOCOL_ERROR);
        }
    }
}

/// The worked example of spec Appendix A, byte for byte.
#[test]
fn appendix_a_bytes() {
    let client = Preface {
        initial_stream_window: 262_144,
        session_window: 67_108_864,
        max_concurrent_streams: 32_768,
        accept_backlog: 1024,
        max_frame_payload: 65_536,
    };
    let expected: [u8; 32] = [
        0x8b, 0x42, 0x52, 0x41, 0x49, 0x44, 0x0d, 0x0a, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01,
        0x00, 0x00,
    ];
    assert_eq!(client.encode(), expected);
    let hello = Frame::Data {
        stream: 1,
        flags: Flags::SYN.union(Flags::FIN),
        payload: Bytes::from_static(b"hello"),
    };
    assert_eq!(
        &encode(&hello)[..],
        &[0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'][..]
    );
    let reset = Frame::Reset {
        stream: 3,
        code: ErrorCode::CANCEL,
    };
    assert_eq!(
        &encode(&reset)[..],
        &[4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 7][..]
    );
    let goaway = Frame::GoAway {
        last_stream: 0,
        code: ErrorCode::PROTOCOL_ERROR,
        debug: Bytes::new(),
    };
    assert_eq!(
        &encode(&goaway)[..],
        &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1][..]
    );
}
