//! The implementations under test, all behind one object-safe [`Mux`] trait so that every
//! workload is written once against plain tokio `AsyncRead + AsyncWrite` streams.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

pub mod braid;
pub mod h2;
pub mod tcp;
pub mod yamux;

/// One logical byte stream: ordered, flow-controlled, both directions, `shutdown()` = FIN.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Duplex for T {}

/// A boxed [`Duplex`] stream.
pub type BoxStream = Box<dyn Duplex>;

/// A boxed, sendable future returning an `io::Result`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Client side of a connection: opens streams; shared by many tasks.
pub trait Opener: Send + Sync + 'static {
    /// Opens a new outbound stream.
    fn open(&self) -> BoxFuture<'_, BoxStream>;
}

/// Server side of a connection: yields the streams the peer opened.
pub trait Acceptor: Send + 'static {
    /// Next inbound stream, `None` once the connection is gone.
    fn accept(&mut self) -> BoxFuture<'_, Option<BoxStream>>;
}

/// Which workloads an implementation takes part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every workload (a real multiplexer).
    All,
    /// Only workloads with one stream (`tcp`: one connection is one stream).
    SingleStream,
    /// Only workloads with many streams (`tcp-nconn`: one connection per stream).
    MultiStream,
}

/// One implementation under test.
pub trait Mux: Send + Sync + 'static {
    /// Name used on the command line and in reports.
    fn name(&self) -> &'static str;
    /// Exact settings, printed with the results.
    fn settings(&self) -> String;
    /// Which workloads this implementation runs.
    fn scope(&self) -> Scope {
        Scope::All
    }
    /// `Some(reason)` when this implementation cannot run in this build.
    fn unavailable(&self) -> Option<String> {
        None
    }
    /// Client side: connect to `addr` (and handshake) on the current tokio runtime.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, Arc<dyn Opener>>;
    /// Server side: accept the connection(s) from `listener` on the current tokio runtime.
    fn listen(&self, listener: TcpListener) -> BoxFuture<'static, Box<dyn Acceptor>>;
}

/// Every implementation, in report order.
pub fn all() -> Vec<Arc<dyn Mux>> {
    vec![
        Arc::new(braid::Braid::defaults()),
        Arc::new(braid::Braid::tuned()),
        Arc::new(h2::H2::defaults()),
        Arc::new(h2::H2::tuned()),
        Arc::new(yamux::Yamux::defaults()),
        Arc::new(yamux::Yamux::tuned()),
        Arc::new(tcp::Tcp::single()),
        Arc::new(tcp::Tcp::per_stream()),
    ]
}

/// The implementation called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Mux>> {
    all().into_iter().find(|m| m.name() == name)
}

/// Accepts one TCP connection from `listener` with `TCP_NODELAY` set (as every implementation
/// here runs with Nagle off, on both ends).
pub async fn accept_tcp(listener: &TcpListener) -> io::Result<TcpStream> {
    let (stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Connects to `addr` with `TCP_NODELAY` set.
pub async fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Maps any error into `io::Error`.
pub fn io_err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> io::Error + '_ {
    move |e| io::Error::other(format!("{what}: {e}"))
}
