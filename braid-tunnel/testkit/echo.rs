//! An echo server that honours half-close: it echoes until the client's FIN, then sends its
//! own FIN.

use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// A running echo server; stops when dropped.
#[derive(Debug)]
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicU64>,
    /// Connections that ended with an error (reset) instead of the client's FIN.
    pub failed: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoServer {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> io::Result<EchoServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (count, fails) = (accepted.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    Ok((tcp, _)) = listener.accept() => {
                        count.fetch_add(1, Ordering::SeqCst);
                        let fails = fails.clone();
                        conns.spawn(async move {
                            if echo(tcp).await.is_err() {
                                fails.fetch_add(1, Ordering::SeqCst);
                            }
                        });
                    }
                    Some(_) = conns.join_next() => {}
                }
            }
        });
        Ok(EchoServer {
            addr,
            accepted,
            failed,
            task,
        })
    }
}

async fn echo(tcp: TcpStream) -> io::Result<()> {
    let (mut rx, mut tx) = tcp.into_split();
    tokio::io::copy(&mut rx, &mut tx).await?;
    tx.shutdown().await
}
