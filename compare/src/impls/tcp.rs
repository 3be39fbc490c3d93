//! Raw tokio TCP: the physical baseline.
//!
//! `tcp` is one connection carrying one stream (single-stream workloads only); `tcp-nconn` opens
//! one TCP connection per logical stream, which is what users do without a multiplexer
//! (multi-stream workloads only).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

use super::{accept_tcp, connect_tcp, Acceptor, BoxFuture, BoxStream, Mux, Opener, Scope};

/// Raw TCP.
#[derive(Debug)]
pub struct Tcp {
    per_stream: bool,
}

impl Tcp {
    /// `tcp`: one connection, one stream.
    pub fn single() -> Self {
        Tcp { per_stream: false }
    }

    /// `tcp-nconn`: one connection per stream.
    pub fn per_stream() -> Self {
        Tcp { per_stream: true }
    }
}

impl Mux for Tcp {
    fn name(&self) -> &'static str {
        if self.per_stream {
            "tcp-nconn"
        } else {
            "tcp"
        }
    }

    fn settings(&self) -> String {
        if self.per_stream {
            "one loopback TCP connection per stream (connect+accept in open), TCP_NODELAY, \
             kernel default buffers"
                .into()
        } else {
            "one loopback TCP connection, TCP_NODELAY, kernel default buffers".into()
        }
    }

    fn scope(&self) -> Scope {
        if self.per_stream {
            Scope::MultiStream
        } else {
            Scope::SingleStream
        }
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, Arc<dyn Opener>> {
        let per_stream = self.per_stream;
        Box::pin(async move {
            let opener: Arc<dyn Opener> = if per_stream {
                Arc::new(PerStream { addr })
            } else {
                // Connect now, outside the measured part, like the muxes' handshakes.
                let stream = connect_tcp(addr).await?;
                Arc::new(Single {
                    stream: Mutex::new(Some(stream)),
                })
            };
            Ok(opener)
        })
    }

    fn listen(&self, listener: TcpListener) -> BoxFuture<'static, Box<dyn Acceptor>> {
        Box::pin(async move {
            let acceptor: Box<dyn Acceptor> = Box::new(TcpAcceptor { listener });
            Ok(acceptor)
        })
    }
}

struct Single {
    stream: Mutex<Option<TcpStream>>,
}

impl Opener for Single {
    fn open(&self) -> BoxFuture<'_, BoxStream> {
        let taken = self.stream.lock().map(|mut s| s.take()).ok().flatten();
        Box::pin(async move {
            match taken {
                Some(stream) => Ok(Box::new(stream) as BoxStream),
                None => Err(std::io::Error::other(
                    "tcp: one connection carries one stream",
                )),
            }
        })
    }
}

struct PerStream {
    addr: SocketAddr,
}

impl Opener for PerStream {
    fn open(&self) -> BoxFuture<'_, BoxStream> {
        Box::pin(async move { Ok(Box::new(connect_tcp(self.addr).await?) as BoxStream) })
    }
}

struct TcpAcceptor {
    listener: TcpListener,
}

impl Acceptor for TcpAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, Option<BoxStream>> {
        Box::pin(async move {
            Ok(Some(
                Box::new(accept_tcp(&self.listener).await?) as BoxStream
            ))
        })
    }
}
