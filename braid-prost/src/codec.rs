//! [`ProstCodec`] and [`encode`]: prost messages as braid MESSAGE bodies.

use std::{any::type_name, fmt, marker::PhantomData};

use braid::rpc::{Codec, Status};
use bytes::Bytes;
use prost::Message;

/// A [`Codec`] that decodes incoming messages as the prost message `T`; outgoing messages
/// arrive already encoded by [`encode`] (as [`Bytes`]) and pass through.
///
/// Only the decoded type is part of the codec, so the typed halves of a call name one message
/// type each ([`Streaming<T>`](crate::Streaming)). A message that does not decode as `T` ends
/// the call with `Internal` on the side that received it, and the peer sees `Internal` too
/// (spec/RPC.md §6.4).
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

/// Encodes a prost message into one MESSAGE body (one allocation of exactly its length).
pub fn encode<M: Message>(msg: &M) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}
