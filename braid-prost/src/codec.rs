//! [`ProstCodec`] and [`encode`]: prost messages as braid MESSAGE bodies; [`ProstEncoder`]:
//! the sending side, encoding in place.

use std::{any::type_name, fmt, marker::PhantomData};

use braid::rpc::{Codec, Status};
use bytes::{Bytes, BytesMut};
use prost::Message;

/// A [`Codec`] that decodes incoming messages as the prost message `T`; outgoing messages
/// arrive already encoded by [`encode`] (as [`Bytes`]) and pass through.
///
/// Only the decoded type is part of the codec, so the typed halves of a call name one message
/// type each ([`Streaming<T>`](crate::Streaming)). A message that does not decode as `T` ends
/// the call with `Internal` on the side that received it, and the peer sees `Internal` too
/// (spec/RPC.md §6.4).
///
/// The typed senders ([`Sender`](crate::Sender), the server's responses, client-streaming
/// requests) don't go through its encode side: they switch their half of the call to a codec
/// that encodes each prost message straight into braid's send batch
/// ([`Codec::encode_into`]), with no allocation or copy per message.
///
/// ```
/// use braid::rpc::Codec;
/// use braid_prost::{encode, ProstCodec};
///
/// let mut codec = ProstCodec::<String>::new(); // prost implements Message for String
/// let bytes = codec.encode(encode(&"hi".to_owned())).unwrap();
/// assert_eq!(codec.decode(bytes).unwrap(), "hi");
/// assert!(codec.decode(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
pub struct ProstCodec<T>(PhantomData<fn() -> T>);

impl<T> ProstCodec<T> {
    /// The codec for messages of type `T`.
    pub const fn new() -> Self {
        ProstCodec(PhantomData)
    }
}

impl<T> Default for ProstCodec<T> {
    fn default() -> Self {
        ProstCodec::new()
    }
}

impl<T> Clone for ProstCodec<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ProstCodec<T> {}

impl<T> fmt::Debug for ProstCodec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProstCodec<{}>", type_name::<T>())
    }
}

impl<T: Message + Default + 'static> Codec for ProstCodec<T> {
    type Encode = Bytes;
    type Decode = T;

    fn encode(&mut self, item: Bytes) -> Result<Bytes, Status> {
        Ok(item)
    }

    fn decode(&mut self, bytes: Bytes) -> Result<T, Status> {
        T::decode(bytes)
            .map_err(|e| Status::internal(format!("failed to decode {}: {e}", type_name::<T>())))
    }
}

/// The sending side's codec: outgoing messages are prost messages `M`, encoded straight
/// into the batch buffer by [`Codec::encode_into`] (no allocation and no copy per message),
/// or into a `Bytes` of their own by [`Codec::encode`] for a single send. A sending half
/// never decodes; `decode` passes the bytes through.
///
/// The typed senders switch their half of a call to it with `CallSender::with_codec` /
/// `ServerSender::with_codec`, so a call keeps one [`ProstCodec`] type (named by its
/// received messages) while each sender encodes its own message type in place.
pub(crate) struct ProstEncoder<M>(PhantomData<fn(M)>);

impl<M> ProstEncoder<M> {
    pub(crate) const fn new() -> Self {
        ProstEncoder(PhantomData)
    }
}

impl<M> Clone for ProstEncoder<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for ProstEncoder<M> {}

impl<M> fmt::Debug for ProstEncoder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProstEncoder<{}>", type_name::<M>())
    }
}

impl<M: Message + 'static> Codec for ProstEncoder<M> {
    type Encode = M;
    type Decode = Bytes;

    fn encode(&mut self, item: M) -> Result<Bytes, Status> {
        Ok(encode(&item))
    }

    fn encoded_len(&self, item: &M) -> Option<usize> {
        Some(item.encoded_len())
    }

    fn encode_into(&mut self, item: M, buf: &mut BytesMut) -> Result<(), Status> {
        // A BytesMut grows as needed, so prost's capacity check can't fail.
        item.encode(buf)
            .map_err(|e| Status::internal(format!("failed to encode {}: {e}", type_name::<M>())))
    }

    fn decode(&mut self, bytes: Bytes) -> Result<Bytes, Status> {
        Ok(bytes)
    }
}

/// Encodes a prost message into one MESSAGE body (one allocation of exactly its length).
pub fn encode<M: Message>(msg: &M) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_into_appends_what_decodes_back() {
        let msgs = ["".to_owned(), "hi".to_owned(), "é".repeat(300)];
        let mut buf = BytesMut::from(&b"head"[..]);
        let mut ends = vec![buf.len()];
        for m in &msgs {
            ProstEncoder::<String>::new()
                .encode_into(m.clone(), &mut buf)
                .unwrap();
            ends.push(buf.len());
        }
        let buf = buf.freeze();
        assert_eq!(&buf[..4], b"head");
        for (i, m) in msgs.iter().enumerate() {
            let body = buf.slice(ends[i]..ends[i + 1]);
            // The same bytes as a message encoded on its own, and they decode back.
            assert_eq!(body, encode(m));
            assert_eq!(&ProstCodec::<String>::new().decode(body).unwrap(), m);
        }
    }
}
