//! [`Request`], [`Response`] and [`IntoRequest`]: a message with its metadata.

use std::time::Duration;

use braid::rpc::MetadataMap;
use futures::Stream;
use tokio::time::Instant;

/// A request: the message (or, for a client-streaming call, the stream of messages) with its
/// header metadata and, on the client, a timeout for the whole call. On the server the
/// handler gets the client's metadata and the call's deadline here.
///
/// ```
/// use std::time::Duration;
/// use braid_prost::Request;
///
/// let mut request = Request::new(42u32).with_timeout(Duration::from_secs(2));
/// request.metadata_mut().append("user", "ann").unwrap();
/// assert_eq!(request.metadata().get("user"), Some("ann"));
/// assert_eq!(request.timeout(), Some(Duration::from_secs(2)));
/// assert_eq!(request.into_inner(), 42);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Request<T> {
    message: T,
    metadata: MetadataMap,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

impl<T> Request<T> {
    /// A request with no metadata and no timeout.
    pub fn new(message: T) -> Request<T> {
        Request {
            message,
            metadata: MetadataMap::new(),
            timeout: None,
            deadline: None,
        }
    }

    /// A request with `metadata`.
    pub fn from_parts(metadata: MetadataMap, message: T) -> Request<T> {
        Request {
            metadata,
            ..Request::new(message)
        }
    }

    /// What the server's handler gets: the client's metadata and the call's deadline.
    pub(crate) fn server(message: T, metadata: MetadataMap, deadline: Option<Instant>) -> Self {
        Request {
            message,
            metadata,
            timeout: deadline.map(|d| d.saturating_duration_since(Instant::now())),
            deadline,
        }
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// The message, without the metadata.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// The header metadata: sent by the client, received by the server.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The header metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// The metadata and the message.
    pub fn into_parts(self) -> (MetadataMap, T) {
        (self.metadata, self.message)
    }

    /// Sets the time allowed for the whole call ([`braid::rpc::CallOptions::timeout`]): when
    /// it passes both sides end the call with `DeadlineExceeded`.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// The request with a timeout; see [`Request::set_timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Request<T> {
        self.set_timeout(timeout);
        self
    }

    /// The timeout: the one set on the client; on the server, the time that was left when
    /// the handler started.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// On the server: when the client's deadline passes, if it set one. After it the call's
    /// stream is reset and its operations fail with `DeadlineExceeded`. `None` on the client.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The same request with the message mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            message: f(self.message),
            metadata: self.metadata,
            timeout: self.timeout,
            deadline: self.deadline,
        }
    }
}

/// Anything a typed client method takes as its request: the message itself, or a
/// [`Request`] around it (with metadata and a timeout). As tonic's `IntoRequest`.
pub trait IntoRequest<T> {
    /// The request.
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// Anything a generated client-streaming method takes as its requests: a [`Stream`] of
/// messages, or a [`Request`] around one (with metadata and a timeout). As tonic's
/// `IntoStreamingRequest`.
pub trait IntoStreamingRequest {
    /// The stream of messages.
    type Stream: Stream<Item = Self::Message> + Send;
    /// One message.
    type Message;
    /// The request.
    fn into_streaming_request(self) -> Request<Self::Stream>;
}

impl<S: Stream + Send> IntoStreamingRequest for S {
    type Stream = S;
    type Message = S::Item;

    fn into_streaming_request(self) -> Request<S> {
        Request::new(self)
    }
}

impl<S: Stream + Send> IntoStreamingRequest for Request<S> {
    type Stream = S;
    type Message = S::Item;

    fn into_streaming_request(self) -> Request<S> {
        self
    }
}

/// A response: the message (or, from a server-streaming handler, the stream of messages) with
/// the server's header and trailer metadata.
///
/// ```
/// use braid::rpc::MetadataMap;
/// use braid_prost::Response;
///
/// let mut response = Response::new("ok".to_owned());
/// response.metadata_mut().append("server", "a").unwrap();
/// response.trailer_mut().append("rows", "3").unwrap();
/// let (header, message, trailer) = response.into_parts();
/// assert_eq!((header.get("server"), message.as_str(), trailer.get("rows")), (Some("a"), "ok", Some("3")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Response<T> {
    message: T,
    header: MetadataMap,
    trailer: MetadataMap,
}

impl<T> Response<T> {
    /// A response with no metadata.
    pub fn new(message: T) -> Response<T> {
        Response {
            message,
            header: MetadataMap::new(),
            trailer: MetadataMap::new(),
        }
    }

    /// A response from its header metadata, message and trailer metadata.
    pub fn from_parts(header: MetadataMap, message: T, trailer: MetadataMap) -> Response<T> {
        Response {
            message,
            header,
            trailer,
        }
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// The message, without the metadata.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// The header metadata (as tonic's `Response::metadata`): sent before the first message.
    pub fn metadata(&self) -> &MetadataMap {
        &self.header
    }

    /// The header metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.header
    }

    /// The trailer metadata, sent with the status after the last message.
    pub fn trailer(&self) -> &MetadataMap {
        &self.trailer
    }

    /// The trailer metadata, mutably.
    pub fn trailer_mut(&mut self) -> &mut MetadataMap {
        &mut self.trailer
    }

    /// Header metadata, message, trailer metadata.
    pub fn into_parts(self) -> (MetadataMap, T, MetadataMap) {
        (self.header, self.message, self.trailer)
    }

    /// The same response with the message mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            message: f(self.message),
            header: self.header,
            trailer: self.trailer,
        }
    }
}
