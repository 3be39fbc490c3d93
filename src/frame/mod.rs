//! Bytes ⇄ typed frames: the session preface, the 12-byte frame header, the frame types and
//! the incremental decoder (spec §2–§4). Depends on `bytes` only; knows nothing of streams.

mod codec;
mod error_code;
mod header;
mod preface;

pub use codec::{encode_frame, Decoder, FrameError};
pub use error_code::ErrorCode;
pub use header::{Flags, FrameType, Header, HEADER_LEN};
pub use preface::{Preface, PrefaceError, PREFACE_LEN, PROTOCOL_VERSION};

use bytes::Bytes;

/// Largest window or credit a peer may ever hold (spec §7): 2³¹−1.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;
/// Largest DATA payload any peer may announce it accepts (spec §2): 16 MiB.
pub const MAX_FRAME_PAYLOAD_LIMIT: u32 = 16 * 1024 * 1024;
/// Smallest `max_frame_payload` a peer may announce (spec §2).
pub const MIN_FRAME_PAYLOAD_LIMIT: u32 = 1024;
/// Largest GOAWAY debug text (spec §4.4).
pub const MAX_GOAWAY_DEBUG: usize = 1024;

/// A decoded frame (spec §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// §4.1: stream bytes, possibly opening (SYN), acknowledging (ACK) or half-closing (FIN).
    Data {
        /// Stream the bytes belong to (never 0).
        stream: u32,
        /// SYN / ACK / FIN.
        flags: Flags,
        /// The bytes.
        payload: Bytes,
    },
    /// §4.2: more send credit for a stream, or for the session when `stream == 0`.
    WindowUpdate {
        /// Stream id, 0 for the session window.
        stream: u32,
        /// Credit added, in bytes.
        increment: u32,
    },
    /// §4.3: liveness check and round-trip measurement.
    Ping {
        /// `true` for a reply.
        ack: bool,
        /// Opaque, echoed in the reply.
        opaque: u64,
    },
    /// §4.4: no new streams above `last_stream`; `code` says why.
    GoAway {
        /// Highest peer-opened stream id the sender processed.
        last_stream: u32,
        /// Why the session ends.
        code: ErrorCode,
        /// Human-readable detail (UTF-8, at most 1 KiB).
        debug: Bytes,
    },
    /// §4.5: abort both directions of a stream.
    Reset {
        /// Stream id (never 0).
        stream: u32,
        /// Why.
        code: ErrorCode,
    },
    /// §4.6: ask the peer to stop sending on a stream.
    StopSending {
        /// Stream id (never 0).
        stream: u32,
        /// Why.
        code: ErrorCode,
    },
}

impl Frame {
    /// The stream id in the frame's header (0 for session frames).
    pub fn stream_id(&self) -> u32 {
        match self {
            Frame::Data { stream, .. }
            | Frame::WindowUpdate { stream, .. }
            | Frame::Reset { stream, .. }
            | Frame::StopSending { stream, .. } => *stream,
            Frame::Ping { .. } | Frame::GoAway { .. } => 0,
        }
    }
}
