//! `tonic`: gRPC over HTTP/2 (hyper + h2) without prost or code generation. Messages are raw
//! [`Bytes`] through [`RawCodec`]; the service is written by hand the way `tonic-build` would
//! generate it (a `tower::Service` dispatching on the path to `tonic::server::Grpc`), and the
//! client calls `tonic::client::Grpc` directly.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use futures::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::codegen::{http, BoxFuture, Service, StdError};
use tonic::server::{Grpc as ServerGrpc, NamedService, StreamingService, UnaryService};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

use super::{check_echo, STREAM_PATH, UNARY_PATH};

/// One-line description of the configuration, printed with the results.
pub const SETTINGS: &str =
    "tonic 0.14 (hyper 1, h2 0.4) defaults, raw-bytes Codec, no compression; \
     HTTP/2 windows: client stream 2 MiB / conn 5 MiB, server stream 1 MiB / conn 1 MiB, \
     max_frame_size 16384; TCP_NODELAY; Channel = tower Buffer (one worker task)";

fn status_err(what: &'static str) -> impl FnOnce(Status) -> io::Error {
    move |s| io::Error::other(format!("tonic {what}: {s}"))
}

/// Messages are the bytes themselves: what `prost` would hand over for a `bytes` field,
/// without the field's tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // `DecodeBuf::copy_to_bytes` splits the frame buffer: no copy.
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// The echo service, as `tonic-build` would generate it for
/// `service Echo { rpc Stream(stream Msg) returns (stream Msg); rpc Unary(Msg) returns (Msg); }`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = "bench.Echo";
}

/// Bidirectional streaming: the response stream is the request stream, each message echoed
/// as it is decoded.
struct StreamSvc;

impl StreamingService<Bytes> for StreamSvc {
    type Response = Bytes;
    type ResponseStream = Streaming<Bytes>;
    type Future = std::future::Ready<Result<Response<Streaming<Bytes>>, Status>>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        std::future::ready(Ok(Response::new(request.into_inner())))
    }
}

/// Unary: the response is the request.
struct UnarySvc;

impl UnaryService<Bytes> for UnarySvc {
    type Response = Bytes;
    type Future = std::future::Ready<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        std::future::ready(Ok(Response::new(request.into_inner())))
    }
}

impl<B> Service<http::Request<B>> for EchoServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            STREAM_PATH => {
                Box::pin(
                    async move { Ok(ServerGrpc::new(RawCodec).streaming(StreamSvc, req).await) },
                )
            }
            UNARY_PATH => {
                Box::pin(async move { Ok(ServerGrpc::new(RawCodec).unary(UnarySvc, req).await) })
            }
            _ => Box::pin(async move { Ok(Status::unimplemented("unknown method").into_http()) }),
        }
    }
}

/// Serves gRPC on the one connection accepted from `listener`, until the process exits.
pub async fn serve(listener: tokio::net::TcpListener) -> io::Result<()> {
    let tcp = crate::impls::accept_tcp(&listener).await?;
    // One connection, then an incoming stream that never ends (an ended one stops the server).
    let incoming = futures::stream::once(async move { Ok::<_, io::Error>(tcp) })
        .chain(futures::stream::pending());
    Server::builder()
        .serve_with_incoming(EchoServer, incoming)
        .await
        .map_err(|e| io::Error::other(format!("tonic server: {e}")))
}

/// Serves gRPC on every connection accepted from `listener` (`TCP_NODELAY` set), calling
/// `on_accept` for each, until the process exits.
pub async fn serve_all(
    listener: tokio::net::TcpListener,
    on_accept: impl Fn() + Send + 'static,
) -> io::Result<()> {
    let incoming = futures::stream::unfold((listener, on_accept), |(listener, on_accept)| async {
        let accepted = crate::impls::accept_tcp(&listener).await;
        if accepted.is_ok() {
            on_accept();
        }
        Some((accepted, (listener, on_accept)))
    });
    Server::builder()
        .serve_with_incoming(EchoServer, incoming)
        .await
        .map_err(|e| io::Error::other(format!("tonic server: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Client

/// A connected client; clones share the HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
}

impl Client {
    /// Connects (TCP + HTTP/2 handshake) to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Client> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| io::Error::other(format!("tonic endpoint: {e}")))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| io::Error::other(format!("tonic connect: {e}")))?;
        Ok(Client {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    async fn ready(&mut self) -> io::Result<()> {
        self.grpc
            .ready()
            .await
            .map_err(|e| io::Error::other(format!("tonic ready: {e}")))
    }

    /// One unary call; returns the response message.
    pub async fn unary(&mut self, msg: Bytes) -> io::Result<Bytes> {
        self.ready().await?;
        let path = http::uri::PathAndQuery::from_static(UNARY_PATH);
        let response = self
            .grpc
            .unary(Request::new(msg), path, RawCodec)
            .await
            .map_err(status_err("unary"))?;
        Ok(response.into_inner())
    }

    /// One bidirectional call: sends `count` copies of `msg` and receives the echoes;
    /// returns how many came back before status OK.
    pub async fn stream(&mut self, msg: Bytes, count: usize) -> io::Result<usize> {
        self.ready().await?;
        let len = msg.len();
        let path = http::uri::PathAndQuery::from_static(STREAM_PATH);
        let requests = futures::stream::iter(std::iter::repeat_n(msg, count));
        let response = self
            .grpc
            .streaming(Request::new(requests), path, RawCodec)
            .await
            .map_err(status_err("streaming call"))?;
        let mut inbound = response.into_inner();
        let mut got = 0;
        while let Some(echo) = inbound.message().await.map_err(status_err("recv"))? {
            check_echo(&echo, len)?;
            got += 1;
        }
        Ok(got)
    }
}
