//! Batched sending: the messages of a [`Stream`] that are ready together are encoded back to
//! back into one buffer of whole MESSAGE records and queued on the braid stream in one write
//! (spec/RPC.md §1: one frame may carry several records). Per message this costs an encode
//! into the buffer ([`Codec::encode_into`]: in place for a codec that implements it, else an
//! encode and a copy), not a lock of the call and of the session. Also the other way
//! round: a receiving half's messages as a [`Stream`] ([`messages`]).

use std::{
    future::{poll_fn, Future},
    pin::Pin,
    task::Poll,
};

use bytes::{Bytes, BytesMut};
use futures::Stream;

use super::{
    codec::Codec,
    io::{RecordWriter, WriteError},
    status::Status,
    wire::{record_header, Kind, RECORD_HEADER_LEN},
};

/// Bytes of records gathered before they are queued in one write, like tonic's 32 KiB
/// encode buffer: large enough that the per-write cost (two locks, a wake) is spread over
/// hundreds of small messages, small enough to stay well inside a stream's send buffer.
pub(crate) const BATCH_BYTES: usize = 32 * 1024;

/// Room a batch buffer has beyond [`BATCH_BYTES`]: [`fill`] stops only once the limit is
/// passed, so the last small message fits without the buffer growing.
const BATCH_SLACK: usize = 1024;

/// Readies `buf` for the next batch: a fresh buffer when the last one was handed to the
/// stream (one allocation per batch, always of the same size, which the allocator reuses).
pub(crate) fn prepare(buf: &mut BytesMut) {
    if buf.capacity() == 0 {
        *buf = BytesMut::with_capacity(BATCH_BYTES + BATCH_SLACK);
    }
}

/// How [`fill`] stopped.
#[derive(Debug)]
pub(crate) enum Filled<E> {
    /// The buffer is full or the source has nothing more ready: write it, then fill again.
    More,
    /// The source ended; what is in the buffer is its last messages.
    Done,
    /// `encode` failed on an item; the buffer holds the messages before it.
    Failed(E),
    /// The call's stream can take no more records (the peer reset it or stopped reading,
    /// the session ended, this side reset it at the deadline) while the source had nothing
    /// ready; the buffer is empty.
    Closed(WriteError),
}

/// Waits for the source's next item, then takes every item it has ready without waiting,
/// encoding each into `buf`, until `buf` holds [`BATCH_BYTES`] or more. While it waits it
/// also watches `writer`, so a call that ends meanwhile stops it at once rather than when
/// the source next yields (which may be never). Cancel-safe: it waits only while `buf` is
/// empty, so dropping it never loses a taken item.
pub(crate) async fn fill<S, E>(
    mut source: Pin<&mut S>,
    writer: &RecordWriter,
    buf: &mut BytesMut,
    mut encode: impl FnMut(S::Item, &mut BytesMut) -> Result<(), E>,
) -> Filled<E>
where
    S: Stream + ?Sized,
{
    poll_fn(|cx| loop {
        match source.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                if let Err(e) = encode(item, buf) {
                    return Poll::Ready(Filled::Failed(e));
                }
                if buf.len() >= BATCH_BYTES {
                    return Poll::Ready(Filled::More);
                }
            }
            Poll::Ready(None) => return Poll::Ready(Filled::Done),
            Poll::Pending if buf.is_empty() => {
                return writer.poll_closed(cx).map(Filled::Closed);
            }
            Poll::Pending => return Poll::Ready(Filled::More),
        }
    })
    .await
}

/// Encodes one outgoing message and checks it against the send limit (`ResourceExhausted`
/// over it).
pub(crate) fn encode_message<C: Codec>(
    codec: &mut C,
    msg: C::Encode,
    max_send: usize,
) -> Result<Bytes, Status> {
    let body = codec.encode(msg)?;
    if body.len() > max_send {
        return Err(over_send_limit(body.len(), max_send));
    }
    Ok(body)
}

/// Appends one MESSAGE record to `buf`: encoded in place by [`Codec::encode_into`] behind a
/// header written first when the codec knows the length ([`Codec::encoded_len`]), else
/// encoded by [`Codec::encode`] and copied in. On an error (the codec's, or
/// `ResourceExhausted` over the send limit) `buf` is left as it was.
#[inline(always)] // the send loop's per-message step: as when it was written out in place
pub(crate) fn push_encoded<C: Codec>(
    codec: &mut C,
    msg: C::Encode,
    max_send: usize,
    buf: &mut BytesMut,
) -> Result<(), Status> {
    let Some(len) = codec.encoded_len(&msg) else {
        let body = encode_message(codec, msg, max_send)?;
        push_message(buf, &body);
        return Ok(());
    };
    if len > max_send {
        return Err(over_send_limit(len, max_send));
    }
    let start = buf.len();
    buf.extend_from_slice(&record_header(Kind::Message, len));
    let written = codec.encode_into(msg, buf);
    let wrote = buf.len() - start - RECORD_HEADER_LEN;
    if written.is_err() || wrote != len {
        buf.truncate(start);
    }
    written?;
    if wrote != len {
        return Err(Status::internal(format!(
            "codec wrote {wrote} bytes where encoded_len said {len}"
        )));
    }
    Ok(())
}

/// Appends one MESSAGE record (header and body) to `buf`.
#[inline(never)]
fn push_message(buf: &mut BytesMut, body: &[u8]) {
    buf.extend_from_slice(&record_header(Kind::Message, body.len()));
    buf.extend_from_slice(body);
}

#[cold]
#[inline(never)]
fn over_send_limit(len: usize, max_send: usize) -> Status {
    Status::resource_exhausted(format!(
        "message of {len} bytes is over the {max_send}-byte send limit"
    ))
}

/// A receiving half: `recv` gives `Ok(Some(msg))`, `Ok(None)` at a clean end, or the error
/// the call ended with.
pub(crate) trait Receive: Send {
    type Msg;
    fn recv(&mut self) -> impl Future<Output = Result<Option<Self::Msg>, Status>> + Send + '_;
}

/// `rx`'s messages as a [`Stream`], ending after `Ok(None)` or after the first error (a
/// receiver keeps returning its end; the stream yields it once).
pub(crate) fn messages<R: Receive>(
    rx: &mut R,
) -> impl Stream<Item = Result<R::Msg, Status>> + Send + '_ {
    futures::stream::unfold(Some(rx), |rx| async move {
        let rx = rx?;
        match rx.recv().await {
            Ok(Some(msg)) => Some((Ok(msg), Some(rx))),
            Ok(None) => None,
            Err(status) => Some((Err(status), None)),
        }
    })
}
