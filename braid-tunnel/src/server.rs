//! The tunnel server: accepts tunnel connections, authenticates each, then serves its
//! streams (dial a target for `--forward`, listen for `--reverse`).

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use braid::{Config, Session};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
    time::timeout,
};
use tracing::{debug, info, info_span, warn, Instrument};

use super::{
    auth::ct_eq,
    forward::{self, answer_connect},
    metrics::{self, Counters},
    relay::ResetOnDrop,
    tls::{BoxedTransport, ServerTls},
    wire::{self, Kind, OpenRequest, Status},
};

/// Everything the server needs besides its listening socket.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The shared secret clients must present.
    pub token: Vec<u8>,
    /// braid session limits.
    pub config: Config,
    /// TLS for the tunnel connections, if any.
    pub tls: Option<ServerTls>,
    /// Targets clients may ask to dial (`host:port`, matched exactly); empty allows any.
    pub allow: Vec<String>,
    /// Whether clients may ask the server to listen (reverse forwarding).
    pub allow_reverse: bool,
    /// How often to log the status line; `None` never.
    pub status_interval: Option<Duration>,
    /// Time a new connection has for its TLS handshake and its authentication.
    pub handshake_timeout: Duration,
    /// Time dialing a target may take.
    pub connect_timeout: Duration,
}

impl ServerOptions {
    /// Defaults around `token`: any target, no reverse, 10 s handshake and connect timeouts.
    pub fn new(token: Vec<u8>) -> ServerOptions {
        ServerOptions {
            token,
            config: Config::default(),
            tls: None,
            allow: Vec::new(),
            allow_reverse: false,
            status_interval: None,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn target_for(&self, addr: &str) -> forward::Target {
        if self.allow.is_empty() || self.allow.iter().any(|a| a == addr) {
            Ok(addr.to_string())
        } else {
            Err(Status::NotAllowed)
        }
    }
}

/// Sessions that passed authentication, for the status line.
type Registry = Arc<Mutex<HashMap<u64, Session>>>;

/// State shared by every connection of one server.
#[derive(Debug)]
struct Shared {
    opts: ServerOptions,
    counters: Arc<Counters>,
    sessions: Registry,
    next_id: AtomicU64,
}

/// A bound tunnel server. [`Server::run`] serves until dropped.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the listening socket.
    pub async fn bind(addr: &str, opts: ServerOptions) -> io::Result<Server> {
        opts.config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                opts,
                counters: Arc::default(),
                sessions: Arc::default(),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The server's counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }

    /// Accepts and serves tunnel connections. Runs until dropped, which resets every
    /// connection it was relaying.
    pub async fn run(self) -> io::Result<()> {
        let Server { listener, shared } = self;
        info!(listen = %listener.local_addr()?, tls = shared.opts.tls.is_some(), "tunnel server listening");
        let mut tunnels = JoinSet::new();
        // The status line measures RTTs (a PING each, up to 2 s): in a task of its own, so
        // accepting never waits for it. Dropping the set stops it with the server.
        let mut background = JoinSet::new();
        background.spawn(status_loop(shared.clone()));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let shared = shared.clone();
                        let span = info_span!("tunnel", %peer);
                        tunnels.spawn(serve_tunnel(tcp, shared).instrument(span));
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = tunnels.join_next() => {}
            }
        }
    }
}

/// The server's status line (see [`metrics::log_status_every`]).
async fn status_loop(shared: Arc<Shared>) {
    metrics::log_status_every(
        shared.opts.status_interval,
        &shared.counters,
        || shared.sessions.lock().unwrap().values().cloned().collect(),
        |snap| format!("{} tunnel(s) up, {snap}", snap.tunnels_up),
    )
    .await
}

/// One tunnel connection, from handshake to its last stream.
async fn serve_tunnel(tcp: TcpStream, shared: Arc<Shared>) {
    let opts = &shared.opts;
    let _ = tcp.set_nodelay(true);
    let io: BoxedTransport = match &opts.tls {
        None => Box::new(tcp),
        Some(tls) => match timeout(opts.handshake_timeout, tls.accept(tcp)).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => return warn!(error = %e, "TLS handshake failed; connection closed"),
            Err(_) => return warn!("TLS handshake timed out; connection closed"),
        },
    };
    let session = match Session::server(io, opts.config.clone()) {
        Ok(session) => session,
        Err(e) => return warn!(error = %e, "cannot start session"),
    };
    match timeout(opts.handshake_timeout, authenticate(&session, &opts.token)).await {
        Ok(Ok(())) => info!("client authenticated; tunnel up"),
        Ok(Err(why)) => {
            warn!("authentication failed ({why}); closing the connection, no stream was served");
            session.close().await;
            return;
        }
        Err(_) => {
            warn!(
                "no authentication within {:?}; closing the connection",
                opts.handshake_timeout
            );
            session.close().await;
            return;
        }
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared.sessions.lock().unwrap().insert(id, session.clone());
    shared.counters.sessions.fetch_add(1, Ordering::Relaxed);

    let mut streams = JoinSet::new();
    let reason = loop {
        tokio::select! {
            accepted = session.accept() => match accepted {
                Ok(stream) => {
                    let span = info_span!("stream", id = stream.id());
                    streams.spawn(serve_stream(stream, session.clone(), shared.clone()).instrument(span));
                }
                Err(e) => break e,
            },
            Some(_) = streams.join_next() => {}
        }
    };
    shared.sessions.lock().unwrap().remove(&id);
    info!(reason = %reason, "tunnel down");
    // Streams of a session that failed fail by themselves; a draining session's go on.
    while streams.join_next().await.is_some() {}
}

/// Why authentication failed.
#[derive(Debug)]
enum AuthError {
    Tunnel(braid::Error),
    Malformed(io::Error),
    WrongToken,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Tunnel(e) => write!(f, "session ended: {e}"),
            AuthError::Malformed(e) => write!(f, "bad auth request: {e}"),
            AuthError::WrongToken => f.write_str("wrong token"),
        }
    }
}

/// Reads the auth request from the first stream the client opens and answers it. No other
/// stream is accepted before this returns `Ok`.
async fn authenticate(session: &Session, token: &[u8]) -> Result<(), AuthError> {
    let mut stream = session.accept().await.map_err(AuthError::Tunnel)?;
    let (status, result) = match wire::read_auth(&mut stream).await {
        Ok(presented) if ct_eq(&presented, token) => (Status::Ok, Ok(())),
        Ok(_) => (Status::BadToken, Err(AuthError::WrongToken)),
        Err(e) => (Status::BadRequest, Err(AuthError::Malformed(e))),
    };
    let (_rx, mut tx) = stream.into_split();
    let reply = async {
        tx.send(bytes::Bytes::copy_from_slice(&[status.to_byte()]))
            .await?;
        tx.finish()?;
        tx.flush_queued().await
    };
    // The answer is a courtesy on failure: bound it, the session is closed anyway.
    match timeout(Duration::from_secs(2), reply).await {
        Ok(Err(e)) if result.is_ok() => return Err(AuthError::Tunnel(e)),
        _ => {}
    }
    result
}

/// One stream of an authenticated session.
async fn serve_stream(stream: braid::Stream, session: Session, shared: Arc<Shared>) {
    let opts = &shared.opts;
    let (mut rx, mut tx) = stream.into_split();
    let request = match timeout(opts.handshake_timeout, OpenRequest::read(&mut rx)).await {
        Ok(Ok(request)) => request,
        Ok(Err(e)) => {
            debug!(error = %e, "bad open request");
            let bad = Status::BadRequest.to_byte();
            let _ = tx.send(bytes::Bytes::copy_from_slice(&[bad])).await;
            let _ = tx.finish();
            return;
        }
        Err(_) => return debug!("no open request in time"),
    };
    match request.kind {
        Kind::Connect => {
            let target = opts.target_for(&request.addr);
            if target.is_err() {
                warn!(target_addr = %request.addr, "target not in --allow list; refused");
            }
            let counters = &shared.counters;
            let _active = counters.start();
            match answer_connect(rx, tx, target, opts.connect_timeout, counters).await {
                Ok(t) => {
                    debug!(target_addr = %request.addr, from_target = t.from_tcp, to_target = t.to_tcp, "connection done")
                }
                Err(e) => {
                    counters.fail();
                    info!(target_addr = %request.addr, error = %e, "connection failed");
                }
            }
        }
        Kind::Listen => serve_reverse(request.addr, rx, tx, session, shared.clone()).await,
    }
}

/// A reverse rule: listens on `addr` for as long as the client keeps the control stream
/// open, and forwards each connection back over a stream the server opens.
async fn serve_reverse(
    addr: String,
    mut rx: braid::RecvStream,
    mut tx: braid::SendStream,
    session: Session,
    shared: Arc<Shared>,
) {
    let reply = |status: Status| bytes::Bytes::copy_from_slice(&[status.to_byte()]);
    if !shared.opts.allow_reverse {
        warn!(listen = %addr, "reverse forwarding is off (--allow-reverse); refused");
        let _ = tx.send(reply(Status::NotAllowed)).await;
        let _ = tx.finish();
        return;
    }
    let listener = match TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            warn!(listen = %addr, error = %e, "reverse listen failed");
            let _ = tx.send(reply(Status::Unreachable)).await;
            let _ = tx.finish();
            return;
        }
    };
    if tx.send(reply(Status::Ok)).await.is_err() {
        return;
    }
    info!(listen = %addr, "reverse forwarding: listening");
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let (session, shared, addr) = (session.clone(), shared.clone(), addr.clone());
                conns.spawn(async move {
                    let tcp = ResetOnDrop::new(tcp);
                    let counters = &shared.counters;
                    let _active = counters.start();
                    let result = match forward::open(&session, &addr).await {
                        Ok(opened) => forward::relay_opened(tcp, opened, counters).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        counters.fail();
                        info!(%peer, listen = %addr, error = %e, "reverse connection failed");
                    }
                });
            }
            // The control stream ends (FIN, reset or tunnel lost): stop listening.
            ended = rx.recv() => if !matches!(ended, Ok(Some(_))) { break },
            Some(_) = conns.join_next() => {}
        }
    }
    info!(listen = %addr, "reverse forwarding: stopped listening");
    drop(listener);
    let _ = tx.finish();
    while conns.join_next().await.is_some() {}
}
