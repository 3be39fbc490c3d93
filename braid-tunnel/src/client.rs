//! The tunnel client: listens on the `--forward` ports, keeps one authenticated tunnel
//! session to the server (reconnecting with backoff), and forwards each accepted connection
//! over its own stream. Also answers the server's streams for `--reverse` rules.

use std::{fmt, io, net::SocketAddr, sync::Arc, time::Duration};

use braid::{Config, RecvStream, SendStream, Session};
use bytes::Bytes;
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
    time::{timeout, timeout_at, Instant},
};
use tracing::{debug, error, info, info_span, warn, Instrument};

use super::{
    backoff::Backoff,
    forward::{self, answer_connect},
    metrics::{self, Counters},
    relay::ResetOnDrop,
    rules::Rule,
    tls::{BoxedTransport, ClientTls},
    wire::{self, Kind, OpenRequest, Status},
};

/// Everything the client needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The tunnel server, `host:port`.
    pub server: String,
    /// The shared secret.
    pub token: Vec<u8>,
    /// Local listeners whose connections the server dials out for.
    pub forwards: Vec<Rule>,
    /// Server listeners whose connections this client dials out for.
    pub reverses: Vec<Rule>,
    /// braid session limits.
    pub config: Config,
    /// TLS to the server, if any.
    pub tls: Option<ClientTls>,
    /// How often to log the status line; `None` never.
    pub status_interval: Option<Duration>,
    /// Time for connecting to the server, the TLS handshake and authentication.
    pub handshake_timeout: Duration,
    /// Time dialing a `--reverse` target may take.
    pub connect_timeout: Duration,
    /// How long an accepted connection waits for the tunnel while it is down before it is
    /// reset.
    pub wait_for_tunnel: Duration,
    /// First reconnect delay; doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl ClientOptions {
    /// Defaults around the server address and token: no rules yet, 10 s timeouts, reconnect
    /// backoff from 200 ms to 30 s.
    pub fn new(server: impl Into<String>, token: Vec<u8>) -> ClientOptions {
        ClientOptions {
            server: server.into(),
            token,
            forwards: Vec::new(),
            reverses: Vec::new(),
            config: Config::default(),
            tls: None,
            status_interval: None,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            wait_for_tunnel: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The tunnel as seen by the forwarding tasks (and by tests).
#[derive(Debug, Clone, Default)]
pub struct TunnelState {
    /// The authenticated session while the tunnel is up.
    pub session: Option<Session>,
    /// Sessions established so far (1 after the first connect, 2 after a reconnect, ...).
    pub connects: u64,
}

/// Why the client gave up. Everything else (server down, tunnel lost) is retried.
#[derive(Debug)]
pub enum ClientError {
    /// The server rejected the token (or the protocol version): retrying can't help.
    Rejected(Status),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Rejected(status) => write!(f, "server rejected the client: {status}"),
        }
    }
}

impl std::error::Error for ClientError {}

#[derive(Debug)]
struct Shared {
    opts: ClientOptions,
    counters: Arc<Counters>,
    state: watch::Sender<TunnelState>,
}

/// A client with its forward listeners bound. [`Client::run`] does the rest.
#[derive(Debug)]
pub struct Client {
    listeners: Vec<(TcpListener, Rule)>,
    shared: Arc<Shared>,
}

impl Client {
    /// Validates the options and binds every `--forward` listener.
    pub async fn bind(opts: ClientOptions) -> io::Result<Client> {
        opts.config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut listeners = Vec::new();
        for rule in &opts.forwards {
            let listener = TcpListener::bind(&rule.listen)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("listen {}: {e}", rule.listen)))?;
            listeners.push((listener, rule.clone()));
        }
        Ok(Client {
            listeners,
            shared: Arc::new(Shared {
                opts,
                counters: Arc::default(),
                state: watch::Sender::new(TunnelState::default()),
            }),
        })
    }

    /// The bound address of each `--forward` rule, in order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Watches the tunnel go up and down.
    pub fn state(&self) -> watch::Receiver<TunnelState> {
        self.shared.state.subscribe()
    }

    /// The client's counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }

    /// Serves the listeners and keeps the tunnel up. Returns only when the server rejects
    /// the client; dropping the future resets every connection it was relaying.
    pub async fn run(self) -> Result<(), ClientError> {
        let Client { listeners, shared } = self;
        let mut tasks = JoinSet::new();
        for (listener, rule) in listeners {
            if let Ok(addr) = listener.local_addr() {
                info!(listen = %addr, target_addr = %rule.target, "forwarding");
            }
            tasks.spawn(accept_loop(listener, rule, shared.clone()));
        }
        tasks.spawn(status_loop(shared.clone()));
        let opts = &shared.opts;
        let mut backoff = Backoff::new(opts.backoff_initial, opts.backoff_max);
        loop {
            match connect(opts).await {
                Ok((session, controls)) => {
                    backoff.reset();
                    let connects = shared.state.borrow().connects + 1;
                    shared
                        .counters
                        .sessions
                        .store(connects, std::sync::atomic::Ordering::Relaxed);
                    shared.state.send_replace(TunnelState {
                        session: Some(session.clone()),
                        connects,
                    });
                    info!(server = %opts.server, connects, "tunnel up");
                    let reason = serve_session(&session, &shared).await;
                    shared.state.send_modify(|s| s.session = None);
                    drop(controls);
                    warn!(server = %opts.server, reason = %reason, "tunnel down");
                }
                Err(ConnectError::Rejected(status)) => {
                    error!(server = %opts.server, "server rejected this client: {status}; giving up");
                    return Err(ClientError::Rejected(status));
                }
                Err(ConnectError::Other(e)) => {
                    warn!(server = %opts.server, error = %e, "cannot establish the tunnel");
                }
            }
            let delay = backoff.next_delay();
            info!("reconnecting in {delay:.2?}");
            tokio::time::sleep(delay).await;
        }
    }
}

enum ConnectError {
    Rejected(Status),
    Other(io::Error),
}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        ConnectError::Other(e)
    }
}

impl From<braid::Error> for ConnectError {
    fn from(e: braid::Error) -> Self {
        ConnectError::Other(e.into())
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// The control streams of accepted reverse rules; dropping them tells the server to stop
/// listening.
type Controls = Vec<(RecvStream, SendStream)>;

/// Connects, authenticates, and sets up the reverse rules.
async fn connect(opts: &ClientOptions) -> Result<(Session, Controls), ConnectError> {
    let deadline = Instant::now() + opts.handshake_timeout;
    let tcp = timeout_at(deadline, TcpStream::connect(&opts.server))
        .await
        .map_err(|_| timed_out("connect"))??;
    let _ = tcp.set_nodelay(true);
    let io: BoxedTransport = match &opts.tls {
        None => Box::new(tcp),
        Some(tls) => timeout_at(deadline, tls.connect(&opts.server, tcp))
            .await
            .map_err(|_| timed_out("TLS handshake"))??,
    };
    let session = Session::client(io, opts.config.clone())?;
    let mut auth = session.open().await?;
    auth.write_all(&wire::encode_auth(&opts.token)?).await?;
    auth.finish()?;
    let status = timeout_at(deadline, wire::read_status(&mut auth))
        .await
        .map_err(|_| timed_out("authentication"))?
        .map_err(|e| io::Error::new(e.kind(), format!("authentication: {e}")))?;
    match status {
        Status::Ok => {}
        Status::BadToken | Status::BadRequest => return Err(ConnectError::Rejected(status)),
        other => return Err(io::Error::other(format!("authentication: {other}")).into()),
    }
    let mut controls = Vec::new();
    for rule in &opts.reverses {
        let (mut rx, mut tx) = session.open().await?.into_split();
        tx.send(Bytes::from(OpenRequest::listen(&rule.listen).encode()?))
            .await?;
        match timeout_at(deadline, wire::read_status(&mut rx)).await {
            Ok(Ok(Status::Ok)) => {
                info!(rule = %rule, "reverse forwarding: server listening");
                controls.push((rx, tx));
            }
            Ok(Ok(status)) => warn!(rule = %rule, "server refused reverse forwarding: {status}"),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(timed_out("reverse listen request").into()),
        }
    }
    Ok((session, controls))
}

/// Answers the server's streams until the session can't carry new ones; returns why.
async fn serve_session(session: &Session, shared: &Arc<Shared>) -> braid::Error {
    let mut streams = JoinSet::new();
    let reason = loop {
        tokio::select! {
            accepted = session.accept() => match accepted {
                Ok(stream) => {
                    let span = info_span!("reverse", id = stream.id());
                    streams.spawn(answer_reverse(stream, shared.clone()).instrument(span));
                }
                Err(e) => break e,
            },
            Some(_) = streams.join_next() => {}
        }
    };
    // In-flight streams fail by themselves if the tunnel is gone, or finish if it drains.
    tokio::spawn(async move { while streams.join_next().await.is_some() {} });
    reason
}

/// One stream the server opened for a reverse rule: dial the rule's local target.
async fn answer_reverse(stream: braid::Stream, shared: Arc<Shared>) {
    let opts = &shared.opts;
    let (mut rx, tx) = stream.into_split();
    let Ok(Ok(request)) = timeout(opts.handshake_timeout, OpenRequest::read(&mut rx)).await else {
        return debug!("bad or missing open request from server");
    };
    let target = match request.kind {
        Kind::Connect => opts
            .reverses
            .iter()
            .find(|r| r.listen == request.addr)
            .map(|r| r.target.clone())
            .ok_or(Status::NotAllowed),
        Kind::Listen => Err(Status::BadRequest),
    };
    let counters = &shared.counters;
    let _active = counters.start();
    if let Err(e) = answer_connect(rx, tx, target, opts.connect_timeout, counters).await {
        counters.fail();
        info!(listen = %request.addr, error = %e, "reverse connection failed");
    }
}

/// Accepts local connections for one `--forward` rule.
async fn accept_loop(listener: TcpListener, rule: Rule, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let span = info_span!("conn", %peer, target_addr = %rule.target);
                    let fut = forward_one(ResetOnDrop::new(tcp), rule.target.clone(), shared.clone());
                    conns.spawn(fut.instrument(span));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next() => {}
        }
    }
}

/// Forwards one accepted connection. While the tunnel is down it waits up to
/// `wait_for_tunnel`; a stream the server refused or a session that was closing is retried
/// on the next session (nothing reached the target yet). Any failure resets the connection.
async fn forward_one(tcp: ResetOnDrop, target: String, shared: Arc<Shared>) {
    let counters = &shared.counters;
    let _active = counters.start();
    let mut state = shared.state.subscribe();
    let deadline = Instant::now() + shared.opts.wait_for_tunnel;
    let mut min_connects = 0;
    let opened = loop {
        let Some((session, connects)) = current_session(&mut state, deadline, min_connects).await
        else {
            counters.fail();
            return warn!("tunnel is down; connection reset");
        };
        match forward::open(&session, &target).await {
            Ok(opened) => break opened,
            Err(e) if e.retryable() && Instant::now() < deadline => {
                debug!(error = %e, "retrying on the next session");
                min_connects = connects + 1;
            }
            Err(e) => {
                counters.fail();
                return info!(error = %e, "forward failed; connection reset");
            }
        }
    };
    match forward::relay_opened(tcp, opened, counters).await {
        Ok(t) => debug!(sent = t.from_tcp, received = t.to_tcp, "connection done"),
        Err(e) => {
            counters.fail();
            info!(error = %e, "connection aborted (reset)");
        }
    }
}

/// The live session numbered at least `min_connects`, waiting for one until `deadline`.
async fn current_session(
    state: &mut watch::Receiver<TunnelState>,
    deadline: Instant,
    min_connects: u64,
) -> Option<(Session, u64)> {
    let wait = async {
        loop {
            {
                let now = state.borrow_and_update();
                if let Some(session) = &now.session {
                    if now.connects >= min_connects && session.closed_reason().is_none() {
                        return Some((session.clone(), now.connects));
                    }
                }
            }
            state.changed().await.ok()?;
        }
    };
    timeout_at(deadline, wait).await.ok().flatten()
}

/// The client's status line (see [`metrics::log_status_every`]).
async fn status_loop(shared: Arc<Shared>) {
    metrics::log_status_every(
        shared.opts.status_interval,
        &shared.counters,
        || shared.state.borrow().session.clone().into_iter().collect(),
        |snap| {
            let up = if snap.tunnels_up > 0 { "up" } else { "down" };
            format!("tunnel {up}, {snap}")
        },
    )
    .await
}
