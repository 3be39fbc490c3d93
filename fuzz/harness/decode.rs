//! Shared by `fuzz_targets/frame_decode.rs` and `tests/fuzz_regressions.rs` (stable):
//! depends on `braid` and `bytes` only.
//!
//! Input layout: `[mode][chunk seed][wire bytes...]`.
//! * `mode & 3` picks how the decoder is driven: 0 `decode()`, 1 `next_header` then
//!   `next_frame` (what the runtime's driver does), 2 like 1 but `next_header` twice (it must
//!   be idempotent while a header is pending), 3 alternating 0 and 1 per frame.
//! * `(mode >> 2) & 3` picks `max_frame_payload`: 64 KiB, 1 KiB, 16 MiB, 0.
//! * The chunk seed drives a xorshift that cuts the wire bytes into the chunks fed to the
//!   decoder: 0 feeds everything at once, otherwise chunks of `1..=2 * seed` bytes.
//!
//! Properties: no panic; every decoded frame re-encodes (`encode_frame`) to exactly the bytes
//! it was decoded from; once the decoder says it needs more, less than one frame is pending;
//! `bytes_needed` never asks for more than one frame; the read buffer's capacity stays below
//! `4 * (one frame + max_chunk)` (see [`capacity_bound`]).
#![allow(dead_code)]

use braid::frame::{encode_frame, Decoder, ErrorCode, Frame, HEADER_LEN, MAX_GOAWAY_DEBUG};
use bytes::BytesMut;

/// The `max_frame_payload` the mode selects.
pub fn max_payload(mode: u8) -> u32 {
    match (mode >> 2) & 3 {
        0 => 64 * 1024,
        1 => 1024,
        2 => 16 * 1024 * 1024,
        _ => 0,
    }
}

/// Cuts `len` bytes into chunk sizes from `seed` (0: one chunk).
pub fn chunk_sizes(seed: u8, len: usize) -> Vec<usize> {
    if seed == 0 {
        return vec![len];
    }
    let max = 2 * seed as usize;
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (1 + (x % max as u64) as usize).min(left);
        out.push(n);
        left -= n;
    }
    out
}

/// The largest capacity the read buffer may reach.
///
/// Justification: after the decoder has taken every complete frame, the buffer holds less
/// than one frame (`< HEADER_LEN + frame` bytes, asserted below, where `frame` is the larger
/// of `max_payload` and the largest control payload, a GOAWAY's 8 + 1024); feeding a chunk adds
/// at most `max_chunk`. `BytesMut` grows its allocation to at most `max(2 * old capacity,
/// offset + needed)` and only when the old one (including the consumed prefix `offset`) is
/// too small, so a view's capacity stays below `4 * needed`: hence `4 * (HEADER_LEN + frame +
/// max_chunk)`, i.e. memory follows one frame, never the input size.
pub fn capacity_bound(max_payload: u32, max_chunk: usize) -> usize {
    4 * (HEADER_LEN + largest_payload(max_payload) + max_chunk)
}

/// The largest payload a header may announce: DATA up to `max_payload`, GOAWAY up to 8 + 1024.
pub fn largest_payload(max_payload: u32) -> usize {
    (max_payload as usize).max(8 + MAX_GOAWAY_DEBUG)
}

/// Runs the decoder over `data` (layout in the module docs) and checks every property.
pub fn check(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (mode, seed, wire) = (data[0], data[1], &data[2..]);
    let max = max_payload(mode);
    let chunks = chunk_sizes(seed, wire.len());
    let max_chunk = chunks.iter().copied().max().unwrap_or(0);
    let bound = capacity_bound(max, max_chunk);

    let mut decoder = Decoder::new(max);
    let mut buf = BytesMut::new();
    // Wire offset of the first byte still in `buf` (everything before was decoded).
    let mut consumed = 0usize;
    let mut fed = 0usize;
    let mut frames = 0usize;
    for n in chunks {
        buf.extend_from_slice(&wire[fed..fed + n]);
        fed += n;
        assert!(
            buf.capacity() <= bound,
            "read buffer capacity {} above {bound} (pending {})",
            buf.capacity(),
            buf.len()
        );
        loop {
            let before = buf.len();
            let result = match (mode & 3, frames % 2) {
                (0, _) | (3, 0) => decoder.decode(&mut buf),
                (m, _) => {
                    let header = decoder.next_header(&mut buf);
                    if m == 2 {
                        if let Ok(Some(_)) = header {
                            // A header is pending now: a second call parses nothing.
                            let len = buf.len();
                            assert_eq!(decoder.next_header(&mut buf), Ok(None));
                            assert_eq!(buf.len(), len);
                        }
                    }
                    match header {
                        Err(err) => Err(err),
                        Ok(_) => decoder.next_frame(&mut buf),
                    }
                }
            };
            let frame = match result {
                Err(err) => {
                    assert!(
                        [ErrorCode::PROTOCOL_ERROR, ErrorCode::FRAME_SIZE_ERROR]
                            .contains(&err.code),
                        "unexpected decode error code: {err}"
                    );
                    // A refused header is not consumed from the buffer.
                    assert_eq!(buf.len(), before);
                    return;
                }
                Ok(None) => break,
                Ok(Some(frame)) => frame,
            };
            frames += 1;
            let end = fed - buf.len();
            let original = &wire[consumed..end];
            consumed = end;
            check_frame(&frame, max);
            let mut again = BytesMut::new();
            encode_frame(&frame, &mut again);
            assert_eq!(
                &again[..],
                original,
                "frame {frame:?} does not re-encode to its bytes"
            );
        }
        // The decoder wants more: what is left is less than one frame.
        match decoder.pending_header() {
            None => assert!(
                buf.len() < HEADER_LEN,
                "{} bytes left, no header pending",
                buf.len()
            ),
            Some(h) => {
                assert!(
                    (buf.len() as u64) < h.len as u64,
                    "{} bytes left, payload {}",
                    buf.len(),
                    h.len
                );
                assert!(h.len as usize <= largest_payload(max));
            }
        }
        let needed = decoder.bytes_needed(&buf);
        assert!(needed >= 1);
        assert!(
            needed <= HEADER_LEN.max(largest_payload(max)),
            "bytes_needed {needed} is more than one frame"
        );
        assert_eq!(
            decoder.at_frame_boundary(&buf),
            decoder.pending_header().is_none() && buf.is_empty()
        );
    }
}

fn check_frame(frame: &Frame, max: u32) {
    match frame {
        Frame::Data {
            stream, payload, ..
        } => {
            assert_ne!(*stream, 0);
            assert!(payload.len() <= max as usize);
        }
        Frame::GoAway { debug, .. } => assert!(debug.len() <= MAX_GOAWAY_DEBUG),
        Frame::Reset { stream, .. } | Frame::StopSending { stream, .. } => assert_ne!(*stream, 0),
        Frame::WindowUpdate { .. } | Frame::Ping { .. } => {}
    }
}
