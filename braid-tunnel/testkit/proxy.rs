//! A TCP proxy whose connections can be killed on demand, to cut a tunnel mid-transfer.

use std::{io, net::SocketAddr};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// Forwards every connection to `upstream`; [`KillableProxy::kill`] resets all current
/// connections (RST both ways) while new ones keep being accepted.
#[derive(Debug)]
pub struct KillableProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    kills: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Drop for KillableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KillableProxy {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start(upstream: SocketAddr) -> io::Result<KillableProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (kills, _) = watch::channel(0u64);
        let watch = kills.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    Ok((down, _)) = listener.accept() => {
                        conns.spawn(pipe(down, upstream, watch.subscribe()));
                    }
                    Some(_) = conns.join_next() => {}
                }
            }
        });
        Ok(KillableProxy { addr, kills, task })
    }

    /// Resets every connection open now.
    pub fn kill(&self) {
        self.kills.send_modify(|n| *n += 1);
    }
}

async fn pipe(mut down: TcpStream, upstream: SocketAddr, mut kill: watch::Receiver<u64>) {
    kill.borrow_and_update();
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        let _ = down.set_zero_linger();
        return;
    };
    let _ = (down.set_nodelay(true), up.set_nodelay(true));
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
        _ = kill.changed() => {
            let _ = down.set_zero_linger();
            let _ = up.set_zero_linger();
        }
    }
}
