//! A minimal HTTP/1.1 server and client, enough for keep-alive GETs of pattern bodies.
//!
//! Server: `GET /bytes/N` answers `N` bytes of [`payload::block`] repeated, with a
//! `Content-Length`; connections stay open until the client closes them or sends
//! `Connection: close`. Anything else is a 404.

use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use super::payload::{self, Verifier};

/// A running server; stops (and drops its connections) when dropped.
#[derive(Debug)]
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    /// Starts a server on 127.0.0.1 with an ephemeral port; it writes a response's head and
    /// body with separate writes.
    pub async fn start() -> io::Result<HttpServer> {
        HttpServer::start_with(false).await
    }

    /// Like [`HttpServer::start`]; with `one_write`, a response of up to 64 KiB goes out in
    /// one write (head and body together), as servers that gather their output do.
    pub async fn start_with(one_write: bool) -> io::Result<HttpServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    Ok((tcp, _)) = listener.accept() => {
                        count.fetch_add(1, Ordering::SeqCst);
                        conns.spawn(serve(tcp, one_write));
                    }
                    Some(_) = conns.join_next() => {}
                }
            }
        });
        Ok(HttpServer {
            addr,
            accepted,
            task,
        })
    }
}

async fn serve(tcp: TcpStream, one_write: bool) -> io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let (rx, mut tx) = tcp.into_split();
    let mut rx = BufReader::new(rx);
    let mut line = String::new();
    loop {
        line.clear();
        if rx.read_line(&mut line).await? == 0 {
            return Ok(()); // client closed between requests
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut close = false;
        loop {
            line.clear();
            if rx.read_line(&mut line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        match path
            .strip_prefix("/bytes/")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(len) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
                );
                if one_write && len <= 64 * 1024 {
                    let mut out = Vec::with_capacity(head.len() + len as usize);
                    out.extend_from_slice(head.as_bytes());
                    write_pattern(&mut out, len).await?;
                    tx.write_all(&out).await?;
                } else {
                    tx.write_all(head.as_bytes()).await?;
                    write_pattern(&mut tx, len).await?;
                }
            }
            None => {
                tx.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    .await?;
            }
        }
        if close {
            return tx.shutdown().await;
        }
    }
}

async fn write_pattern<W: AsyncWriteExt + Unpin>(w: &mut W, len: u64) -> io::Result<()> {
    let block = payload::block();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        w.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

/// A keep-alive HTTP/1.1 client connection.
#[derive(Debug)]
pub struct HttpClient {
    conn: BufReader<TcpStream>,
    host: String,
}

impl HttpClient {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<HttpClient> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(HttpClient {
            conn: BufReader::with_capacity(64 * 1024, tcp),
            host: addr.to_string(),
        })
    }

    /// `GET /bytes/len` and checks the body is exactly the pattern of that length.
    pub async fn get_pattern(&mut self, len: u64) -> io::Result<()> {
        let request = format!("GET /bytes/{len} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.conn.get_mut().write_all(request.as_bytes()).await?;
        let body_len = self.read_head().await?;
        if body_len != len {
            return Err(bad(format!("Content-Length {body_len}, expected {len}")));
        }
        let mut verifier = Verifier::default();
        let mut left = body_len;
        while left > 0 {
            let buf = self.conn.fill_buf().await?;
            if buf.is_empty() {
                return Err(bad(format!("body ended {left} bytes early")));
            }
            let n = buf.len().min(left as usize);
            verifier.check(&buf[..n]).map_err(bad)?;
            self.conn.consume(n);
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads a status line and headers; returns the Content-Length of a 200.
    async fn read_head(&mut self) -> io::Result<u64> {
        let mut line = String::new();
        if self.conn.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if !line.starts_with("HTTP/1.1 200") {
            return Err(bad(format!("status line {line:?}")));
        }
        let mut len = None;
        loop {
            line.clear();
            if self.conn.read_line(&mut line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    len = value.trim().parse().ok();
                }
            }
        }
        len.ok_or_else(|| bad("no Content-Length".into()))
    }

    /// Closes the connection cleanly; errors if the server sent anything unexpected.
    pub async fn close(mut self) -> io::Result<()> {
        self.conn.get_mut().shutdown().await?;
        let mut rest = Vec::new();
        self.conn.read_to_end(&mut rest).await?;
        if rest.is_empty() {
            Ok(())
        } else {
            Err(bad(format!(
                "{} unexpected bytes after the last response",
                rest.len()
            )))
        }
    }
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}
