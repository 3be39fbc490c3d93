//! [`Streaming`]: typed incoming messages on either side; [`Sender`]: the client's typed
//! sending half of a bidirectional call.

use std::{
    fmt,
    future::poll_fn,
    marker::PhantomData,
    pin::Pin,
    task::{ready, Context, Poll},
};

use braid::rpc::{CallReceiver, CallSender, MetadataMap, SendError, ServerReceiver, Status};
use futures::{future::BoxFuture, Stream};
use prost::Message;
use tokio::time::Instant;

use crate::codec::{ProstCodec, ProstEncoder};

/// The braid receiver underneath.
enum Inner<T: Message + Default + 'static> {
    Client(CallReceiver<ProstCodec<T>>),
    Server(ServerReceiver<ProstCodec<T>>),
    /// Lent to a pending [`Stream::poll_next`].
    Lent,
}

impl<T: Message + Default + 'static> Inner<T> {
    async fn recv(&mut self) -> Result<Option<T>, Status> {
        match self {
            Inner::Client(rx) => rx.recv().await,
            Inner::Server(rx) => rx.recv().await,
            Inner::Lent => Err(Status::internal(
                "streaming receiver lent to a pending poll",
            )),
        }
    }
}

type Pending<T> = BoxFuture<'static, (Inner<T>, Result<Option<T>, Status>)>;

/// The incoming messages of a call: a server-streaming or bidirectional call's responses on
/// the client, a client-streaming or bidirectional call's requests in the server's handler.
/// As tonic's `Streaming`.
///
/// * [`Streaming::message`]: the next message; `Ok(None)` at the end of a successful stream
///   (on the client: the server's status was OK; on the server: the client half-closed);
///   `Err(status)` for every other end (cancelled, deadline, the server's error status, a
///   message that does not decode). Cancel-safe. The fast path: no allocation per message.
/// * As a [`Stream`] of `Result<T, Status>`: ends after `Ok(None)` or after the first error.
///   Each message polled this way costs one boxed future; prefer `message` in hot loops.
/// * On the client: [`Streaming::header`], [`Streaming::trailer`], [`Streaming::status`].
///
/// Dropping it on the client before the end cancels the call (the server sees `Cancelled`).
pub struct Streaming<T: Message + Default + 'static> {
    inner: Inner<T>,
    pending: Option<Pending<T>>,
    done: bool,
}

impl<T: Message + Default + 'static> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match &self.inner {
            Inner::Client(_) => "client",
            Inner::Server(_) => "server",
            Inner::Lent => "polling",
        };
        f.debug_struct("Streaming")
            .field("side", &side)
            .field("done", &self.done)
            .finish()
    }
}

impl<T: Message + Default + 'static> Streaming<T> {
    /// The responses of a client call.
    pub fn from_client(rx: CallReceiver<ProstCodec<T>>) -> Streaming<T> {
        Streaming::with(Inner::Client(rx))
    }

    /// The requests of a server call.
    pub fn from_server(rx: ServerReceiver<ProstCodec<T>>) -> Streaming<T> {
        Streaming::with(Inner::Server(rx))
    }

    fn with(inner: Inner<T>) -> Streaming<T> {
        Streaming {
            inner,
            pending: None,
            done: false,
        }
    }

    /// The next message (tonic's `Streaming::message`): `Ok(Some(msg))`, `Ok(None)` at the
    /// successful end, `Err(status)` for any other end; after the end it returns the same
    /// result again. Cancel-safe.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        if self.pending.is_some() {
            return poll_fn(|cx| self.poll_pending(cx)).await;
        }
        self.inner.recv().await
    }

    /// Finishes a receive started by [`Stream::poll_next`] and puts the receiver back.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        let pending = self.pending.as_mut().expect("a pending receive");
        let (inner, result) = ready!(pending.as_mut().poll(cx));
        self.pending = None;
        self.inner = inner;
        Poll::Ready(result)
    }

    /// On the client: waits for the server's header metadata; `None` if the call ended
    /// without one, and on the server. Consumes no message. Call it before polling the
    /// messages as a [`Stream`] (while a polled receive is pending it returns `None`).
    pub async fn header(&mut self) -> Option<&MetadataMap> {
        match &mut self.inner {
            Inner::Client(rx) => rx.header().await,
            _ => None,
        }
    }

    /// On the client, once the stream has ended: the server's trailer metadata.
    pub fn trailer(&self) -> Option<&MetadataMap> {
        match &self.inner {
            Inner::Client(rx) => rx.trailer(),
            _ => None,
        }
    }

    /// On the client, once the stream has ended: the call's status.
    pub fn status(&self) -> Option<&Status> {
        match &self.inner {
            Inner::Client(rx) => rx.status(),
            _ => None,
        }
    }

    /// The messages as a [`Stream`] that owns the receiver and allocates nothing per message
    /// (unlike polling `Streaming` itself, which boxes each receive): the fast way to hand a
    /// request stream on, e.g. as a bidirectional handler's response stream. Ends after the
    /// successful end or after the first error; header and trailer are no longer reachable.
    pub fn into_stream(self) -> impl Stream<Item = Result<T, Status>> + Send + 'static {
        // Boxed once: the stream's state moves in and out of each message's future, and a
        // pointer moves faster than the receiver (hundreds of bytes; moving it was a sixth
        // of a streamed echo's CPU).
        futures::stream::unfold(Some(Box::new(self)), |rx| async move {
            let mut rx = rx?;
            match rx.message().await {
                Ok(Some(msg)) => Some((Ok(msg), Some(rx))),
                Ok(None) => None,
                Err(status) => Some((Err(status), None)),
            }
        })
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.inner {
            Inner::Client(rx) => rx.deadline(),
            Inner::Server(rx) => rx.deadline(),
            Inner::Lent => None,
        }
    }
}

impl<T: Message + Default + 'static> Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.pending.is_none() {
            let mut inner = std::mem::replace(&mut this.inner, Inner::Lent);
            this.pending = Some(Box::pin(async move {
                let result = inner.recv().await;
                (inner, result)
            }));
        }
        let item = ready!(this.poll_pending(cx)).transpose();
        this.done = !matches!(item, Some(Ok(_)));
        Poll::Ready(item)
    }
}

/// The client's typed sending half of a bidirectional call: requests of type `T`, on a call
/// whose responses are `R`. From a generated client's bidirectional method, with the
/// [`Streaming`] of its responses.
///
/// Dropping it before [`Sender::close_send`] cancels the call unless it already ended.
pub struct Sender<T: Message + 'static, R: Message + Default + 'static> {
    /// Encodes the requests in place; the responses' codec is put back by `into_inner`.
    inner: CallSender<ProstEncoder<T>>,
    _responses: PhantomData<fn() -> R>,
}

impl<T: Message + 'static, R: Message + Default + 'static> fmt::Debug for Sender<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T: Message + 'static, R: Message + Default + 'static> Sender<T, R> {
    /// The typed view of an untyped sending half.
    pub fn new(inner: CallSender<ProstCodec<R>>) -> Sender<T, R> {
        Sender {
            inner: inner.with_codec(ProstEncoder::new()),
            _responses: PhantomData,
        }
    }

    /// Sends one request; see [`CallSender::send`]. [`SendError::Ended`] means the call is
    /// over: the [`Streaming`] half reports its status.
    pub async fn send(&mut self, msg: T) -> Result<(), SendError> {
        self.inner.send(msg).await
    }

    /// Sends every request of `msgs`, batched; see [`CallSender::send_all`]. Each request is
    /// encoded straight into the batch (no allocation or copy of its own).
    pub async fn send_all<S>(&mut self, msgs: S) -> Result<(), SendError>
    where
        S: Stream<Item = T>,
    {
        self.inner.send_all(msgs).await
    }

    /// Half-closes the call: the server's stream of requests ends. Idempotent.
    pub fn close_send(&mut self) -> Result<(), SendError> {
        self.inner.close_send()
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }

    /// The untyped sending half (messages are [`encode`](crate::encode)d bytes).
    pub fn into_inner(self) -> CallSender<ProstCodec<R>> {
        self.inner.with_codec(ProstCodec::new())
    }
}
