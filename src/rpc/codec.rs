//! [`Codec`]: how messages become the bytes of MESSAGE records, and back.

use bytes::Bytes;

use super::Status;

/// Turns outgoing messages into bytes and incoming bytes into messages.
///
/// A client uses `Encode` for requests and `Decode` for responses; a server route uses
/// `Decode` for requests and `Encode` for responses. [`BytesCodec`], the default, passes
/// [`Bytes`] through unchanged. An encode error fails only that `send`; a decode error ends
/// the call with the returned status (use [`Status::internal`] or
/// [`Status::invalid_argument`]).
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
