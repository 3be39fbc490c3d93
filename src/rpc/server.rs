//! [`Server`]: accepts a session's streams, reads each call's head, routes it by method to
//! a handler running in the call's own task, and turns the handler's result (or panic) into the
//! call's status.

use std::{
    any::Any, collections::HashMap, fmt, future::Future, panic::AssertUnwindSafe, sync::Arc,
    time::Duration,
};

use futures::{future::BoxFuture, FutureExt};
use tokio::time::Instant;

use super::{
    call::CallLimits,
    codec::{BytesCodec, Codec},
    io::{sleep_until, ReadError, RecordReader, RecordWriter},
    server_stream::{CallState, ServerStream},
    status::Status,
    wire::{
        decode_request_head, encode_trailers, record_header, valid_method, Kind, Limits, Record,
        RequestHead,
    },
    MetadataMap, DEFAULT_MAX_METADATA_SIZE, DEFAULT_MAX_RECV_MESSAGE_SIZE,
    DEFAULT_MAX_SEND_MESSAGE_SIZE,
};
use crate::{Error, ErrorCode, Session, Stream};

/// Everything a route needs to build its [`ServerStream`].
struct Parts {
    call: Arc<CallState>,
    reader: RecordReader,
    head: RequestHead,
    deadline: Option<Instant>,
}

type Handler = dyn Fn(Parts) -> BoxFuture<'static, Result<(), Status>> + Send + Sync;

/// Routes calls by method path to async handlers.
///
/// Each call runs in a task of its own, which reads the request head and then runs the
/// handler. The handler's `Ok(())` becomes status OK, `Err(status)` that status; a panicking
/// handler ends the call with `Internal`; a call whose task is dropped (the runtime shuts
/// down) is reset with `CANCEL`, which the client reports as `Cancelled`. An unknown method
/// gets `Unimplemented`. When the client's deadline passes, the stream is reset and the
/// handler's stream operations fail with `DeadlineExceeded` (the handler itself is left to
/// return).
///
/// ```no_run
/// use braid::rpc::{Server, ServerStream};
/// # async fn demo(session: braid::Session) -> Result<(), braid::Error> {
/// let server = Server::new().route("/echo.Echo/Echo", |mut stream: ServerStream| async move {
///     while let Some(msg) = stream.recv().await? {
///         stream.send(msg).await?;
///     }
///     Ok(())
/// });
/// server.serve(session).await
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    routes: Arc<HashMap<String, Arc<Handler>>>,
    limits: CallLimits,
    head_timeout: Duration,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .field("head_timeout", &self.head_timeout)
            .finish()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// A server with no routes and gRPC's default limits: 4 MiB per received message,
    /// 16 KiB of metadata per header or trailer.
    pub fn new() -> Server {
        Server {
            routes: Arc::new(HashMap::new()),
            limits: CallLimits {
                max_recv: DEFAULT_MAX_RECV_MESSAGE_SIZE,
                max_send: DEFAULT_MAX_SEND_MESSAGE_SIZE,
                max_metadata: DEFAULT_MAX_METADATA_SIZE,
            },
            head_timeout: Duration::from_secs(30),
        }
    }

    /// Routes `method` (e.g. `/pkg.Service/Method`) to `handler`, with [`bytes::Bytes`]
    /// messages. A later route for the same method replaces the earlier one.
    ///
    /// # Panics
    /// If `method` is not a valid path (`/` then visible ASCII).
    pub fn route<F, Fut>(self, method: &str, handler: F) -> Server
    where
        F: Fn(ServerStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        self.route_with_codec(method, BytesCodec, handler)
    }

    /// Like [`Server::route`], with messages encoded by `codec` (`Decode` for requests,
    /// `Encode` for responses).
    ///
    /// # Panics
    /// If `method` is not a valid path.
    pub fn route_with_codec<C, F, Fut>(mut self, method: &str, codec: C, handler: F) -> Server
    where
        C: Codec,
        F: Fn(ServerStream<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        assert!(valid_method(method), "invalid method path {method:?}");
        let handler: Arc<Handler> = Arc::new(move |p: Parts| {
            let stream = ServerStream::new(p.call, p.reader, codec.clone(), p.head, p.deadline);
            Box::pin(handler(stream)) as BoxFuture<'static, _>
        });
        Arc::make_mut(&mut self.routes).insert(method.to_owned(), handler);
        self
    }

    /// Largest message accepted from clients (default 4 MiB); a larger one ends the call
    /// with `ResourceExhausted`.
    pub fn max_recv_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_recv = bytes;
        self
    }

    /// Largest message handlers may send (default: the wire maximum, 4 GiB − 1).
    pub fn max_send_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_send = bytes;
        self
    }

    /// Largest encoded header or trailer, sent or received (default 16 KiB).
    pub fn max_metadata_size(mut self, bytes: usize) -> Self {
        self.limits.max_metadata = bytes;
        self
    }

    /// How long a new stream may take to deliver its request head (default 30 s); after
    /// that the call ends with `DeadlineExceeded` before any handler runs.
    pub fn request_head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// Serves calls on `session` until it stops accepting streams: each stream is one call,
    /// run in its own task. Returns `Ok(())` when the session ended gracefully (GOAWAY
    /// either way), else the error that ended it. Calls already running go on.
    pub async fn serve(&self, session: Session) -> Result<(), Error> {
        loop {
            match session.accept().await {
                Ok(stream) => {
                    tokio::spawn(run_call(self.clone(), stream));
                }
                Err(Error::GoingAway { .. }) => return Ok(()),
                Err(Error::SessionClosed { code, .. }) if code == ErrorCode::NO_ERROR => {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// One call, from its first record to its status.
async fn run_call(server: Server, stream: Stream) {
    let (recv, send) = stream.into_split();
    let limits = Limits {
        max_message: server.limits.max_recv,
        max_metadata: server.limits.max_metadata,
    };
    let mut reader = RecordReader::new(recv, limits);
    let writer = RecordWriter::new(send);
    // The head usually came with the SYN: then no timer is needed to wait for it.
    let first = match reader.try_next() {
        Some(first) => first,
        None => match tokio::time::timeout(server.head_timeout, reader.next()).await {
            Ok(first) => first,
            Err(_) => {
                let status = Status::deadline_exceeded("the request head did not arrive in time");
                return reject(reader, writer, status).await;
            }
        },
    };
    let head = match first {
        Ok(Some(Record {
            kind: Kind::Headers,
            body,
        })) => decode_request_head(body).map_err(|e| e.to_status()),
        Ok(Some(_)) => Err(Status::internal(
            "protocol: the call did not start with HEADERS",
        )),
        Ok(None) => Err(Status::internal(
            "protocol: the stream ended before the request head",
        )),
        Err(ReadError::Wire(e)) => Err(e.to_status()),
        Err(ReadError::Stream(_)) => return, // the client is gone
    };
    let head = match head {
        Ok(head) => head,
        Err(status) => return reject(reader, writer, status).await,
    };
    let Some(handler) = server.routes.get(&head.method).cloned() else {
        let status = Status::unimplemented(format!("unknown method {}", head.method));
        return reject(reader, writer, status).await;
    };
    let deadline = head.timeout.and_then(|t| Instant::now().checked_add(t));
    let call = Arc::new(CallState::new(
        writer,
        server.limits.max_send,
        server.limits.max_metadata,
    ));
    let parts = Parts {
        call: call.clone(),
        reader,
        head,
        deadline,
    };
    // The handler runs in this task (no spawn and no wake-up between the head and the
    // handler, nor between its return and the status); a panic is caught and reported.
    let mut handler = AssertUnwindSafe(handler(parts)).catch_unwind();
    let outcome = tokio::select! {
        biased;
        outcome = &mut handler => Some(outcome),
        _ = sleep_until(deadline) => None,
    };
    let Some(outcome) = outcome else {
        // Deadline: reset the stream; the handler's stream operations now fail, and it is
        // left to return.
        call.expire();
        let _ = handler.await;
        return;
    };
    let status = match outcome {
        Ok(Ok(())) => Status::ok(),
        Ok(Err(status)) => status,
        Err(panic) => Status::internal(format!("handler panicked: {}", panic_message(panic))),
    };
    // The deadline also covers the status write, which may wait for flow-control credit
    // the client never grants (spec/RPC.md §6.3).
    tokio::select! {
        biased;
        () = call.end(status) => call.cleanup(),
        _ = sleep_until(deadline) => call.expire(),
    }
}

/// Ends a call that never reached a handler: trailers only, then FIN.
async fn reject(reader: RecordReader, writer: RecordWriter, status: Status) {
    drop(reader); // STOP_SENDING unless the client already finished
    let body = encode_trailers(&status, &MetadataMap::new());
    let head = record_header(Kind::Trailers, body.len());
    if writer.write(&[&head, &body]).await.is_ok() {
        let _ = writer.finish();
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
