//! Issue #3 "faults with nothing lost": a fault-injecting transport (random short reads and
//! writes, random delays, a cut at a random byte) under 1,000 streams with random sizes.
//! Every stream either delivers every byte (checked by hash) or ends with an error on both
//! ends — never a silent truncation, never a hang.

mod support;

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use braid::{Config, Session};
use support::{data, hash, Rng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// One end of a faulty link. Both ends share `cut`: once either side's writes pass
/// `cut_after` bytes in total, every read and write on both ends fails.
struct Faulty {
    inner: DuplexStream,
    rng: Rng,
    cut: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
    cut_after: usize,
}

impl Faulty {
    fn check_cut(&self) -> io::Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "link cut"));
        }
        Ok(())
    }

    /// Sometimes pretend to be busy: return Pending after arranging to be polled again.
    fn delay(&mut self, cx: &mut Context<'_>) -> bool {
        if self.rng.below(8) == 0 {
            cx.waker().wake_by_ref();
            return true;
        }
        false
    }
}

impl AsyncRead for Faulty {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check_cut()?;
        if self.delay(cx) {
            return Poll::Pending;
        }
        let want = 1 + self.rng.below(buf.remaining() as u64) as usize;
        let mut small = vec![0u8; want];
        let mut sub = ReadBuf::new(&mut small);
        match Pin::new(&mut self.inner).poll_read(cx, &mut sub) {
            Poll::Ready(Ok(())) => {
                self.check_cut()?;
                buf.put_slice(sub.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Faulty {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check_cut()?;
        if self.delay(cx) {
            return Poll::Pending;
        }
        let mut n = 1 + self.rng.below(buf.len() as u64) as usize;
        let so_far = self.written.load(Ordering::SeqCst);
        if so_far + n >= self.cut_after {
            n = self.cut_after.saturating_sub(so_far);
            if n == 0 {
                self.cut.store(true, Ordering::SeqCst);
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "link cut")));
            }
        }
        match Pin::new(&mut self.inner).poll_write(cx, &buf[..n]) {
            Poll::Ready(Ok(k)) => {
                self.written.fetch_add(k, Ordering::SeqCst);
                Poll::Ready(Ok(k))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn faulty_pair(seed: u64, cut_after: usize) -> (Faulty, Faulty) {
    let (a, b) = tokio::io::duplex(16 * 1024);
    let cut = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let end = |inner, s| Faulty {
        inner,
        rng: Rng(s),
        cut: cut.clone(),
        written: written.clone(),
        cut_after,
    };
    (end(a, seed | 1), end(b, (seed << 1) | 1))
}

/// Per stream: the client sends an 8-byte length and 8-byte hash, then the payload, and
/// half-closes; the server checks and echoes the payload, then half-closes.
async fn run(seed: u64, cut_after: usize) -> (usize, usize) {
    const STREAMS: usize = 1000;
    let (a, b) = faulty_pair(seed, cut_after);
    let client = Session::client(a, Config::default()).unwrap();
    let server = Session::server(b, Config::default()).unwrap();
    let server_task = tokio::spawn(async move {
        let mut handlers = Vec::new();
        while let Ok(stream) = server.accept().await {
            handlers.push(tokio::spawn(async move {
                let (mut rx, mut tx) = stream.into_split();
                let mut body = Vec::new();
                let read = rx.read_to_end(&mut body).await;
                match read {
                    Ok(_) => {
                        // A clean end must mean every byte arrived.
                        assert!(body.len() >= 16, "clean EOF before the header: truncation");
                        let len = u64::from_be_bytes(body[..8].try_into().unwrap()) as usize;
                        let h = u64::from_be_bytes(body[8..16].try_into().unwrap());
                        assert_eq!(body.len() - 16, len, "clean EOF after a truncated body");
                        assert_eq!(hash(&body[16..]), h, "corrupted body");
                        if tx.write_all(&body[16..]).await.is_ok() {
                            let _ = tx.shutdown().await;
                        }
                        true
                    }
                    Err(_) => false,
                }
            }));
        }
        let mut ok = 0;
        for h in handlers {
            ok += h.await.expect("server handler must not panic") as usize;
        }
        ok
    });
    let mut rng = Rng(seed.wrapping_mul(3) | 1);
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        let client = client.clone();
        let len = match rng.below(10) {
            0 => 0,
            1..=7 => rng.below(2048) as usize,
            _ => rng.below(64 * 1024) as usize,
        };
        let payload = data(seed ^ i as u64, len);
        tasks.push(tokio::spawn(async move {
            let stream = client.open().await.ok()?;
            let (mut rx, mut tx) = stream.into_split();
            let mut msg = Vec::with_capacity(len + 16);
            msg.extend_from_slice(&(len as u64).to_be_bytes());
            msg.extend_from_slice(&hash(&payload).to_be_bytes());
            msg.extend_from_slice(&payload);
            let writer = async {
                tx.write_all(&msg).await?;
                tx.shutdown().await
            };
            let mut echo = Vec::new();
            let (w, r) = tokio::join!(writer, rx.read_to_end(&mut echo));
            match (w, r) {
                (Ok(()), Ok(_)) => {
                    assert_eq!(echo.len(), payload.len(), "clean EOF on a truncated echo");
                    assert!(echo == payload, "corrupted echo");
                    Some(())
                }
                _ => None,
            }
        }));
    }
    let mut client_ok = 0;
    for t in tasks {
        client_ok += t.await.expect("client task must not panic").is_some() as usize;
    }
    drop(client);
    let server_ok = server_task.await.unwrap();
    (client_ok, server_ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_never_truncate_silently() {
    for seed in 1..=4u64 {
        let cut_after = match seed {
            1 => usize::MAX, // no cut: short reads, short writes and delays only
            s => (s as usize * 7919 * 113) % (4 << 20),
        };
        let (client_ok, server_ok) =
            tokio::time::timeout(Duration::from_secs(60), run(seed, cut_after))
                .await
                .expect("no hang");
        eprintln!("seed {seed}: cut after {cut_after} bytes: {client_ok} streams ok at the client, {server_ok} at the server");
        if cut_after == usize::MAX {
            assert_eq!(client_ok, 1000);
            assert_eq!(server_ok, 1000);
        }
        // A stream the client saw complete was completely received by the server too.
        assert!(server_ok >= client_ok);
    }
}
