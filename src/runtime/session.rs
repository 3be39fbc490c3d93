//! [`Session`]: the cloneable handle to one multiplexed connection.

use std::{future::poll_fn, sync::Arc, time::Duration};

use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    driver::Driver,
    now,
    shared::{Shared, TransportPhase},
    stream::Stream,
    trace::SessionTrace,
    writer::Writer,
};
use crate::{
    config::Config,
    error::Error,
    frame::ErrorCode,
    proto::{Core, Role, Stats},
};

/// One multiplexed connection. Cheap to clone; every clone is the same session.
///
/// Dropping the last `Session` handle sends GOAWAY: the peer can open no new stream, streams
/// already open finish, then the transport closes. [`Session::close`] ends it at once.
///
/// ```no_run
/// # async fn demo() -> Result<(), braid::Error> {
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// let client = braid::Session::client(a, braid::Config::default())?;
/// let server = braid::Session::server(b, braid::Config::default())?;
/// tokio::spawn(async move {
///     while let Ok(mut stream) = server.accept().await {
///         tokio::spawn(async move {
///             let (mut rx, mut tx) = stream.into_split();
///             let _ = tokio::io::copy(&mut rx, &mut tx).await; // echo
///             let _ = tx.finish();
///         });
///     }
/// });
/// let stream = client.open().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    shared: Arc<Shared>,
    _guard: Arc<LastHandle>,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

/// Sends GOAWAY when the last [`Session`] clone is dropped.
#[derive(Debug)]
struct LastHandle(Arc<Shared>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        self.0.with(|core| core.goaway(ErrorCode::NO_ERROR));
    }
}

impl Session {
    /// Starts the client end of a session over `io` and spawns its driver on the current
    /// tokio runtime. Clients open odd stream ids.
    ///
    /// # Panics
    /// Outside a tokio runtime (use [`Session::with_driver`] there).
    pub fn client<T>(io: T, config: Config) -> Result<Session, Error>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (session, driver) = Session::with_driver(io, config, Role::Client)?;
        tokio::spawn(driver);
        Ok(session)
    }

    /// Starts the server end of a session over `io` and spawns its driver. Servers open even
    /// stream ids.
    ///
    /// # Panics
    /// Outside a tokio runtime (use [`Session::with_driver`] there).
    pub fn server<T>(io: T, config: Config) -> Result<Session, Error>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (session, driver) = Session::with_driver(io, config, Role::Server)?;
        tokio::spawn(driver);
        Ok(session)
    }

    /// A session and its driver, for callers who run the driver themselves.
    pub fn with_driver<T>(io: T, config: Config, role: Role) -> Result<(Session, Driver<T>), Error>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        config.validate()?;
        let (read_half, write_half) = super::split::split(io);
        let writer = Writer::new(Box::new(write_half));
        let shared = Arc::new(Shared::new(Core::new(role, config.clone(), now()), writer));
        let trace = SessionTrace::new(role);
        #[cfg(feature = "tracing")]
        let span = trace.span().clone();
        let driver = Driver::new(read_half, shared.clone(), &config, trace);
        let session = Session {
            _guard: Arc::new(LastHandle(shared.clone())),
            shared,
            #[cfg(feature = "tracing")]
            span,
        };
        Ok((session, driver))
    }

    /// Opens a stream. Waits while the peer's concurrency limit or accept backlog is reached
    /// (spec §6.1); fails once the session is closed or going away. There is no round trip:
    /// the SYN leaves when the driver next runs, carrying whatever was written by then, and
    /// data may follow before the peer's ACK.
    pub async fn open(&self) -> Result<Stream, Error> {
        let id = poll_fn(|cx| self.shared.with(|core| core.poll_open(now(), cx.waker()))).await?;
        Ok(Stream::new(self.shared.clone(), id))
    }

    /// Waits for the next stream the peer opens. Once no more can arrive (GOAWAY either way,
    /// or the session ended) it returns the error that says why.
    pub async fn accept(&self) -> Result<Stream, Error> {
        let id = poll_fn(|cx| self.shared.with(|core| core.poll_accept(now(), cx.waker()))).await?;
        Ok(Stream::new(self.shared.clone(), id))
    }

    /// Measures one round trip with a PING (spec §8.1).
    pub async fn ping(&self) -> Result<Duration, Error> {
        let since = self.shared.with(|core| core.send_ping(now()));
        self.shared.flush_inline();
        poll_fn(|cx| self.shared.with(|core| core.poll_ping(since, cx.waker()))).await
    }

    /// Graceful shutdown (spec §8.2): sends GOAWAY, refuses new streams both ways, lets open
    /// streams finish. The session ends when none is left.
    pub fn goaway(&self) {
        self.shared.with(|core| core.goaway(ErrorCode::NO_ERROR));
    }

    /// Immediate close (spec §8.3): every open stream fails at once, unsent bytes are
    /// dropped, and the driver writes the GOAWAY (code `NO_ERROR` if no stream was open,
    /// else `CANCEL`) and shuts down the transport's write side.
    ///
    /// Completes once the GOAWAY (and everything queued before it) is handed to the transport
    /// and its write side is shut down, or the transport failed, so returning from `main`
    /// right after `close().await` no longer loses the GOAWAY. The driver then goes on
    /// reading and discarding input until the peer's EOF, for at most
    /// [`Config::close_drain_timeout`](crate::Config::close_drain_timeout), so that closing
    /// never makes the kernel reset the connection under bytes the peer has not read yet;
    /// await [`Session::closed`] to wait for that too. On a session that has already ended it
    /// waits for the same point. Needs the session's driver to run (it always does for
    /// sessions from [`Session::client`] and [`Session::server`]).
    ///
    /// ```no_run
    /// # async fn demo(session: braid::Session) {
    /// session.close().await; // the peer will read our GOAWAY
    /// let why = session.closed().await; // the transport is closed too
    /// # }
    /// ```
    pub async fn close(&self) {
        self.shared.with(|core| core.close());
        poll_fn(|cx| {
            self.shared
                .poll_transport(TransportPhase::WriteShut, cx.waker())
        })
        .await;
    }

    /// Waits until the session has ended and its transport is closed (after the drain of
    /// [`Session::close`]), and returns why the session ended: for example
    /// [`Error::SessionClosed`] after a graceful GOAWAY either way, a timeout, or the
    /// transport error. Does not end the session itself; see [`Session::goaway`] and
    /// [`Session::close`].
    pub async fn closed(&self) -> Error {
        poll_fn(|cx| {
            self.shared
                .poll_transport(TransportPhase::Closed, cx.waker())
        })
        .await;
        self.closed_reason()
            .expect("a closed transport means the session has ended")
    }

    /// Why the session ended, or `None` while it runs.
    pub fn closed_reason(&self) -> Option<Error> {
        self.shared.with(|core| core.error().cloned())
    }

    /// Counters: open streams, bytes and frames each way, buffered bytes, credit, RTT.
    pub fn stats(&self) -> Stats {
        self.shared.with(|core| core.stats())
    }

    /// The session's `tracing` span (feature `tracing`, on by default): `braid_session`, at
    /// level INFO, target `braid`, with the fields `role` (`"client"` or `"server"`), `id` (a
    /// process-wide counter from 1) and `peer`, which braid leaves empty because a transport
    /// is any `AsyncRead + AsyncWrite`. Record it where you know it:
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let tcp = tokio::net::TcpStream::connect("127.0.0.1:7000").await?;
    /// let peer = tcp.peer_addr()?;
    /// let session = braid::Session::client(tcp, braid::Config::default())?;
    /// session.span().record("peer", tracing::field::display(peer));
    /// # Ok(()) }
    /// ```
    ///
    /// The session's driver runs inside this span, so its events (see the crate docs,
    /// "Logging") carry these fields. Use it as the parent of your own spans or enter it
    /// (`tracing::Instrument::instrument(fut, session.span().clone())`) to put what your tasks
    /// log about this session beside them.
    #[cfg(feature = "tracing")]
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}
