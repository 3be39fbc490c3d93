//! Starts a tunnel server and client in-process, on loopback, with ephemeral ports.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

use braid_tunnel::{
    client::{Client, ClientError, ClientOptions, TunnelState},
    metrics::Counters,
    rules::Rule,
    server::{Server, ServerOptions},
};

/// The token the harness configures on both ends unless told otherwise.
pub const TOKEN: &[u8] = b"test-token-0123456789abcdef";

/// A running tunnel server; stops when dropped.
#[derive(Debug)]
pub struct RunningServer {
    /// Where tunnel clients connect.
    pub addr: SocketAddr,
    /// Its counters.
    pub counters: Arc<Counters>,
    task: JoinHandle<io::Result<()>>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server with [`TOKEN`], after `tweak` adjusts its options.
pub async fn start_server(tweak: impl FnOnce(&mut ServerOptions)) -> RunningServer {
    let mut opts = ServerOptions::new(TOKEN.to_vec());
    tweak(&mut opts);
    let server = Server::bind("127.0.0.1:0", opts)
        .await
        .expect("bind server");
    RunningServer {
        addr: server.local_addr().expect("server addr"),
        counters: server.counters(),
        task: tokio::spawn(server.run()),
    }
}

/// A running tunnel client; stops (resetting its connections) when dropped.
#[derive(Debug)]
pub struct RunningClient {
    /// One local address per target, in order.
    pub local: Vec<SocketAddr>,
    /// The tunnel's state.
    pub state: watch::Receiver<TunnelState>,
    /// Its counters.
    pub counters: Arc<Counters>,
    task: Option<JoinHandle<Result<(), ClientError>>>,
}

impl Drop for RunningClient {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts a client of the server at `server` with [`TOKEN`], one `--forward` rule per
/// target (each on an ephemeral local port), after `tweak` adjusts its options.
pub async fn start_client(
    server: SocketAddr,
    targets: &[SocketAddr],
    tweak: impl FnOnce(&mut ClientOptions),
) -> RunningClient {
    let mut opts = ClientOptions::new(server.to_string(), TOKEN.to_vec());
    opts.forwards = targets
        .iter()
        .map(|t| Rule {
            listen: "127.0.0.1:0".into(),
            target: t.to_string(),
        })
        .collect();
    opts.backoff_initial = Duration::from_millis(50);
    opts.backoff_max = Duration::from_millis(500);
    tweak(&mut opts);
    let client = Client::bind(opts).await.expect("bind client");
    RunningClient {
        local: client.local_addrs(),
        state: client.state(),
        counters: client.counters(),
        task: Some(tokio::spawn(client.run())),
    }
}

impl RunningClient {
    /// Waits until the tunnel is up on its `connects`-th session (1 = first connect).
    pub async fn wait_up(&mut self, connects: u64) {
        let wait = self
            .state
            .wait_for(|s| s.session.is_some() && s.connects >= connects);
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("tunnel did not come up within 20 s")
            .expect("client stopped");
    }

    /// Waits for the client to give up, and returns why.
    pub async fn finished(&mut self) -> Result<(), ClientError> {
        let task = self.task.take().expect("client task");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("client still running after 20 s")
            .expect("client task panicked")
    }
}
