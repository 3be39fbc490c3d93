//! [`Grpc`]: the four call kinds with typed messages, for generated clients.

use braid::rpc::{Call, CallOptions, CallReceiver, CallSender, Client, SendError, Status};
use futures::Stream;
use prost::Message;

use crate::{
    codec::{encode, ProstCodec, ProstEncoder},
    request::{Request, Response},
    streaming::{Sender, Streaming},
};

/// Runs typed calls on a [`braid::rpc::Client`]; every generated client method is one call
/// of this (named after tonic's `client::Grpc`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Grpc {
    client: Client,
}

impl Grpc {
    /// Typed calls on `client` (its limits apply).
    pub fn new(client: Client) -> Grpc {
        Grpc { client }
    }

    /// The untyped client underneath: [`Client::call`] drops down to an untyped [`Call`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a call whose responses decode as `Resp`.
    async fn start<Resp, M>(
        &self,
        path: &str,
        request: Request<M>,
    ) -> Result<(Call<ProstCodec<Resp>>, M), Status>
    where
        Resp: Message + Default + 'static,
    {
        let timeout = request.timeout();
        let (metadata, message) = request.into_parts();
        let options = CallOptions {
            timeout,
            ..CallOptions::default()
        };
        let call = self
            .client
            .clone()
            .with_codec(ProstCodec::<Resp>::new())
            .call_with(path, metadata, options)
            .await?;
        Ok((call, message))
    }

    /// A unary call: one request, one response, with the server's header and trailer.
    pub async fn unary<Req, Resp>(
        &self,
        path: &str,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message,
        Resp: Message + Default + 'static,
    {
        let (call, message) = self.start::<Resp, _>(path, request).await?;
        let (_tx, mut rx) = send_request(call, encode(&message)).await?;
        let reply = single_reply(&mut rx).await?;
        Ok(full_response(&mut rx, reply).await)
    }

    /// A unary call returning the message only (no metadata copied).
    pub async fn unary_message<Req, Resp>(
        &self,
        path: &str,
        request: Request<Req>,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default + 'static,
    {
        let (call, message) = self.start::<Resp, _>(path, request).await?;
        let (_tx, mut rx) = send_request(call, encode(&message)).await?;
        single_reply(&mut rx).await
    }

    /// A server-streaming call: one request, a [`Streaming`] of responses.
    pub async fn server_streaming<Req, Resp>(
        &self,
        path: &str,
        request: Request<Req>,
    ) -> Result<Streaming<Resp>, Status>
    where
        Req: Message,
        Resp: Message + Default + 'static,
    {
        let (mut call, message) = self.start::<Resp, _>(path, request).await?;
        if let Err(SendError::Rejected(status)) = call.send(encode(&message)).await {
            return Err(status);
        }
        let _ = call.close_send();
        let (_tx, rx) = call.split(); // the sender is finished: dropping it cancels nothing
        Ok(Streaming::from_client(rx))
    }

    /// A client-streaming call: the requests of a stream (sent batched, then half-closed),
    /// one response with the server's header and trailer.
    pub async fn client_streaming<S, Req, Resp>(
        &self,
        path: &str,
        request: Request<S>,
    ) -> Result<Response<Resp>, Status>
    where
        S: Stream<Item = Req> + Send,
        Req: Message + 'static,
        Resp: Message + Default + 'static,
    {
        let (call, messages) = self.start::<Resp, _>(path, request).await?;
        let (tx, mut rx) = call.split();
        let _tx = send_requests(tx, messages).await?;
        let reply = single_reply(&mut rx).await?;
        Ok(full_response(&mut rx, reply).await)
    }

    /// A client-streaming call returning the message only.
    pub async fn client_streaming_message<S, Req, Resp>(
        &self,
        path: &str,
        request: Request<S>,
    ) -> Result<Resp, Status>
    where
        S: Stream<Item = Req> + Send,
        Req: Message + 'static,
        Resp: Message + Default + 'static,
    {
        let (call, messages) = self.start::<Resp, _>(path, request).await?;
        let (tx, mut rx) = call.split();
        let _tx = send_requests(tx, messages).await?;
        single_reply(&mut rx).await
    }

    /// A bidirectional call: a typed [`Sender`] for the requests and a [`Streaming`] of the
    /// responses, for one task or two.
    pub async fn streaming<Req, Resp>(
        &self,
        path: &str,
        request: Request<()>,
    ) -> Result<(Sender<Req, Resp>, Streaming<Resp>), Status>
    where
        Req: Message + 'static,
        Resp: Message + Default + 'static,
    {
        let (call, ()) = self.start::<Resp, _>(path, request).await?;
        let (tx, rx) = call.split();
        Ok((Sender::new(tx), Streaming::from_client(rx)))
    }
}

/// The halves of a call whose responses decode as `Resp`.
type Halves<Resp> = (CallSender<ProstCodec<Resp>>, CallReceiver<ProstCodec<Resp>>);

/// Sends the one request and half-closes; the halves, to read the one response (the sender
/// is kept until then: dropping it early would cancel a call that ended meanwhile).
async fn send_request<Resp>(
    mut call: Call<ProstCodec<Resp>>,
    message: bytes::Bytes,
) -> Result<Halves<Resp>, Status>
where
    Resp: Message + Default + 'static,
{
    // Ended means the server already ended the call: recv reports why.
    if let Err(SendError::Rejected(status)) = call.send(message).await {
        return Err(status);
    }
    let _ = call.close_send();
    Ok(call.split())
}

/// Sends the requests of a stream, batched and encoded in place ([`ProstEncoder`]), then
/// half-closes; the sender, to keep until the response is read.
async fn send_requests<S, Req, Resp>(
    tx: CallSender<ProstCodec<Resp>>,
    messages: S,
) -> Result<CallSender<ProstEncoder<Req>>, Status>
where
    S: Stream<Item = Req> + Send,
    Req: Message + 'static,
    Resp: Message + Default + 'static,
{
    let mut tx = tx.with_codec(ProstEncoder::<Req>::new());
    match tx.send_all(messages).await {
        Err(SendError::Rejected(status)) => return Err(status),
        Err(SendError::Ended) => {} // the server ended the call early: recv reports how
        Ok(()) => {
            let _ = tx.close_send();
        }
    }
    Ok(tx)
}

/// The only response of a call whose status must be OK.
async fn single_reply<Resp>(rx: &mut CallReceiver<ProstCodec<Resp>>) -> Result<Resp, Status>
where
    Resp: Message + Default + 'static,
{
    let reply = rx.recv().await?;
    if rx.recv().await?.is_some() {
        return Err(Status::internal("expected one response, got more"));
    }
    reply.ok_or_else(|| Status::internal("expected one response, got none"))
}

async fn full_response<Resp>(rx: &mut CallReceiver<ProstCodec<Resp>>, reply: Resp) -> Response<Resp>
where
    Resp: Message + Default + 'static,
{
    let header = rx.header().await.cloned().unwrap_or_default();
    let trailer = rx.trailer().cloned().unwrap_or_default();
    Response::from_parts(header, reply, trailer)
}
