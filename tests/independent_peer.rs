//! Interoperability with an independent implementation of the wire protocol: a Python peer
//! (`tests/independent_peer/braid_peer.py`, standard library only) written from
//! `spec/PROTOCOL.md` alone, sharing no code with `src/`. It checks every frame braid sends
//! against the spec (header rules, id rules, ACK rules, stream and session credit, DATA after
//! FIN) and fails loudly on any violation.
//!
//! Both implementations serve the same per-stream command protocol (documented at the top of
//! the Python file: `echo`, `sink`, `source N`, `reset CODE`, `flood CODE`, `stop CODE`,
//! `expect-reset CODE`, `ping`, `callback`), and both run the same scenarios as openers:
//!
//! * braid as server: the Python client runs the scenarios against braid, then sends GOAWAY;
//!   braid's `accept()` ends with `GoingAway { by: Remote }` and the session closes gracefully.
//! * braid as client: braid runs the scenarios against the Python server, then calls
//!   `goaway()`; the Python server must see GOAWAY(NO_ERROR) and EOF.
//!
//! Both sessions use small windows (ours 32 KiB per stream / 1 MiB session, the peer's 64 KiB /
//! 256 KiB, 16 KiB frames) so that flow control cycles many times in each 1 MiB transfer.
//! Real clock and real sockets; everything is bounded by timeouts, and the child's exit status
//! and stderr are part of every failure message. Without `python3` the tests print
//! `SKIPPED: python3 not found` and pass.

use std::{process::Stdio, time::Duration};

use braid::{Config, Error, ErrorCode, RecvStream, SendStream, Session, Side};
use bytes::Bytes;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    task::JoinHandle,
    time::timeout,
};

const PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/independent_peer/braid_peer.py"
);
/// Bound on each whole test (the peer bounds itself at 20 s).
const LIMIT: Duration = Duration::from_secs(45);
const BULK: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;

const CODE_RESET: u32 = 0x00ab_0001;
const CODE_FLOOD: u32 = 0x00ab_0002;
const CODE_STOP: u32 = 0x00ab_0003;
const CODE_EXPECT_RESET: u32 = 0x00ab_0004;

/// Every command of the protocol; each side serves each exactly once per run.
const ALL_COMMANDS: [&str; 9] = [
    "echo",
    "sink",
    "source",
    "reset",
    "flood",
    "stop",
    "expect-reset",
    "ping",
    "callback",
];

type Outcome = Result<(), String>;

fn config() -> Config {
    let c = Config::default()
        .with_initial_stream_window(32 * 1024)
        .with_session_window(1 << 20)
        .with_max_stream_window(256 * 1024)
        .with_max_frame_payload(16 * 1024);
    c.validate().expect("test config");
    c
}

// ---------------------------------------------------------------------------------------------
// Data: the pattern of the command protocol, random payloads, CRC-32 (IEEE, as zlib.crc32).

fn pattern(offset: usize, n: usize) -> Vec<u8> {
    (offset..offset + n).map(|i| (i % 251) as u8).collect()
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

// ---------------------------------------------------------------------------------------------
// Stream helpers. `Reader` keeps the bytes after a command line for the next read.

struct Reader {
    rx: RecvStream,
    pushback: Vec<u8>,
}

impl Reader {
    fn new(rx: RecvStream) -> Reader {
        Reader {
            rx,
            pushback: Vec::new(),
        }
    }

    async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.pushback.is_empty() {
            return Ok(Some(Bytes::from(std::mem::take(&mut self.pushback))));
        }
        self.rx.recv().await
    }

    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.pushback.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pushback.drain(..=i).collect();
                return String::from_utf8(line).map_err(|e| format!("line: {e}"));
            }
            match self.rx.recv().await {
                Ok(Some(b)) => self.pushback.extend_from_slice(&b),
                Ok(None) => return Err("EOF before a whole line".into()),
                Err(e) => return Err(format!("reading a line: {e}")),
            }
        }
    }

    async fn read_to_end(&mut self) -> Result<Vec<u8>, String> {
        let mut out = std::mem::take(&mut self.pushback);
        loop {
            match self.rx.recv().await {
                Ok(Some(b)) => out.extend_from_slice(&b),
                Ok(None) => return Ok(out),
                Err(e) => return Err(format!("read after {} bytes: {e}", out.len())),
            }
        }
    }
}

async fn send(tx: &mut SendStream, bytes: impl Into<Bytes>) -> Outcome {
    tx.send(bytes.into())
        .await
        .map_err(|e| format!("send: {e}"))
}

fn finish(tx: &mut SendStream) -> Outcome {
    tx.finish().map_err(|e| format!("finish: {e}"))
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Sends the pattern until the peer's STOP_SENDING fails the writer with `stopped(code)`.
async fn send_pattern_until_stopped(tx: &mut SendStream, code: u32) -> Outcome {
    let mut off = 0;
    loop {
        match tx.send(Bytes::from(pattern(off, CHUNK))).await {
            Ok(()) => off += CHUNK,
            Err(Error::StreamStopped { code: c }) if c == ErrorCode(code) => return Ok(()),
            Err(e) => return Err(format!("expected stopped({code:#x}), got {e:?}")),
        }
        if off > 64 * BULK {
            return Err(format!("still sending after {off} bytes: no STOP_SENDING"));
        }
    }
}

fn expect_reset(got: Result<impl std::fmt::Debug, Error>, code: u32, by: Side) -> Outcome {
    match got {
        Err(Error::StreamReset { code: c, by: b }) if c == ErrorCode(code) && b == by => Ok(()),
        other => Err(format!(
            "expected StreamReset({code:#x}, {by:?}), got {other:?}"
        )),
    }
}

/// Reads until an error; it must be a reset by the peer with `code`.
async fn read_until_reset(rx: &mut Reader, code: u32) -> Outcome {
    loop {
        match rx.chunk().await {
            Ok(Some(_)) => {}
            other => return expect_reset(other, code, Side::Remote),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Acceptor side: serve the command protocol on every stream the peer opens.

async fn serve(session: Session, stream: braid::Stream) -> (String, Outcome) {
    let id = stream.id();
    let (rx, mut tx) = stream.into_split();
    let mut rx = Reader::new(rx);
    let line = match rx.line().await {
        Ok(line) => line,
        Err(e) => return (format!("stream {id}"), Err(e)),
    };
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("").to_string();
    let arg: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let code = arg as u32;
    let outcome = async {
        match cmd.as_str() {
            "echo" => {
                while let Some(b) = rx.chunk().await.map_err(|e| format!("read: {e}"))? {
                    send(&mut tx, b).await?;
                }
                finish(&mut tx)
            }
            "sink" => {
                let data = rx.read_to_end().await?;
                send(&mut tx, format!("{} {:08x}\n", data.len(), crc32(&data))).await?;
                finish(&mut tx)
            }
            "source" => {
                // Half-close: the opener finished first; our direction goes on.
                let extra = rx.read_to_end().await?;
                check(extra.is_empty(), || {
                    format!("{} bytes after source", extra.len())
                })?;
                let n = arg as usize;
                for off in (0..n).step_by(CHUNK) {
                    send(&mut tx, pattern(off, CHUNK.min(n - off))).await?;
                }
                finish(&mut tx)
            }
            "reset" => {
                tx.reset(ErrorCode(code));
                Ok(())
            }
            "flood" => {
                send_pattern_until_stopped(&mut tx, code).await?;
                let extra = rx.read_to_end().await?;
                check(extra.is_empty(), || {
                    format!("{} bytes after flood", extra.len())
                })
            }
            "stop" => {
                rx.rx.stop(ErrorCode(code));
                send(&mut tx, &b"stopped\n"[..]).await?;
                finish(&mut tx)
            }
            "expect-reset" => {
                send(&mut tx, &b"ready\n"[..]).await?;
                read_until_reset(&mut rx, code).await
            }
            "ping" => {
                session.ping().await.map_err(|e| format!("ping: {e}"))?;
                let extra = rx.read_to_end().await?;
                check(extra.is_empty(), || {
                    format!("{} bytes after ping", extra.len())
                })?;
                send(&mut tx, &b"pong\n"[..]).await?;
                finish(&mut tx)
            }
            "callback" => {
                let data = random_bytes(77, 256 * 1024);
                echo_check(&session, &data)
                    .await
                    .map_err(|e| format!("callback stream: {e}"))?;
                let extra = rx.read_to_end().await?;
                check(extra.is_empty(), || {
                    format!("{} bytes after callback", extra.len())
                })?;
                send(&mut tx, &b"ok\n"[..]).await?;
                finish(&mut tx)
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }
    .await;
    (cmd, outcome.map_err(|e| format!("stream {id}: {e}")))
}

/// Accepts and serves streams until `accept()` fails; returns that error and each served
/// command's outcome, once every one of them has finished.
fn spawn_acceptor(session: Session) -> JoinHandle<(Error, Vec<(String, Outcome)>)> {
    tokio::spawn(async move {
        let mut served = Vec::new();
        let end = loop {
            match session.accept().await {
                Ok(stream) => served.push(tokio::spawn(serve(session.clone(), stream))),
                Err(e) => break e,
            }
        };
        let mut outcomes = Vec::new();
        for task in served {
            outcomes.push(
                task.await
                    .unwrap_or_else(|e| ("?".into(), Err(e.to_string()))),
            );
        }
        (end, outcomes)
    })
}

fn check_served(served: &[(String, Outcome)]) -> Outcome {
    for (cmd, outcome) in served {
        outcome
            .as_ref()
            .map_err(|e| format!("serving {cmd}: {e}"))?;
    }
    let mut names: Vec<&str> = served.iter().map(|(c, _)| c.as_str()).collect();
    names.sort_unstable();
    let mut expected = ALL_COMMANDS.to_vec();
    expected.sort_unstable();
    check(names == expected, || {
        format!("served {names:?}, expected each of {expected:?} once")
    })
}

// ---------------------------------------------------------------------------------------------
// Opener side: the scenarios, run by braid in the client test.

async fn open(session: &Session, command: &str) -> Result<(Reader, SendStream), String> {
    let stream = session.open().await.map_err(|e| format!("open: {e}"))?;
    let (rx, mut tx) = stream.into_split();
    send(&mut tx, command.as_bytes().to_vec()).await?;
    Ok((Reader::new(rx), tx))
}

async fn echo_check(session: &Session, data: &[u8]) -> Outcome {
    let (mut rx, mut tx) = open(session, "echo\n").await?;
    let writer = async {
        // Uneven writes, to cut frames at varying places.
        let mut off = 0;
        let mut step = 1;
        while off < data.len() {
            let n = step.min(data.len() - off);
            send(&mut tx, data[off..off + n].to_vec()).await?;
            off += n;
            step = step * 7 % 40_009 + 1;
        }
        finish(&mut tx)
    };
    let (w, got) = tokio::join!(writer, rx.read_to_end());
    w?;
    let got = got?;
    check(got == data, || {
        format!("echo differs: {} bytes back of {}", got.len(), data.len())
    })
}

async fn scn_sink(session: &Session) -> Outcome {
    let data = random_bytes(2, BULK);
    let (mut rx, mut tx) = open(session, "sink\n").await?;
    send(&mut tx, data.clone()).await?;
    finish(&mut tx)?;
    let reply = rx.read_to_end().await?;
    let expected = format!("{} {:08x}\n", data.len(), crc32(&data));
    check(reply == expected.as_bytes(), || {
        format!(
            "sink replied {:?}, expected {expected:?}",
            String::from_utf8_lossy(&reply)
        )
    })
}

async fn scn_source(session: &Session) -> Outcome {
    let (mut rx, mut tx) = open(session, &format!("source {BULK}\n")).await?;
    finish(&mut tx)?; // half-close first; the peer keeps sending
    let got = rx.read_to_end().await?;
    check(got == pattern(0, BULK), || {
        format!("source: {} bytes, or pattern differs", got.len())
    })
}

async fn scn_reset(session: &Session) -> Outcome {
    let (mut rx, mut tx) = open(session, &format!("reset {CODE_RESET}\n")).await?;
    expect_reset(rx.rx.recv().await, CODE_RESET, Side::Remote)?;
    expect_reset(
        tx.send(Bytes::from_static(b"x")).await,
        CODE_RESET,
        Side::Remote,
    )
}

async fn scn_flood(session: &Session) -> Outcome {
    let (mut rx, mut tx) = open(session, &format!("flood {CODE_FLOOD}\n")).await?;
    let mut got = 0;
    while got < 200 * 1024 {
        match rx.chunk().await {
            Ok(Some(b)) => {
                check(b[..] == pattern(got, b.len())[..], || {
                    format!("flood: pattern differs at {got}")
                })?;
                got += b.len();
            }
            other => return Err(format!("flood: read {other:?} after {got} bytes")),
        }
    }
    rx.rx.stop(ErrorCode(CODE_FLOOD));
    finish(&mut tx)
}

async fn scn_stop(session: &Session) -> Outcome {
    let (mut rx, mut tx) = open(session, &format!("stop {CODE_STOP}\n")).await?;
    send_pattern_until_stopped(&mut tx, CODE_STOP).await?;
    let reply = rx.read_to_end().await?;
    check(reply == b"stopped\n", || format!("stop: reply {reply:?}"))
}

async fn scn_expect_reset(session: &Session) -> Outcome {
    let (mut rx, mut tx) = open(session, &format!("expect-reset {CODE_EXPECT_RESET}\n")).await?;
    let line = rx.line().await?;
    check(line == "ready\n", || format!("expect-reset: {line:?}"))?;
    send(&mut tx, &b"bytes the peer may or may not read"[..]).await?;
    tx.reset(ErrorCode(CODE_EXPECT_RESET));
    Ok(())
}

async fn scn_ping(session: &Session) -> Outcome {
    session.ping().await.map_err(|e| format!("ping: {e}"))?;
    let (mut rx, mut tx) = open(session, "ping\n").await?;
    finish(&mut tx)?;
    let reply = rx.read_to_end().await?;
    check(reply == b"pong\n", || format!("ping: reply {reply:?}"))
}

async fn scn_callback(session: &Session) -> Outcome {
    let (mut rx, mut tx) = open(session, "callback\n").await?;
    finish(&mut tx)?;
    let reply = rx.read_to_end().await?;
    check(reply == b"ok\n", || format!("callback: reply {reply:?}"))
}

async fn client_scenarios(session: &Session) -> Outcome {
    let data = random_bytes(1, BULK);
    let (a, b, c) = tokio::join!(
        echo_check(session, &data),
        scn_sink(session),
        scn_source(session)
    );
    a.map_err(|e| format!("echo: {e}"))?;
    b?;
    c?;
    scn_reset(session).await?;
    scn_flood(session).await?;
    scn_stop(session).await?;
    scn_expect_reset(session).await?;
    scn_ping(session).await?;
    scn_callback(session).await
}

// ---------------------------------------------------------------------------------------------
// The child process.

/// `python3`, or `None` (the caller prints SKIPPED) if it can't be run.
async fn python() -> Option<&'static str> {
    let status = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    match status {
        Ok(s) if s.success() => Some("python3"),
        _ => None,
    }
}

struct Peer {
    child: Child,
    stderr: JoinHandle<String>,
}

impl Peer {
    fn spawn(python: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(python)
            .arg(PEER)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the Python peer");
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        Peer { child, stderr }
    }

    /// Waits for the child to exit (killing it if `outcome` already failed or it overruns);
    /// panics with its status and stderr unless both the outcome and the exit are good.
    async fn finish(mut self, what: &str, outcome: Outcome) {
        if outcome.is_err() {
            let _ = self.child.start_kill();
        }
        let status = match timeout(LIMIT, self.child.wait()).await {
            Ok(status) => status.map(|s| s.to_string()),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Ok("did not exit in time (killed)".to_string())
            }
        };
        let stderr = timeout(Duration::from_secs(5), self.stderr)
            .await
            .map(|r| r.unwrap_or_default())
            .unwrap_or_default();
        let status = status.unwrap_or_else(|e| format!("wait failed: {e}"));
        match outcome {
            Err(e) => panic!("{what}: {e}\npeer exit: {status}\npeer stderr:\n{stderr}"),
            Ok(()) if status != "exit status: 0" => {
                panic!("{what}: the Python peer failed ({status})\npeer stderr:\n{stderr}")
            }
            Ok(()) => eprintln!("{what}: ok; peer stderr:\n{stderr}"),
        }
    }
}

/// Waits until the session has ended and returns why; PINGs keep the driver busy meanwhile
/// and fail once the session ends.
async fn wait_closed(session: &Session) -> Error {
    loop {
        if let Some(reason) = session.closed_reason() {
            return reason;
        }
        let _ = timeout(Duration::from_millis(200), session.ping()).await;
    }
}

fn graceful(reason: &Error, by: Side) -> Outcome {
    match reason {
        Error::SessionClosed { code, by: b, .. } if *code == ErrorCode::NO_ERROR && *b == by => {
            Ok(())
        }
        other => Err(format!(
            "expected a graceful close by {by:?}, got {other:?}"
        )),
    }
}

/// How `accept()` must end after a GOAWAY sent by `by`: `GoingAway`, or, when no stream was
/// left so the session ended before the pending `accept()` woke, the graceful close itself.
fn going_away(err: &Error, by: Side) -> Outcome {
    match err {
        Error::GoingAway { by: b } if *b == by => Ok(()),
        other => graceful(other, by).map_err(|_| {
            format!("expected accept() to end with GoingAway by {by:?}, got {other:?}")
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// braid serves; the Python client runs the scenarios and ends the session with GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braid_server_python_client() {
    let Some(python) = python().await else {
        eprintln!("SKIPPED: python3 not found");
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = Peer::spawn(python, &["client", &addr]);
    let outcome = timeout(LIMIT, async {
        let (tcp, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        tcp.set_nodelay(true).unwrap();
        let session = Session::server(tcp, config()).map_err(|e| e.to_string())?;
        let acceptor = spawn_acceptor(session.clone());
        session
            .ping()
            .await
            .map_err(|e| format!("first ping: {e}"))?;
        let (end, served) = acceptor.await.map_err(|e| e.to_string())?;
        going_away(&end, Side::Remote)?;
        check_served(&served)?;
        graceful(&wait_closed(&session).await, Side::Remote)?;
        check(session.stats().open_streams == 0, || {
            format!("streams left: {:?}", session.stats())
        })
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()));
    peer.finish("braid server, Python client", outcome).await;
}

/// The Python peer serves; braid connects, runs the scenarios and ends with `goaway()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braid_client_python_server() {
    let Some(python) = python().await else {
        eprintln!("SKIPPED: python3 not found");
        return;
    };
    let mut peer = Peer::spawn(python, &["server"]);
    let stdout = peer.child.stdout.take().unwrap();
    let outcome = timeout(LIMIT, async {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("peer stdout: {e}"))?;
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .ok_or_else(|| format!("peer printed {line:?}, not its port"))?;
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).unwrap();
        let session = Session::client(tcp, config()).map_err(|e| e.to_string())?;
        let acceptor = spawn_acceptor(session.clone());
        client_scenarios(&session).await?;
        session.goaway();
        let (end, served) = acceptor.await.map_err(|e| e.to_string())?;
        going_away(&end, Side::Local)?;
        // The only stream the peer opens is the callback's echo.
        check(
            served.len() == 1 && served[0].0 == "echo" && served[0].1.is_ok(),
            || format!("served {served:?}"),
        )?;
        graceful(&wait_closed(&session).await, Side::Local)?;
        session.close().await;
        check(session.stats().open_streams == 0, || {
            format!("streams left: {:?}", session.stats())
        })
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()));
    peer.finish("braid client, Python server", outcome).await;
}
