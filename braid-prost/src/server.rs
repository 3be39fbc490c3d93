//! The server side: the four call kinds as functions from a [`ServerStream`] and a typed
//! handler (each generated route is one of them), and [`Service`] / [`ServerExt`] to
//! register a generated server on a [`braid::rpc::Server`].

use std::future::Future;

use braid::rpc::{MetadataMap, Server, ServerSender, ServerStream, Status};
use futures::Stream;
use prost::Message;

use crate::{
    codec::{encode, ProstCodec, ProstEncoder},
    request::{Request, Response},
    streaming::Streaming,
};

/// A generated server (`XxxServer`): registers its routes on a [`braid::rpc::Server`].
pub trait Service {
    /// The protobuf service's full name, e.g. `routeguide.RouteGuide`.
    const NAME: &'static str;

    /// `server` with this service's methods routed to it.
    fn register(self, server: Server) -> Server;
}

/// [`ServerExt::add_service`] on [`braid::rpc::Server`], for tonic's
/// `Server::builder().add_service(...)` shape.
///
/// ```ignore
/// use braid_prost::ServerExt;
/// let server = braid::rpc::Server::new().add_service(RouteGuideServer::new(MyRouteGuide));
/// ```
pub trait ServerExt {
    /// Routes every method of `service` to it.
    fn add_service<S: Service>(self, service: S) -> Self;
}

impl ServerExt for Server {
    fn add_service<S: Service>(self, service: S) -> Server {
        service.register(self)
    }
}

/// Reads the request of a unary or server-streaming call (exactly one message, then the
/// client's half-close) and returns it with the answering half.
async fn single_request<Req>(
    mut stream: ServerStream<ProstCodec<Req>>,
) -> Result<(ServerSender<ProstCodec<Req>>, Request<Req>), Status>
where
    Req: Message + Default + 'static,
{
    let Some(message) = stream.recv().await? else {
        return Err(Status::internal("expected one request, got none"));
    };
    if stream.recv().await?.is_some() {
        return Err(Status::internal("expected one request, got more"));
    }
    let request = Request::server(message, stream.metadata().clone(), stream.deadline());
    Ok((stream.split().0, request))
}

/// The answering half of a client-streaming or bidirectional call, and its requests.
fn streaming_request<Req>(
    stream: ServerStream<ProstCodec<Req>>,
) -> (ServerSender<ProstCodec<Req>>, Request<Streaming<Req>>)
where
    Req: Message + Default + 'static,
{
    let (metadata, deadline) = (stream.metadata().clone(), stream.deadline());
    let (tx, rx) = stream.split();
    let requests = Request::server(Streaming::from_server(rx), metadata, deadline);
    (tx, requests)
}

/// Queues a handler's header and trailer metadata.
fn set_metadata<Req>(
    tx: &mut ServerSender<ProstCodec<Req>>,
    header: MetadataMap,
    trailer: MetadataMap,
) -> Result<(), Status>
where
    Req: Message + Default + 'static,
{
    if !header.is_empty() {
        tx.set_header(header)?;
    }
    if !trailer.is_empty() {
        tx.set_trailer(trailer)?;
    }
    Ok(())
}

/// Sends a handler's one response with its metadata.
async fn send_one<Req, Resp>(
    mut tx: ServerSender<ProstCodec<Req>>,
    response: Response<Resp>,
) -> Result<(), Status>
where
    Req: Message + Default + 'static,
    Resp: Message,
{
    let (header, reply, trailer) = response.into_parts();
    set_metadata(&mut tx, header, trailer)?;
    tx.send(encode(&reply)).await
}

/// Sends a handler's response stream, batched, each response encoded straight into the
/// batch ([`ProstEncoder`]); an `Err` item ends the call with it.
async fn send_stream<Req, Resp, S>(
    mut tx: ServerSender<ProstCodec<Req>>,
    response: Response<S>,
) -> Result<(), Status>
where
    Req: Message + Default + 'static,
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>>,
{
    let (header, messages, trailer) = response.into_parts();
    set_metadata(&mut tx, header, trailer)?;
    let mut tx = tx.with_codec(ProstEncoder::<Resp>::new());
    tx.send_all(messages).await
}

/// A unary method: one request, the handler, one response.
pub async fn unary<Req, Resp, F, Fut>(
    stream: ServerStream<ProstCodec<Req>>,
    handler: F,
) -> Result<(), Status>
where
    Req: Message + Default + 'static,
    Resp: Message,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let (tx, request) = single_request(stream).await?;
    send_one(tx, handler(request).await?).await
}

/// A server-streaming method: one request, the handler, its stream of responses.
pub async fn server_streaming<Req, Resp, S, F, Fut>(
    stream: ServerStream<ProstCodec<Req>>,
    handler: F,
) -> Result<(), Status>
where
    Req: Message + Default + 'static,
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>>,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>>,
{
    let (tx, request) = single_request(stream).await?;
    send_stream(tx, handler(request).await?).await
}

/// A client-streaming method: the handler gets a [`Streaming`] of requests and returns one
/// response.
pub async fn client_streaming<Req, Resp, F, Fut>(
    stream: ServerStream<ProstCodec<Req>>,
    handler: F,
) -> Result<(), Status>
where
    Req: Message + Default + 'static,
    Resp: Message,
    F: FnOnce(Request<Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let (tx, requests) = streaming_request(stream);
    send_one(tx, handler(requests).await?).await
}

/// A bidirectional method: the handler gets a [`Streaming`] of requests and returns a stream
/// of responses, sent as they come while the requests are still arriving.
pub async fn streaming<Req, Resp, S, F, Fut>(
    stream: ServerStream<ProstCodec<Req>>,
    handler: F,
) -> Result<(), Status>
where
    Req: Message + Default + 'static,
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>>,
    F: FnOnce(Request<Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>>,
{
    let (tx, requests) = streaming_request(stream);
    send_stream(tx, handler(requests).await?).await
}
