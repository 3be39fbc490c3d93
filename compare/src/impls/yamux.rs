//! yamux 0.13 over tokio TCP (futures-io adapters from `tokio_util::compat`).
//!
//! A yamux `Connection` only makes progress while it is polled, so a driver task owns it: it
//! polls `poll_next_inbound` all the time (this drives all socket I/O), serves open (and close)
//! requests that arrive over a channel with `poll_new_outbound` (`poll_close`), and hands
//! inbound streams to a callback (a channel to the acceptor, or a spawned handler).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use super::{accept_tcp, connect_tcp, io_err, Acceptor, BoxFuture, BoxStream, Mux, Opener};

const MIB: usize = 1024 * 1024;

/// yamux with default or tuned settings.
#[derive(Debug, Clone, Copy)]
pub struct Yamux {
    tuned: bool,
}

/// Tuned settings. yamux 0.13 has no initial/per-stream window setting: every stream starts at
/// the spec's 256 KiB and auto-tunes its receive window (doubling while the sender uses half of
/// it within two RTTs), capped by the connection-wide budget. So "tuned" lifts that budget,
/// allows more streams, and sends larger data frames.
const TUNED_MAX_STREAMS: usize = 16_384;
const TUNED_SPLIT_SEND_SIZE: usize = MIB;

impl Yamux {
    /// `yamux`: library defaults.
    pub fn defaults() -> Self {
        Yamux { tuned: false }
    }

    /// `yamux-tuned`: unlimited auto-tuned windows, 16384 streams, 1 MiB frames.
    pub fn tuned() -> Self {
        Yamux { tuned: true }
    }

    /// This variant's connection settings.
    pub fn config(self) -> yamux::Config {
        let mut cfg = yamux::Config::default();
        if self.tuned {
            // Order matters: both setters assert window >= 256 KiB * max_num_streams.
            cfg.set_max_connection_receive_window(None)
                .set_max_num_streams(TUNED_MAX_STREAMS)
                .set_split_send_size(TUNED_SPLIT_SEND_SIZE);
        }
        cfg
    }
}

impl Mux for Yamux {
    fn name(&self) -> &'static str {
        if self.tuned {
            "yamux-tuned"
        } else {
            "yamux"
        }
    }

    fn settings(&self) -> String {
        if self.tuned {
            format!(
                "yamux 0.13, both ends: max_connection_receive_window=None (per-stream windows \
                 auto-tune from 256 KiB without a connection cap), max_num_streams={TUNED_MAX_STREAMS}, \
                 split_send_size={TUNED_SPLIT_SEND_SIZE} (1 MiB); read_after_close=true"
            )
        } else {
            "yamux 0.13 defaults: stream window 256 KiB auto-tuned, max_connection_receive_window=1 GiB, \
             max_num_streams=512, split_send_size=16 KiB, read_after_close=true"
                .into()
        }
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, Arc<dyn Opener>> {
        let cfg = self.config();
        Box::pin(async move {
            let tcp = connect_tcp(addr).await?;
            let opener: Arc<dyn Opener> = Arc::new(YamuxOpener::client(tcp, cfg));
            Ok(opener)
        })
    }

    fn listen(&self, listener: TcpListener) -> BoxFuture<'static, Box<dyn Acceptor>> {
        let cfg = self.config();
        Box::pin(async move {
            let tcp = accept_tcp(&listener).await?;
            let (inbound_tx, inbound) = mpsc::unbounded_channel();
            spawn_driver(tcp, cfg, yamux::Mode::Server, move |stream| {
                let _ = inbound_tx.send(stream);
            });
            let acceptor: Box<dyn Acceptor> = Box::new(YamuxAcceptor { inbound });
            Ok(acceptor)
        })
    }
}

type OpenRequest = oneshot::Sender<io::Result<yamux::Stream>>;
type Inbound = mpsc::UnboundedReceiver<io::Result<yamux::Stream>>;

/// What the connection's driver task is asked to do.
enum Command {
    /// Open an outbound stream.
    Open(OpenRequest),
    /// Close the connection (yamux `poll_close`: GoAway, then the socket) and stop.
    Close(oneshot::Sender<()>),
}

/// Spawns the task that owns and drives the connection; inbound streams (and a connection
/// error, last) go to `on_inbound`.
fn spawn_driver(
    tcp: TcpStream,
    cfg: yamux::Config,
    mode: yamux::Mode,
    mut on_inbound: impl FnMut(io::Result<yamux::Stream>) + Send + 'static,
) -> mpsc::UnboundedSender<Command> {
    let mut conn: yamux::Connection<Compat<TcpStream>> =
        yamux::Connection::new(tcp.compat(), cfg, mode);
    let (open_tx, mut open_rx) = mpsc::unbounded_channel::<Command>();
    tokio::spawn(async move {
        let mut waiting: Option<OpenRequest> = None;
        let mut closing: Option<oneshot::Sender<()>> = None;
        let mut opens_closed = false;
        let result: Result<(), yamux::ConnectionError> = poll_fn(|cx| {
            // Open requests, one at a time, in order; a close request ends the connection.
            loop {
                if closing.is_some() {
                    let closed = std::task::ready!(conn.poll_close(cx));
                    if let Some(reply) = closing.take() {
                        let _ = reply.send(());
                    }
                    return Poll::Ready(closed);
                }
                if waiting.is_none() && !opens_closed {
                    match open_rx.poll_recv(cx) {
                        Poll::Ready(Some(Command::Open(reply))) => waiting = Some(reply),
                        Poll::Ready(Some(Command::Close(reply))) => {
                            closing = Some(reply);
                            continue;
                        }
                        Poll::Ready(None) => opens_closed = true,
                        Poll::Pending => {}
                    }
                }
                let Some(reply) = waiting.take() else { break };
                match conn.poll_new_outbound(cx) {
                    Poll::Ready(stream) => {
                        let _ = reply.send(stream.map_err(io_err("yamux open")));
                    }
                    Poll::Pending => {
                        waiting = Some(reply);
                        break;
                    }
                }
            }
            // Inbound streams and all socket I/O.
            loop {
                match conn.poll_next_inbound(cx) {
                    Poll::Ready(Some(Ok(stream))) => on_inbound(Ok(stream)),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
        if let Err(e) = result {
            on_inbound(Err(io_err("yamux connection")(e)));
        }
    });
    open_tx
}

/// Server end of one connection: every inbound stream goes to `on_stream` (run on the driver
/// task: spawn there to handle it). The driver ends when the connection does.
pub fn serve_connection(
    tcp: TcpStream,
    cfg: yamux::Config,
    mut on_stream: impl FnMut(BoxStream) + Send + 'static,
) {
    spawn_driver(tcp, cfg, yamux::Mode::Server, move |stream| {
        if let Ok(stream) = stream {
            on_stream(Box::new(stream.compat()));
        }
    });
}

/// Client end of one connection.
pub struct YamuxOpener {
    open_tx: mpsc::UnboundedSender<Command>,
}

impl YamuxOpener {
    /// Starts the client end over `tcp` (the driver task is spawned on the current runtime).
    pub fn client(tcp: TcpStream, cfg: yamux::Config) -> Self {
        let open_tx = spawn_driver(tcp, cfg, yamux::Mode::Client, |_| {});
        YamuxOpener { open_tx }
    }

    /// Closes the connection (GoAway and the socket) and waits until the driver has done so.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.open_tx.send(Command::Close(reply)).is_ok() {
            let _ = done.await;
        }
    }
}

impl Opener for YamuxOpener {
    fn open(&self) -> BoxFuture<'_, BoxStream> {
        Box::pin(async move {
            let (reply, response) = oneshot::channel();
            self.open_tx
                .send(Command::Open(reply))
                .map_err(|_| io::Error::other("yamux connection driver gone"))?;
            let stream = response
                .await
                .map_err(|_| io::Error::other("yamux connection driver gone"))??;
            Ok(Box::new(stream.compat()) as BoxStream)
        })
    }
}

struct YamuxAcceptor {
    inbound: Inbound,
}

impl Acceptor for YamuxAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, Option<BoxStream>> {
        Box::pin(async move {
            match self.inbound.recv().await {
                Some(Ok(stream)) => Ok(Some(Box::new(stream.compat()) as BoxStream)),
                Some(Err(e)) => Err(e),
                None => Ok(None),
            }
        })
    }
}
