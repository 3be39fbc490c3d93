//! HTTP/2 with the `h2` crate: one stream is one request. The client sends a POST whose body is
//! the client-to-server byte stream; the server answers at once with a 200 whose body is the
//! server-to-client byte stream. END_STREAM on either body is the FIN of that direction.
//!
//! Flow control is honoured on both sides: the reader releases capacity as the application
//! consumes bytes, the writer reserves capacity and waits for it before `send_data`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{accept_tcp, connect_tcp, io_err, Acceptor, BoxFuture, BoxStream, Mux, Opener};

const MIB: u32 = 1024 * 1024;

/// Maps an h2 error, explaining ENHANCE_YOUR_CALM (h2 closes a connection whose peer makes it
/// buffer too many small DATA frames, or reset too many streams).
pub fn h2_err(what: &str) -> impl FnOnce(h2::Error) -> io::Error + '_ {
    move |e| {
        let hint = if e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) {
            " (ENHANCE_YOUR_CALM: h2's small-DATA-frame budget or reset-stream limit)"
        } else {
            ""
        };
        io::Error::other(format!("{what}: {e}{hint}"))
    }
}

/// `h2` with default or tuned settings.
#[derive(Debug, Clone, Copy)]
pub struct H2 {
    tuned: bool,
}

/// Tuned settings: (initial stream window, connection window, max frame size).
const TUNED: (u32, u32, u32) = (16 * MIB, 64 * MIB, MIB);

impl H2 {
    /// `h2`: library defaults.
    pub fn defaults() -> Self {
        H2 { tuned: false }
    }

    /// `h2-tuned`: large windows and frames.
    pub fn tuned() -> Self {
        H2 { tuned: true }
    }

    /// Client builder with this variant's settings.
    pub fn client_builder(self) -> h2::client::Builder {
        let mut b = h2::client::Builder::new();
        if self.tuned {
            let (stream, conn, frame) = TUNED;
            b.initial_window_size(stream)
                .initial_connection_window_size(conn)
                .max_frame_size(frame);
        }
        b
    }

    /// Server builder with this variant's settings.
    pub fn server_builder(self) -> h2::server::Builder {
        let mut b = h2::server::Builder::new();
        if self.tuned {
            let (stream, conn, frame) = TUNED;
            b.initial_window_size(stream)
                .initial_connection_window_size(conn)
                .max_frame_size(frame);
        }
        b
    }
}

impl Mux for H2 {
    fn name(&self) -> &'static str {
        if self.tuned {
            "h2-tuned"
        } else {
            "h2"
        }
    }

    fn settings(&self) -> String {
        if self.tuned {
            let (stream, conn, frame) = TUNED;
            format!(
                "h2 0.4, both ends: initial_window_size={stream} (16 MiB), \
                 initial_connection_window_size={conn} (64 MiB), max_frame_size={frame} (1 MiB); \
                 rest default (max_send_buffer_size=409600, no max_concurrent_streams)"
            )
        } else {
            "h2 0.4 defaults: initial_window_size=65535, connection window=65535, \
             max_frame_size=16384, max_send_buffer_size=409600, no max_concurrent_streams"
                .into()
        }
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, Arc<dyn Opener>> {
        let this = *self;
        Box::pin(async move {
            let tcp = connect_tcp(addr).await?;
            let (send_request, connection) = this
                .client_builder()
                .handshake::<_, Bytes>(tcp)
                .await
                .map_err(h2_err("h2 client handshake"))?;
            tokio::spawn(async move {
                // Ends when the connection closes; errors surface on the streams.
                let _ = connection.await;
            });
            let opener: Arc<dyn Opener> = Arc::new(H2Opener { send_request });
            Ok(opener)
        })
    }

    fn listen(&self, listener: TcpListener) -> BoxFuture<'static, Box<dyn Acceptor>> {
        let this = *self;
        Box::pin(async move {
            let tcp = accept_tcp(&listener).await?;
            let mut connection = this
                .server_builder()
                .handshake::<_, Bytes>(tcp)
                .await
                .map_err(h2_err("h2 server handshake"))?;
            let (tx, rx) = mpsc::unbounded_channel();
            // The connection only makes progress while `accept` is polled: a driver task owns it.
            tokio::spawn(async move {
                while let Some(next) = connection.accept().await {
                    let stream = next
                        .map_err(h2_err("h2 accept"))
                        .and_then(|(req, respond)| accept_stream(req, respond));
                    let failed = stream.is_err();
                    if tx.send(stream).is_err() || failed {
                        break;
                    }
                }
            });
            let acceptor: Box<dyn Acceptor> = Box::new(H2Acceptor { rx });
            Ok(acceptor)
        })
    }
}

struct H2Opener {
    send_request: SendRequest<Bytes>,
}

impl Opener for H2Opener {
    fn open(&self) -> BoxFuture<'_, BoxStream> {
        let send_request = self.send_request.clone();
        Box::pin(async move { Ok(Box::new(open_stream(send_request).await?) as BoxStream) })
    }
}

/// Opens one stream (a POST whose body is the client-to-server bytes) on a connection.
pub async fn open_stream(send_request: SendRequest<Bytes>) -> io::Result<H2Stream> {
    // `ready` waits until the peer's SETTINGS_MAX_CONCURRENT_STREAMS allows one more.
    let mut send_request = send_request.ready().await.map_err(h2_err("h2 ready"))?;
    let request = http::Request::post("http://compare/stream")
        .body(())
        .map_err(io_err("h2 request"))?;
    let (response, send) = send_request
        .send_request(request, false)
        .map_err(h2_err("h2 send_request"))?;
    Ok(H2Stream::new(Recv::Waiting(response), send))
}

/// The server end of an accepted request: a 200 response at once, whose body is the
/// server-to-client bytes.
pub fn accept_stream(
    req: http::Request<RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) -> io::Result<H2Stream> {
    let send = respond
        .send_response(http::Response::new(()), false)
        .map_err(h2_err("h2 send_response"))?;
    Ok(H2Stream::new(Recv::Body(req.into_body()), send))
}

struct H2Acceptor {
    rx: mpsc::UnboundedReceiver<io::Result<H2Stream>>,
}

impl Acceptor for H2Acceptor {
    fn accept(&mut self) -> BoxFuture<'_, Option<BoxStream>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some(Ok(stream)) => Ok(Some(Box::new(stream) as BoxStream)),
                Some(Err(e)) => Err(e),
                None => Ok(None),
            }
        })
    }
}

enum Recv {
    /// Client side before the response head arrived.
    Waiting(ResponseFuture),
    /// Receiving the body.
    Body(RecvStream),
}

/// One h2 stream as a tokio duplex byte stream.
pub struct H2Stream {
    recv: Recv,
    /// Received but not yet consumed: its flow-control capacity is released when consumed.
    pending: Bytes,
    /// A receive error seen while returning data, reported on the next read.
    failed: Option<io::Error>,
    send: SendStream<Bytes>,
    send_closed: bool,
}

impl H2Stream {
    fn new(recv: Recv, send: SendStream<Bytes>) -> Self {
        H2Stream {
            recv,
            pending: Bytes::new(),
            failed: None,
            send,
            send_closed: false,
        }
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        let mut copied = false;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                if let Recv::Body(body) = &mut this.recv {
                    body.flow_control()
                        .release_capacity(n)
                        .map_err(h2_err("h2 release_capacity"))?;
                }
                copied = true;
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            // Fill the caller's buffer with every DATA frame already received (one read call
            // per frame would make small frames needlessly expensive).
            let polled = match &mut this.recv {
                Recv::Waiting(response) => match Pin::new(response).poll(cx) {
                    Poll::Ready(response) => {
                        let response = response.map_err(h2_err("h2 response"))?;
                        this.recv = Recv::Body(response.into_body());
                        continue;
                    }
                    Poll::Pending => Poll::Pending,
                },
                Recv::Body(body) => body.poll_data(cx),
            };
            match polled {
                Poll::Ready(Some(Ok(data))) => this.pending = data,
                Poll::Ready(Some(Err(e))) if !copied => {
                    return Poll::Ready(Err(h2_err("h2 recv")(e)))
                }
                // Deliver what was copied now and the error on the next call.
                Poll::Ready(Some(Err(e))) => {
                    this.failed = Some(h2_err("h2 recv")(e));
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())), // END_STREAM: EOF
                Poll::Pending if copied => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let send = &mut self.send;
        loop {
            let capacity = send.capacity();
            if capacity > 0 {
                let n = capacity.min(buf.len());
                send.send_data(Bytes::copy_from_slice(&buf[..n]), false)
                    .map_err(h2_err("h2 send_data"))?;
                return Poll::Ready(Ok(n));
            }
            // Ask for room for this write and wait until the connection assigns some.
            send.reserve_capacity(buf.len());
            match ready!(send.poll_capacity(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(h2_err("h2 capacity")(e))),
                None => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "h2 stream closed",
                    )))
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames are written by the connection task as soon as it is woken.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.send_closed {
            self.send_closed = true;
            self.send
                .send_data(Bytes::new(), true)
                .map_err(h2_err("h2 end stream"))?;
        }
        Poll::Ready(Ok(()))
    }
}
