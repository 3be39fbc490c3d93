//! [`Client`]: starts calls on a session; [`CallOptions`]: per-call timeout and limits.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    call::{Call, CallLimits, SendError},
    codec::{BytesCodec, Codec},
    io::{reset_code, sleep_until, status_from_error, RecordWriter, WriteError},
    metadata::MetadataMap,
    status::Status,
    wire::{encode_request_head, record_header, valid_method, Kind},
    DEFAULT_MAX_METADATA_SIZE, DEFAULT_MAX_RECV_MESSAGE_SIZE, DEFAULT_MAX_SEND_MESSAGE_SIZE,
};
use crate::Session;

/// Options for one call ([`Client::call_with`]). `None` fields use the client's settings.
///
/// ```
/// use std::time::Duration;
/// let opts = braid::rpc::CallOptions { timeout: Some(Duration::from_secs(2)), ..Default::default() };
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Time allowed for the whole call, from when it starts. It is sent to the server, and
    /// when it passes both sides end the call with `DeadlineExceeded` and the stream is reset.
    pub timeout: Option<Duration>,
    /// Largest message this call accepts from the server.
    pub max_recv_message_size: Option<usize>,
    /// Largest message this call may send.
    pub max_send_message_size: Option<usize>,
}

/// Starts calls on a braid [`Session`]; one stream per call. Cheap to clone.
///
/// ```no_run
/// # async fn demo(session: braid::Session) -> Result<(), braid::rpc::Status> {
/// use braid::rpc::{Client, MetadataMap};
/// let client = Client::new(session);
/// let mut call = client.call("/chat.Room/Talk", MetadataMap::new()).await?;
/// call.send("hello".into()).await.ok();
/// call.close_send().ok();
/// while let Some(reply) = call.recv().await? {
///     println!("{reply:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client<C = BytesCodec> {
    session: Session,
    codec: C,
    limits: CallLimits,
}

impl Client<BytesCodec> {
    /// A client whose messages are [`bytes::Bytes`], with gRPC's default limits: 4 MiB per
    /// received message, 16 KiB of metadata per header or trailer.
    pub fn new(session: Session) -> Client<BytesCodec> {
        Client {
            session,
            codec: BytesCodec,
            limits: CallLimits {
                max_recv: DEFAULT_MAX_RECV_MESSAGE_SIZE,
                max_send: DEFAULT_MAX_SEND_MESSAGE_SIZE,
                max_metadata: DEFAULT_MAX_METADATA_SIZE,
            },
        }
    }
}

impl<C: Codec> Client<C> {
    /// The same client with another message codec.
    pub fn with_codec<D: Codec>(self, codec: D) -> Client<D> {
        Client {
            session: self.session,
            codec,
            limits: self.limits,
        }
    }

    /// Largest message accepted from servers (default 4 MiB); a larger one ends the call
    /// with `ResourceExhausted`.
    pub fn max_recv_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_recv = bytes;
        self
    }

    /// Largest message this client sends (default: the wire maximum, 4 GiB − 1); a larger
    /// one fails that `send` with `ResourceExhausted`.
    pub fn max_send_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_send = bytes;
        self
    }

    /// Largest encoded header or trailer, sent or received (default 16 KiB).
    pub fn max_metadata_size(mut self, bytes: usize) -> Self {
        self.limits.max_metadata = bytes;
        self
    }

    /// The session calls run on.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Starts a call to `method` (e.g. `/pkg.Service/Method`) with header `metadata`.
    /// Returns once the request head is queued; it does not wait for the server.
    ///
    /// Errors: `InvalidArgument` for a bad method path, `ResourceExhausted` if the head is
    /// over the metadata limit, `Unavailable` if no stream can be opened.
    pub async fn call(&self, method: &str, metadata: MetadataMap) -> Result<Call<C>, Status> {
        self.call_with(method, metadata, CallOptions::default())
            .await
    }

    /// [`Client::call`] with a timeout or other per-call [`CallOptions`].
    pub async fn call_with(
        &self,
        method: &str,
        metadata: MetadataMap,
        options: CallOptions,
    ) -> Result<Call<C>, Status> {
        if !valid_method(method) {
            return Err(Status::invalid_argument(format!(
                "invalid method path {method:?}: expected '/' then visible ASCII"
            )));
        }
        let limits = CallLimits {
            max_recv: options
                .max_recv_message_size
                .unwrap_or(self.limits.max_recv),
            max_send: options
                .max_send_message_size
                .unwrap_or(self.limits.max_send),
            max_metadata: self.limits.max_metadata,
        };
        let deadline = options.timeout.and_then(|t| Instant::now().checked_add(t));
        let expired = || Status::deadline_exceeded("deadline exceeded before the call started");
        let stream = tokio::select! {
            biased;
            _ = sleep_until(deadline) => return Err(expired()),
            s = self.session.open() => s.map_err(|e| status_from_error(&e, "server"))?,
        };
        // The server counts the timeout from when it reads the head: send what is left.
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let body = encode_request_head(method, timeout, &metadata);
        if body.len() > limits.max_metadata {
            return Err(Status::resource_exhausted(format!(
                "request head (method and metadata) is {} bytes, over the {}-byte metadata limit",
                body.len(),
                limits.max_metadata
            )));
        }
        let (recv, send) = stream.into_split();
        let writer = RecordWriter::new(send);
        let head = record_header(Kind::Headers, body.len());
        let parts: [&[u8]; 2] = [&head, &body];
        tokio::select! {
            biased;
            _ = sleep_until(deadline) => {
                writer.reset(reset_code(super::Code::DeadlineExceeded), expired());
                return Err(expired());
            }
            r = writer.write(&parts) => r.map_err(|e| match e {
                WriteError::Stream(e) => status_from_error(&e, "server"),
                WriteError::Reset(s) => s,
                _ => Status::internal("request head could not be written"),
            })?,
        }
        Ok(Call::new(
            writer,
            recv,
            self.codec.clone(),
            limits,
            deadline,
        ))
    }

    /// A unary call: one request, one response. The response must be the only message and
    /// the status OK.
    pub async fn unary(
        &self,
        method: &str,
        request: C::Encode,
        options: CallOptions,
    ) -> Result<C::Decode, Status> {
        let mut call = self.call_with(method, MetadataMap::new(), options).await?;
        // Ended means the server already ended the call: recv reports why.
        if let Err(SendError::Rejected(status)) = call.send(request).await {
            return Err(status);
        }
        let _ = call.close_send();
        let reply = call.recv().await?;
        if call.recv().await?.is_some() {
            return Err(Status::internal("unary call got more than one response"));
        }
        reply.ok_or_else(|| Status::internal("unary call got no response"))
    }
}
