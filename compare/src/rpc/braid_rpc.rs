//! `braid-rpc`: `braid::rpc` over one braid session (`Config::default()`), raw [`Bytes`]
//! messages ([`braid::rpc::BytesCodec`]), the same methods and bytes as the tonic side.

use std::io;
use std::net::SocketAddr;

use braid::rpc::{CallOptions, MetadataMap, Server, ServerStream, Status};
use bytes::Bytes;

use super::{check_echo, STREAM_PATH, UNARY_PATH};
use crate::impls::{accept_tcp, connect_tcp, io_err};

/// One-line description of the configuration, printed with the results.
pub const SETTINGS: &str = "braid::rpc over one braid session, Config::default() on both ends \
     (stream window 256 KiB auto-tuned up to 64 MiB within a 60 MiB budget, session window 64 MiB, frames up to 64 KiB), \
     BytesCodec, TCP_NODELAY; streaming: send_all on both ends (the tonic side streams too)";

fn status_err(what: &'static str) -> impl FnOnce(Status) -> io::Error {
    move |s| io::Error::other(format!("braid-rpc {what}: {s}"))
}

/// Echoes every message of the call back, in order, until the client's CloseSend: the
/// response stream is the request stream, as in the tonic service, so ready messages go out
/// in batches ([`braid::rpc::ServerSender::send_all`]).
async fn stream_echo(stream: ServerStream) -> Result<(), Status> {
    let (mut tx, mut rx) = stream.split();
    tx.send_all(rx.messages()).await
}

/// Unary: exactly one request (read through the client's CloseSend, as tonic's unary does),
/// answered with itself.
async fn unary_echo(mut stream: ServerStream) -> Result<(), Status> {
    let msg = stream
        .recv()
        .await?
        .ok_or_else(|| Status::internal("missing request message"))?;
    if stream.recv().await?.is_some() {
        return Err(Status::internal("more than one request message"));
    }
    stream.send(msg).await
}

/// Serves calls on the one connection accepted from `listener` until the session ends.
pub async fn serve(listener: tokio::net::TcpListener) -> io::Result<()> {
    let tcp = accept_tcp(&listener).await?;
    let session =
        braid::Session::server(tcp, braid::Config::default()).map_err(io_err("braid server"))?;
    Server::new()
        .route(STREAM_PATH, stream_echo)
        .route(UNARY_PATH, unary_echo)
        .serve(session)
        .await
        .map_err(io_err("braid-rpc serve"))
}

/// A connected client; clones share the session.
#[derive(Debug, Clone)]
pub struct Client {
    client: braid::rpc::Client,
}

impl Client {
    /// Connects (TCP + braid preface) to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Client> {
        let tcp = connect_tcp(addr).await?;
        let session = braid::Session::client(tcp, braid::Config::default())
            .map_err(io_err("braid client"))?;
        Ok(Client {
            client: braid::rpc::Client::new(session),
        })
    }

    /// One unary call; returns the response message.
    pub async fn unary(&mut self, msg: Bytes) -> io::Result<Bytes> {
        self.client
            .unary(UNARY_PATH, msg, CallOptions::default())
            .await
            .map_err(status_err("unary"))
    }

    /// One bidirectional call: a task sends `count` copies of `msg` (one request stream,
    /// [`braid::rpc::CallSender::send_all`], as the tonic client streams its requests) while
    /// this one receives the echoes; returns how many came back before status OK.
    pub async fn stream(&mut self, msg: Bytes, count: usize) -> io::Result<usize> {
        let len = msg.len();
        let call = self
            .client
            .call(STREAM_PATH, MetadataMap::new())
            .await
            .map_err(status_err("call"))?;
        let (mut tx, mut rx) = call.split();
        let sender = tokio::spawn(async move {
            let requests = futures::stream::iter(std::iter::repeat_n(msg, count));
            // `Ended`: the call is over and `recv` reports why.
            tx.send_all(requests).await.ok()?;
            tx.close_send().ok()
        });
        let mut got = 0;
        while let Some(echo) = rx.recv().await.map_err(status_err("recv"))? {
            check_echo(&echo, len)?;
            got += 1;
        }
        sender
            .await
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::other("braid-rpc send: the call ended early"))?;
        Ok(got)
    }
}
