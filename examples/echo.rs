//! Client and server in one process over loopback TCP: the server echoes every stream, the
//! client opens many streams at once, sends each a different payload, half-closes, checks the
//! echo, and prints what happened.
//!
//! ```text
//! cargo run --release --example echo [-- STREAMS [BYTES_PER_STREAM]]
//! ```

use std::time::Instant;

use braid::{Config, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let streams: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let bytes: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(64 * 1024);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        let server = Session::server(tcp, Config::default()).expect("config");
        while let Ok(stream) = server.accept().await {
            tokio::spawn(async move {
                let (mut rx, mut tx) = stream.into_split();
                if tokio::io::copy(&mut rx, &mut tx).await.is_ok() {
                    let _ = tx.finish();
                }
            });
        }
    });

    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let client = Session::client(tcp, Config::default())?;
    println!("connected to {addr}; rtt {:?}", client.ping().await?);

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let payload: Vec<u8> = (0..bytes).map(|j| (i * 31 + j) as u8).collect();
            let stream = client.open().await?;
            let (mut rx, mut tx) = stream.into_split();
            let writer = async {
                tx.write_all(&payload).await?;
                tx.shutdown().await
            };
            let mut echoed = Vec::with_capacity(bytes);
            let reader = rx.read_to_end(&mut echoed);
            let (w, r) = tokio::join!(writer, reader);
            w?;
            r?;
            Ok::<bool, std::io::Error>(echoed == payload)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await?? {
            ok += 1;
        }
    }
    let elapsed = started.elapsed();
    let total = (streams * bytes * 2) as f64 / (1024.0 * 1024.0);
    println!(
        "{ok}/{streams} streams echoed {bytes} bytes each intact in {elapsed:.2?} ({:.0} MiB/s both ways)",
        total / elapsed.as_secs_f64()
    );
    let stats = client.stats();
    println!(
        "client stats: {} frames sent, {} received, {} streams still open, rtt {:?}",
        stats.frames_sent, stats.frames_received, stats.open_streams, stats.rtt
    );
    client.close().await;
    if ok != streams {
        return Err("some streams were not echoed intact".into());
    }
    Ok(())
}
