//! [`Codec`]: how messages become the bytes of MESSAGE records, and back.

use bytes::{Bytes, BytesMut};

use super::Status;

/// Turns outgoing messages into bytes and incoming bytes into messages.
///
/// A client uses `Encode` for requests and `Decode` for responses; a server route uses
/// `Decode` for requests and `Encode` for responses. [`BytesCodec`], the default, passes
/// [`Bytes`] through unchanged. An encode error fails only that `send`; a decode error ends
/// the call with the returned status (use [`Status::internal`] or
/// [`Status::invalid_argument`]).
///
/// A codec that can write a message straight into a buffer, and knows its length first,
/// should also implement [`Codec::encoded_len`] and [`Codec::encode_into`]: the batched
/// senders (`send_all`) gather many messages into one buffer, and for such a codec encode
/// each in place (no allocation and no copy per message). Without them, each message is
/// [`Codec::encode`]d and copied into the buffer.
///
/// ```
/// use braid::rpc::{Codec, Status};
/// use bytes::Bytes;
///
/// /// UTF-8 strings as messages.
/// #[derive(Debug, Clone, Copy, Default)]
/// struct Text;
///
/// impl Codec for Text {
///     type Encode = String;
///     type Decode = String;
///     fn encode(&mut self, item: String) -> Result<Bytes, Status> {
///         Ok(Bytes::from(item))
///     }
///     fn decode(&mut self, bytes: Bytes) -> Result<String, Status> {
///         String::from_utf8(bytes.to_vec()).map_err(|_| Status::internal("message is not UTF-8"))
///     }
/// }
/// # let mut c = Text;
/// # let bytes = c.encode("hi".into()).unwrap();
/// # assert_eq!(c.decode(bytes).unwrap(), "hi");
/// ```
pub trait Codec: Clone + Send + Sync + 'static {
    /// The type this side sends.
    type Encode: Send + 'static;
    /// The type this side receives.
    type Decode: Send + 'static;
    /// Encodes one outgoing message.
    fn encode(&mut self, item: Self::Encode) -> Result<Bytes, Status>;

    /// The length `item` will encode to, if the codec knows it before encoding. `Some` makes
    /// `send_all` write the record header first and then call [`Codec::encode_into`] to
    /// encode the message in place in its batch; the default, `None`, makes it call
    /// [`Codec::encode`] and copy the bytes in (the cheaper way for a codec whose messages
    /// already are bytes). The send limit is checked on this length.
    fn encoded_len(&self, item: &Self::Encode) -> Option<usize> {
        let _ = item;
        None
    }

    /// Encodes one outgoing message at the end of `buf`, appending exactly its bytes (as many
    /// as [`Codec::encoded_len`] said; a different count fails that message with `Internal`).
    /// `send_all` calls it for each message of a batch when `encoded_len` returns `Some`.
    /// The default calls [`Codec::encode`] and copies the result in; override it when the
    /// encoding can be written in place (a protobuf encoder, a serializer writing to a
    /// `BufMut`). On `Err`, whatever it appended is discarded.
    ///
    /// ```
    /// use braid::rpc::{Codec, Status};
    /// use bytes::{BufMut, Bytes, BytesMut};
    ///
    /// /// Little-endian `u64`s as messages, written in place.
    /// #[derive(Debug, Clone, Copy, Default)]
    /// struct U64s;
    ///
    /// impl Codec for U64s {
    ///     type Encode = u64;
    ///     type Decode = u64;
    ///     fn encode(&mut self, item: u64) -> Result<Bytes, Status> {
    ///         Ok(Bytes::copy_from_slice(&item.to_le_bytes()))
    ///     }
    ///     fn encoded_len(&self, _: &u64) -> Option<usize> {
    ///         Some(8)
    ///     }
    ///     fn encode_into(&mut self, item: u64, buf: &mut BytesMut) -> Result<(), Status> {
    ///         buf.put_u64_le(item); // no allocation of its own
    ///         Ok(())
    ///     }
    ///     fn decode(&mut self, bytes: Bytes) -> Result<u64, Status> {
    ///         let b: [u8; 8] = bytes[..].try_into().map_err(|_| Status::internal("not 8 bytes"))?;
    ///         Ok(u64::from_le_bytes(b))
    ///     }
    /// }
    /// let mut buf = BytesMut::new();
    /// U64s.encode_into(7, &mut buf).unwrap();
    /// assert_eq!(U64s.decode(buf.freeze()).unwrap(), 7);
    /// ```
    fn encode_into(&mut self, item: Self::Encode, buf: &mut BytesMut) -> Result<(), Status> {
        let bytes = self.encode(item)?;
        buf.extend_from_slice(&bytes);
        Ok(())
    }
    /// Decodes one incoming message.
    fn decode(&mut self, bytes: Bytes) -> Result<Self::Decode, Status>;
}

/// The default codec: messages are raw [`Bytes`], passed through without copying.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;

    fn encode(&mut self, item: Bytes) -> Result<Bytes, Status> {
        Ok(item)
    }

    fn decode(&mut self, bytes: Bytes) -> Result<Bytes, Status> {
        Ok(bytes)
    }
}
