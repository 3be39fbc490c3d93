//! The RPC wire format (spec/RPC.md): the records a call sends inside one braid stream,
//! their encoders, and [`RecordDecoder`], an IO-free decoder that checks every length
//! against its limit before buffering the body. Public so fuzz targets and other
//! implementations can drive it directly.

use std::{collections::VecDeque, time::Duration};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{
    metadata::{check_entry, MetadataError, MetadataMap, MAX_ENTRIES},
    status::{Code, Status},
};

/// Bytes before each record body: kind (1) + length (4).
pub const RECORD_HEADER_LEN: usize = 5;

/// Flag bit in a request HEADERS body: a timeout follows the method.
const FLAG_TIMEOUT: u8 = 0x01;

/// The kind byte of a record (spec/RPC.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 0x01: request head (method, timeout, metadata) or response header metadata.
    Headers = 1,
    /// 0x02: one message.
    Message = 2,
    /// 0x03: the server's status and trailer metadata; the last record of the call.
    Trailers = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Headers),
            2 => Some(Kind::Message),
            3 => Some(Kind::Trailers),
            _ => None,
        }
    }
}

/// One decoded record: its kind and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What the body holds.
    pub kind: Kind,
    /// The body bytes (a zero-copy slice where possible).
    pub body: Bytes,
}

/// Largest accepted body per record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest MESSAGE body.
    pub max_message: usize,
    /// Largest HEADERS or TRAILERS body.
    pub max_metadata: usize,
}

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The kind byte is not 1, 2 or 3.
    #[error("unknown record kind {0:#04x}")]
    UnknownKind(u8),
    /// A record header announced a body over the limit for its kind.
    #[error("received {kind} of {len} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// `"message"` or `"metadata"`.
        kind: &'static str,
        /// Announced body length.
        len: usize,
        /// The receiver's limit.
        limit: usize,
    },
    /// A body does not follow its layout.
    #[error("malformed {0} record: {1}")]
    Malformed(&'static str, &'static str),
    /// The stream ended in the middle of a record.
    #[error("stream ended inside a record")]
    Truncated,
    /// A metadata entry is invalid.
    #[error("invalid metadata from peer: {0}")]
    Metadata(#[from] MetadataError),
}

impl WireError {
    /// The status a call ends with because of this error: `ResourceExhausted` for a size
    /// limit, `Internal` for a broken record.
    pub fn to_status(&self) -> Status {
        let code = match self {
            WireError::TooLarge { .. } => Code::ResourceExhausted,
            _ => Code::Internal,
        };
        Status::new(code, self.to_string())
    }
}

/// Splits a byte stream into records. Feed it chunks with [`RecordDecoder::push`]; take
/// records with [`RecordDecoder::next_record`]. A body is only buffered after its length has
/// passed the limit, so memory stays below the limit plus one chunk.
///
/// ```
/// use braid::rpc::wire::{encode_record, Kind, Limits, RecordDecoder};
/// let mut dec = RecordDecoder::new(Limits { max_message: 16, max_metadata: 16 });
/// let bytes = encode_record(Kind::Message, b"hi");
/// dec.push(bytes.slice(..3));
/// assert_eq!(dec.next_record().unwrap(), None); // header incomplete
/// dec.push(bytes.slice(3..));
/// assert_eq!(dec.next_record().unwrap().unwrap().body, &b"hi"[..]);
/// dec.push(encode_record(Kind::Message, &[0; 17]).slice(..5));
/// assert!(dec.next_record().is_err()); // 17 > 16, known from the header alone
/// ```
#[derive(Debug)]
pub struct RecordDecoder {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    limits: Limits,
    /// The buffered bytes were copied out by [`RecordDecoder::compact_partial`] since the
    /// last push.
    compacted: bool,
}

/// A partial record up to this size is copied out of the chunks it lies in while the
/// decoder waits for the rest (see [`RecordDecoder::compact_partial`]).
const COMPACT_MAX: usize = 1024;

impl RecordDecoder {
    /// An empty decoder enforcing `limits`.
    pub fn new(limits: Limits) -> RecordDecoder {
        RecordDecoder {
            chunks: VecDeque::new(),
            buffered: 0,
            limits,
            compacted: false,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
            self.compacted = false;
        }
    }

    /// Bytes pushed and not yet returned in a record.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The next complete record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Record>, WireError> {
        if self.buffered < RECORD_HEADER_LEN {
            self.compact_partial();
            return Ok(None);
        }
        let head = match self.chunks.front() {
            Some(c) if c.len() >= RECORD_HEADER_LEN => [c[0], c[1], c[2], c[3], c[4]],
            _ => self.gather_header(),
        };
        let kind = Kind::from_u8(head[0]).ok_or(WireError::UnknownKind(head[0]))?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let (limit, what) = match kind {
            Kind::Message => (self.limits.max_message, "message"),
            Kind::Headers | Kind::Trailers => (self.limits.max_metadata, "metadata"),
        };
        if len > limit {
            return Err(WireError::TooLarge {
                kind: what,
                len,
                limit,
            });
        }
        if self.buffered - RECORD_HEADER_LEN < len {
            self.compact_partial();
            return Ok(None);
        }
        self.skip(RECORD_HEADER_LEN);
        let body = self.take(len);
        Ok(Some(Record { kind, body }))
    }

    /// The record header when it spans chunks (`buffered >= RECORD_HEADER_LEN`).
    fn gather_header(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut head = [0u8; RECORD_HEADER_LEN];
        let mut filled = 0;
        for chunk in &self.chunks {
            let n = chunk.len().min(RECORD_HEADER_LEN - filled);
            head[filled..filled + n].copy_from_slice(&chunk[..n]);
            filled += n;
            if filled == RECORD_HEADER_LEN {
                break;
            }
        }
        head
    }

    /// While a small partial record waits for its rest, copies it out of the chunks it lies
    /// in. Those chunks are usually slices of the session's large read buffer; holding one
    /// keeps the whole buffer alive, so the session's next read needs a fresh allocation
    /// (fresh pages: a page fault per 4 KiB). Copying at most [`COMPACT_MAX`] bytes once per
    /// pushed chunk lets the buffer be reused instead.
    fn compact_partial(&mut self) {
        if self.compacted || self.buffered == 0 || self.buffered > COMPACT_MAX {
            return;
        }
        let mut out = BytesMut::with_capacity(self.buffered);
        for chunk in self.chunks.drain(..) {
            out.extend_from_slice(&chunk);
        }
        self.chunks.push_back(out.freeze());
        self.compacted = true;
    }

    /// Call at end of stream: fails if a partial record is left.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.buffered == 0 {
            Ok(())
        } else {
            Err(WireError::Truncated)
        }
    }

    /// Drops the first `n` buffered bytes (`n <= buffered`): no reference-count traffic.
    fn skip(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let front = self.chunks.front_mut().expect("n <= buffered");
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Removes the first `n` buffered bytes (`n <= buffered`), without copying when they
    /// lie in one chunk.
    fn take(&mut self, n: usize) -> Bytes {
        self.buffered -= n;
        if n == 0 {
            return Bytes::new();
        }
        let front = self.chunks.front_mut().expect("n <= buffered");
        if front.len() >= n {
            let out = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let front = self.chunks.front_mut().expect("n <= buffered");
            let k = front.len().min(n - out.len());
            out.extend_from_slice(&front[..k]);
            front.advance(k);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        out.freeze()
    }
}

/// The 5-byte header of a record with a `len`-byte body.
///
/// # Panics
/// If `len` exceeds `u32::MAX` (callers check message limits first).
#[inline]
pub fn record_header(kind: Kind, len: usize) -> [u8; RECORD_HEADER_LEN] {
    let len = u32::try_from(len).expect("record body over 4 GiB");
    let l = len.to_be_bytes();
    [kind as u8, l[0], l[1], l[2], l[3]]
}

/// A whole record: header and body, in one buffer.
pub fn encode_record(kind: Kind, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(RECORD_HEADER_LEN + body.len());
    out.put_slice(&record_header(kind, body.len()));
    out.put_slice(body);
    out.freeze()
}

/// The decoded body of the client's HEADERS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method path, e.g. `/pkg.Service/Method`.
    pub method: String,
    /// The time the client allows, counted from when the server reads this record.
    pub timeout: Option<Duration>,
    /// The client's header metadata.
    pub metadata: MetadataMap,
}

/// Whether `method` is a valid method path: `/` then visible ASCII, at most 65,535 bytes.
pub fn valid_method(method: &str) -> bool {
    method.starts_with('/')
        && method.len() <= u16::MAX as usize
        && method.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Encodes a request HEADERS body (spec/RPC.md §4.1). `method` must be [`valid_method`].
pub fn encode_request_head(
    method: &str,
    timeout: Option<Duration>,
    metadata: &MetadataMap,
) -> Bytes {
    let mut out = BytesMut::with_capacity(3 + method.len() + 8 + metadata.encoded_len());
    out.put_u8(if timeout.is_some() { FLAG_TIMEOUT } else { 0 });
    out.put_u16(method.len() as u16);
    out.put_slice(method.as_bytes());
    if let Some(t) = timeout {
        out.put_u64(u64::try_from(t.as_micros()).unwrap_or(u64::MAX));
    }
    put_metadata(&mut out, metadata);
    out.freeze()
}

/// Decodes a request HEADERS body.
pub fn decode_request_head(body: Bytes) -> Result<RequestHead, WireError> {
    const WHAT: &str = "request HEADERS";
    let mut r = Reader {
        buf: body,
        what: WHAT,
    };
    let flags = r.u8()?;
    if flags & !FLAG_TIMEOUT != 0 {
        return Err(WireError::Malformed(WHAT, "unknown flag bits"));
    }
    let len = r.u16()? as usize;
    let method = r.take(len)?;
    let method = std::str::from_utf8(&method)
        .ok()
        .filter(|m| valid_method(m))
        .ok_or(WireError::Malformed(WHAT, "invalid method path"))?
        .to_owned();
    let timeout = if flags & FLAG_TIMEOUT != 0 {
        Some(Duration::from_micros(r.u64()?))
    } else {
        None
    };
    let metadata = r.metadata()?;
    r.end()?;
    Ok(RequestHead {
        method,
        timeout,
        metadata,
    })
}

/// Encodes a response HEADERS body: just the metadata block.
pub fn encode_response_head(metadata: &MetadataMap) -> Bytes {
    let mut out = BytesMut::with_capacity(metadata.encoded_len());
    put_metadata(&mut out, metadata);
    out.freeze()
}

/// Decodes a response HEADERS body.
pub fn decode_response_head(body: Bytes) -> Result<MetadataMap, WireError> {
    let mut r = Reader {
        buf: body,
        what: "response HEADERS",
    };
    let md = r.metadata()?;
    r.end()?;
    Ok(md)
}

/// Encodes a TRAILERS body (spec/RPC.md §4.3). A message over 65,535 bytes is cut at a
/// character boundary.
pub fn encode_trailers(status: &Status, metadata: &MetadataMap) -> Bytes {
    let mut msg = status.message();
    if msg.len() > u16::MAX as usize {
        let mut end = u16::MAX as usize;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg = &msg[..end];
    }
    let details = status.details();
    let mut out = BytesMut::with_capacity(7 + msg.len() + details.len() + metadata.encoded_len());
    out.put_u8(status.code().as_u8());
    out.put_u16(msg.len() as u16);
    out.put_slice(msg.as_bytes());
    out.put_u32(u32::try_from(details.len()).expect("details over 4 GiB"));
    out.put_slice(details);
    put_metadata(&mut out, metadata);
    out.freeze()
}

/// Decodes a TRAILERS body into the status and the trailer metadata.
pub fn decode_trailers(body: Bytes) -> Result<(Status, MetadataMap), WireError> {
    let mut r = Reader {
        buf: body,
        what: "TRAILERS",
    };
    let code = Code::from_u8(r.u8()?);
    let len = r.u16()? as usize;
    let msg = String::from_utf8_lossy(&r.take(len)?).into_owned();
    let len = r.u32()? as usize;
    let details = r.take(len)?;
    let md = r.metadata()?;
    r.end()?;
    Ok((Status::new(code, msg).with_details(details), md))
}

fn put_metadata(out: &mut BytesMut, md: &MetadataMap) {
    out.put_u16(md.len() as u16);
    for (k, v) in md.raw() {
        out.put_u8(k.len() as u8);
        out.put_slice(k.as_bytes());
        out.put_u32(u32::try_from(v.len()).expect("metadata value over 4 GiB"));
        out.put_slice(v);
    }
}

/// Bounds-checked reads from a record body; every length is checked against what is left
/// before anything is sliced or allocated.
struct Reader {
    buf: Bytes,
    what: &'static str,
}

impl Reader {
    fn need(&self, n: usize) -> Result<(), WireError> {
        if self.buf.remaining() < n {
            Err(WireError::Malformed(self.what, "truncated"))
        } else {
            Ok(())
        }
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        self.need(8)?;
        Ok(self.buf.get_u64())
    }
    fn take(&mut self, n: usize) -> Result<Bytes, WireError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }
    fn end(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed(self.what, "trailing bytes"))
        }
    }
    fn metadata(&mut self) -> Result<MetadataMap, WireError> {
        let count = self.u16()? as usize;
        debug_assert!(count <= MAX_ENTRIES);
        // Each entry takes at least 6 bytes, so this never over-allocates from the count.
        if count * 6 > self.buf.remaining() {
            return Err(WireError::Malformed(
                self.what,
                "metadata count exceeds body",
            ));
        }
        let mut md = MetadataMap::new();
        for _ in 0..count {
            let klen = self.u8()? as usize;
            let key = self.take(klen)?;
            let vlen = self.u32()? as usize;
            let value = self.take(vlen)?;
            check_entry(&key, &value)?;
            let key = String::from_utf8(key.to_vec()).expect("checked ASCII");
            md.push_checked(key, value);
        }
        Ok(md)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> RecordDecoder {
        RecordDecoder::new(Limits {
            max_message: 1 << 20,
            max_metadata: 1 << 10,
        })
    }

    /// A small partial record must not keep the large buffer it arrived in alive (the
    /// session's read buffer could not be reused), and must still decode once completed.
    #[test]
    fn a_small_partial_record_lets_go_of_its_chunk() {
        let mut wire = BytesMut::new();
        for i in 0..100u8 {
            wire.extend_from_slice(&encode_record(Kind::Message, &[i; 60]));
        }
        let whole = wire.len();
        wire.extend_from_slice(&encode_record(Kind::Message, &[7; 60]));
        let all = wire.freeze();
        let big = all.slice(..whole + 30); // ends 30 bytes into the last record
        let mut dec = decoder();
        dec.push(big.clone());
        for i in 0..100u8 {
            assert_eq!(dec.next_record().unwrap().unwrap().body, vec![i; 60]);
        }
        assert_eq!(dec.next_record().unwrap(), None);
        drop(all);
        assert!(big.is_unique(), "the decoder still holds the big chunk");
        dec.push(Bytes::copy_from_slice(
            &encode_record(Kind::Message, &[7; 60])[30..],
        ));
        assert_eq!(dec.next_record().unwrap().unwrap().body, vec![7; 60]);
        assert_eq!(dec.buffered(), 0);
    }

    /// A large partial record is left where it is (copying it would cost more than it saves).
    #[test]
    fn a_large_partial_record_is_not_copied() {
        let rec = encode_record(Kind::Message, &[1; 4000]);
        let part = rec.slice(..2000);
        let mut dec = decoder();
        dec.push(part.clone());
        assert_eq!(dec.next_record().unwrap(), None);
        drop(rec);
        assert!(
            !part.is_unique(),
            "the decoder should still share the chunk"
        );
    }
}
