//! One session of each implementation, client and server end, each over its own loopback TCP
//! connection, kept as lean as each library allows: the harness adds at most one task per
//! server connection and holds no buffer of its own between uses.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::impls::h2::{accept_stream, h2_err, open_stream, H2};
use crate::impls::yamux::{self as yamux_impl, Yamux, YamuxOpener};
use crate::impls::{accept_tcp, connect_tcp, io_err, BoxStream};
use crate::rpc::tonic_grpc;

/// Size of the request and of the reply of one echo.
pub const ECHO_SIZE: usize = 64;
/// Read buffer of a burst (client and server), allocated for the burst only.
pub const CHUNK: usize = 64 * 1024;

/// The implementations of the sessions workloads.
#[derive(Debug, Clone, Copy)]
pub enum Imp {
    /// `braid::Session` with `Config::default()`.
    Braid,
    /// `h2` 0.4, defaults or tuned (as in the other workloads).
    H2(H2),
    /// yamux 0.13 defaults.
    Yamux,
    /// tonic (gRPC over hyper and h2): unary calls, bidirectional streaming for the burst.
    Tonic,
    /// One raw TCP connection per session; the connection is the session's only stream.
    Tcp,
}

impl Imp {
    /// The implementation called `name`, if it takes part in the sessions workloads.
    pub fn parse(name: &str) -> Option<Imp> {
        Some(match name {
            "braid" => Imp::Braid,
            "h2" => Imp::H2(H2::defaults()),
            "h2-tuned" => Imp::H2(H2::tuned()),
            "yamux" => Imp::Yamux,
            "tonic" => Imp::Tonic,
            "tcp" => Imp::Tcp,
            _ => return None,
        })
    }
}

/// The client end of one session.
pub enum ClientSession {
    /// A braid session (its driver task is braid's own).
    Braid(braid::Session),
    /// An h2 connection: the request handle and the task that drives the connection.
    H2 {
        /// Opens streams.
        send: h2::client::SendRequest<Bytes>,
        /// The connection task; ends once the connection is closed.
        conn: JoinHandle<()>,
    },
    /// A yamux connection (its driver task).
    Yamux(YamuxOpener),
    /// A tonic channel.
    Tonic(tonic_grpc::Client),
    /// The connection itself.
    Tcp(TcpStream),
}

impl ClientSession {
    /// Connects to `addr` and starts a session (handshake included where the library has one).
    pub async fn connect(imp: Imp, addr: SocketAddr) -> io::Result<ClientSession> {
        if let Imp::Tonic = imp {
            return Ok(ClientSession::Tonic(
                tonic_grpc::Client::connect(addr).await?,
            ));
        }
        let tcp = connect_tcp(addr).await?;
        Ok(match imp {
            Imp::Braid => ClientSession::Braid(
                braid::Session::client(tcp, braid::Config::default())
                    .map_err(io_err("braid client"))?,
            ),
            Imp::H2(h2) => {
                let (send, connection) = h2
                    .client_builder()
                    .handshake::<_, Bytes>(tcp)
                    .await
                    .map_err(h2_err("h2 client handshake"))?;
                let conn = tokio::spawn(async move {
                    let _ = connection.await;
                });
                ClientSession::H2 { send, conn }
            }
            Imp::Yamux => {
                ClientSession::Yamux(YamuxOpener::client(tcp, Yamux::defaults().config()))
            }
            Imp::Tcp => ClientSession::Tcp(tcp),
            Imp::Tonic => unreachable!("handled above"),
        })
    }

    /// A new stream (the multiplexers only).
    async fn open(&mut self) -> io::Result<BoxStream> {
        use crate::impls::Opener;
        match self {
            ClientSession::Braid(s) => Ok(Box::new(s.open().await.map_err(io_err("braid open"))?)),
            ClientSession::H2 { send, .. } => Ok(Box::new(open_stream(send.clone()).await?)),
            ClientSession::Yamux(y) => y.open().await,
            ClientSession::Tonic(_) | ClientSession::Tcp(_) => {
                Err(io::Error::other("no byte streams to open"))
            }
        }
    }

    /// One request and its reply: a new stream with 64 bytes each way, then both FINs (tonic:
    /// a unary call; tcp: on the connection, which stays open).
    pub async fn echo(&mut self, msg: &Bytes) -> io::Result<()> {
        match self {
            ClientSession::Tonic(client) => {
                let reply = client.unary(msg.clone()).await?;
                if reply.len() != msg.len() {
                    return Err(bad("echo"));
                }
                Ok(())
            }
            ClientSession::Tcp(tcp) => echo_on(tcp, msg, false).await,
            _ => {
                let mut stream = self.open().await?;
                echo_on(&mut stream, msg, true).await
            }
        }
    }

    /// `bytes` each way on one new stream, written in slices of `chunk` (one shared buffer)
    /// while the echo is read back, then both FINs and the stream is dropped (tonic: one
    /// bidirectional call of `chunk`-sized messages; tcp: on the connection, which stays open).
    pub async fn burst(&mut self, chunk: &Bytes, bytes: usize) -> io::Result<()> {
        match self {
            ClientSession::Tonic(client) => {
                let count = bytes / chunk.len();
                let got = client.stream(chunk.clone(), count).await?;
                if got != count {
                    return Err(bad("burst echo count"));
                }
                Ok(())
            }
            ClientSession::Tcp(tcp) => burst_on(tcp, chunk, bytes, false).await,
            _ => {
                let mut stream = self.open().await?;
                burst_on(&mut stream, chunk, bytes, true).await
            }
        }
    }

    /// Ends the session: braid `close().await` (returns once the GOAWAY is written and the
    /// write side shut down); h2 drops the request handle and waits for the connection task
    /// (it sends GOAWAY and shuts the socket down); yamux `poll_close` (GoAway, socket closed);
    /// tonic drops the channel (its tasks close the connection in the background); tcp closes.
    pub async fn close(self) {
        match self {
            ClientSession::Braid(session) => session.close().await,
            ClientSession::H2 { send, conn } => {
                drop(send);
                let _ = conn.await;
            }
            ClientSession::Yamux(y) => y.close().await,
            ClientSession::Tonic(client) => drop(client),
            ClientSession::Tcp(tcp) => drop(tcp),
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad {what}"))
}

/// Writes `msg`, reads as many bytes back; with `finish`, FIN after the request and the
/// peer's FIN expected after the reply.
async fn echo_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &Bytes,
    finish: bool,
) -> io::Result<()> {
    stream.write_all(msg).await?;
    if finish {
        stream.shutdown().await?;
    } else {
        stream.flush().await?;
    }
    let mut reply = [0u8; ECHO_SIZE];
    let reply = &mut reply[..msg.len()];
    stream.read_exact(reply).await?;
    if reply != &msg[..] {
        return Err(bad("echo"));
    }
    if finish {
        let mut rest = [0u8; 1];
        if stream.read(&mut rest).await? != 0 {
            return Err(bad("data after echo"));
        }
    }
    Ok(())
}

/// `bytes` written from `chunk` while as many are read back and discarded.
async fn burst_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    chunk: &Bytes,
    bytes: usize,
    finish: bool,
) -> io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write = async {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            wr.write_all(&chunk[..n]).await?;
            left -= n;
        }
        if finish {
            wr.shutdown().await
        } else {
            wr.flush().await
        }
    };
    let read = async {
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0;
        while got < bytes {
            let n = rd.read(&mut buf[..CHUNK.min(bytes - got)]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("burst: EOF after {got} of {bytes} bytes"),
                ));
            }
            got += n;
        }
        if finish && rd.read(&mut buf[..1]).await? != 0 {
            return Err(bad("data after burst"));
        }
        Ok(())
    };
    tokio::try_join!(write, read)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server

/// What the server does with each stream.
#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// Echoes exactly `bytes` through a 64 KiB buffer that is freed afterwards, then waits for
    /// EOF and closes; with `keep_open` (tcp, where the stream is the session) it counts as
    /// done as soon as the echo is (the wait for EOF then lasts as long as the session).
    Burst {
        /// Bytes echoed.
        bytes: usize,
        /// Whether the stream outlives the burst.
        keep_open: bool,
    },
    /// Echoes whatever arrives until EOF (a 2 KiB buffer inside the task), then closes.
    Echo,
}

/// What the server counts.
#[derive(Debug, Default)]
pub struct Counters {
    /// Server sessions set up (handshake done where the library has one).
    pub sessions: AtomicUsize,
    /// Bursts being echoed (from their first byte until the stream is dropped; with
    /// `keep_open`, until the echo is done).
    pub live: AtomicUsize,
    /// Stream handlers that failed.
    pub errors: AtomicUsize,
}

/// Accepts connections from `listener` forever, one server session each, every stream
/// served by `handler`.
pub async fn serve(
    imp: Imp,
    listener: TcpListener,
    handler: Handler,
    counters: Arc<Counters>,
) -> io::Result<()> {
    if let Imp::Tonic = imp {
        return tonic_grpc::serve_all(listener, move || {
            counters.sessions.fetch_add(1, Ordering::Relaxed);
        })
        .await;
    }
    loop {
        let tcp = accept_tcp(&listener).await?;
        let counters = counters.clone();
        match imp {
            Imp::Braid => {
                tokio::spawn(async move {
                    let Ok(session) = braid::Session::server(tcp, braid::Config::default()) else {
                        return;
                    };
                    counters.sessions.fetch_add(1, Ordering::Relaxed);
                    while let Ok(stream) = session.accept().await {
                        tokio::spawn(handle(handler, Box::new(stream), counters.clone()));
                    }
                });
            }
            Imp::H2(h2) => {
                tokio::spawn(async move {
                    let Ok(mut conn) = h2.server_builder().handshake::<_, Bytes>(tcp).await else {
                        return;
                    };
                    counters.sessions.fetch_add(1, Ordering::Relaxed);
                    // Polling `accept` drives the connection.
                    while let Some(Ok((req, respond))) = conn.accept().await {
                        if let Ok(stream) = accept_stream(req, respond) {
                            tokio::spawn(handle(handler, Box::new(stream), counters.clone()));
                        }
                    }
                });
            }
            Imp::Yamux => {
                counters.sessions.fetch_add(1, Ordering::Relaxed);
                let cfg = Yamux::defaults().config();
                yamux_impl::serve_connection(tcp, cfg, move |stream| {
                    tokio::spawn(handle(handler, stream, counters.clone()));
                });
            }
            Imp::Tcp => {
                counters.sessions.fetch_add(1, Ordering::Relaxed);
                let handler = match handler {
                    Handler::Burst { bytes, .. } => Handler::Burst {
                        bytes,
                        keep_open: true,
                    },
                    Handler::Echo => Handler::Echo,
                };
                tokio::spawn(handle(handler, Box::new(tcp), counters));
            }
            Imp::Tonic => unreachable!("handled above"),
        }
    }
}

async fn handle(handler: Handler, mut stream: BoxStream, counters: Arc<Counters>) {
    let result = match handler {
        Handler::Burst { bytes, keep_open } => {
            // A burst starts with its first byte (a tcp handler starts with its session,
            // long before): only then does the handler count as live and take a buffer.
            let mut first = [0u8; 1];
            match stream.read(&mut first).await {
                Ok(1) => {}
                Ok(_) => return, // the session ended without a burst
                Err(e) => {
                    eprintln!("sessions server: stream handler: {e}");
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            counters.live.fetch_add(1, Ordering::Relaxed);
            let echoed = burst_echo(&mut stream, first[0], bytes).await;
            if keep_open && echoed.is_ok() {
                counters.live.fetch_sub(1, Ordering::Relaxed);
                let _ = wait_eof(&mut stream).await;
                return;
            }
            let result = match echoed {
                Ok(()) => wait_eof(&mut stream).await,
                Err(e) => Err(e),
            };
            drop(stream);
            counters.live.fetch_sub(1, Ordering::Relaxed);
            result
        }
        Handler::Echo => echo(&mut stream).await,
    };
    if let Err(e) = result {
        if counters.errors.fetch_add(1, Ordering::Relaxed) < 3 {
            eprintln!("sessions server: stream handler: {e}");
        }
    }
}

/// Echoes the rest of a burst of `bytes` whose first byte (`first`) was read already.
async fn burst_echo(stream: &mut BoxStream, first: u8, bytes: usize) -> io::Result<()> {
    stream.write_all(&[first]).await?;
    let mut buf = vec![0u8; CHUNK];
    let mut left = bytes.saturating_sub(1);
    while left > 0 {
        let n = stream.read(&mut buf[..CHUNK.min(left)]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "burst ended early",
            ));
        }
        stream.write_all(&buf[..n]).await?;
        left -= n;
    }
    stream.flush().await
}

/// Waits for the peer's FIN with a one-byte buffer, then closes our side.
async fn wait_eof(stream: &mut BoxStream) -> io::Result<()> {
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).await? != 0 {}
    stream.shutdown().await
}

async fn echo(stream: &mut BoxStream) -> io::Result<()> {
    let mut buf = [0u8; 2048];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n]).await?;
        stream.flush().await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 6] = ["braid", "h2", "h2-tuned", "yamux", "tonic", "tcp"];

    async fn server(imp: Imp, handler: Handler) -> (SocketAddr, Arc<Counters>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        tokio::spawn(serve(imp, listener, handler, counters.clone()));
        (addr, counters)
    }

    /// Every implementation echoes on new streams (tcp: on the connection) and closes.
    #[tokio::test]
    async fn echo_then_close() {
        for name in ALL {
            let imp = Imp::parse(name).unwrap();
            let (addr, counters) = server(imp, Handler::Echo).await;
            let msg = Bytes::from_static(&[7; ECHO_SIZE]);
            for _ in 0..2 {
                let mut session = ClientSession::connect(imp, addr).await.unwrap();
                for _ in 0..3 {
                    session.echo(&msg).await.unwrap();
                }
                session.close().await;
            }
            assert_eq!(counters.sessions.load(Ordering::Relaxed), 2, "{name}");
            assert_eq!(counters.errors.load(Ordering::Relaxed), 0, "{name}");
        }
    }

    /// A burst comes back whole, and the server's handler is done with it afterwards.
    #[tokio::test]
    async fn burst_each_way() {
        const BYTES: usize = 3 * CHUNK + 100;
        for name in ALL {
            let imp = Imp::parse(name).unwrap();
            let handler = Handler::Burst {
                bytes: BYTES,
                keep_open: false,
            };
            let (addr, counters) = server(imp, handler).await;
            let chunk = Bytes::from(vec![3u8; CHUNK / 2]);
            let mut session = ClientSession::connect(imp, addr).await.unwrap();
            session.burst(&chunk, BYTES).await.unwrap();
            for _ in 0..200 {
                if counters.live.load(Ordering::Relaxed) == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(counters.live.load(Ordering::Relaxed), 0, "{name}");
            assert_eq!(counters.errors.load(Ordering::Relaxed), 0, "{name}");
            session.close().await;
        }
    }
}
