//! The `tracing` feature (issue #24 item 3): a session's events carry its span
//! (`braid_session{role, id, peer}`), at the levels the crate docs list. A small `Layer`
//! collects every event with the fields of the spans around it; each test installs it as the
//! thread's default subscriber, and the current-thread runtime runs the drivers on that thread.
#![cfg(feature = "tracing")]

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use std::{
    fmt::Debug,
    sync::{Arc, Mutex},
    time::Duration,
};

use braid::{
    frame::{ErrorCode, Flags, Frame, Preface},
    Config, Error, Session,
};
use hostile::{assert_goaway, client_and_raw, quiet, server_and_raw, syn, sync, until_goaway};
use support::{
    duplex_pair, guard,
    raw::{default_preface, RawPeer},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{
    field::{Field, Visit},
    span, Event, Level, Subscriber,
};
use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan, Layer};

/// One event as the subscriber saw it.
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    target: String,
    message: String,
    fields: Vec<(String, String)>,
    /// The spans around it, outermost first: name and fields.
    spans: Vec<(String, Vec<(String, String)>)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field of the `braid_session` span around the event.
    fn session_field(&self, name: &str) -> Option<&str> {
        let (_, fields) = self.spans.iter().find(|(n, _)| n == "braid_session")?;
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push((field.name().into(), format!("{value:?}")));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    fn events(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut ext = span.extensions_mut();
        values.record(ext.get_mut::<Fields>().unwrap());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields
            .0
            .iter()
            .find(|(n, _)| n == "message")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let spans = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .map(|s| {
                        let fields = s.extensions().get::<Fields>().unwrap().0.clone();
                        (s.name().to_string(), fields)
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            message,
            fields: fields.0,
            spans,
        });
    }
}

/// Installs a capturing subscriber for this thread until the guard drops.
fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    (capture, guard)
}

fn braid_events(capture: &Capture) -> Vec<Captured> {
    capture
        .events()
        .into_iter()
        .filter(|e| e.target == "braid")
        .collect()
}

/// A session ended by the peer's protocol violation logs one warn event with the spec's code,
/// inside its span (role, id, and the peer label the application recorded), after the debug
/// events of its start and of the GOAWAY it sent.
#[tokio::test]
async fn protocol_violation_warns_with_code_inside_the_session_span() {
    let (capture, _guard) = capture();
    let (a, b) = tokio::io::duplex(1 << 20);
    let server = Session::server(a, Config::default()).unwrap();
    server.span().record("peer", "test-peer");
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    // Frame type 0xF does not exist (spec §10 V5): PROTOCOL_ERROR.
    peer.send_raw(&[0x0F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .await;
    let goaway = peer.expect_goaway().await;
    assert!(
        matches!(goaway, Some(braid::frame::Frame::GoAway { code, .. }) if code == ErrorCode::PROTOCOL_ERROR),
        "{goaway:?}"
    );
    drop(peer); // EOF ends the server's drain
    let why = server.closed().await;
    assert!(matches!(why, Error::Protocol { .. }), "{why:?}");

    let events = braid_events(&capture);
    let warns: Vec<_> = events.iter().filter(|e| e.level == Level::WARN).collect();
    assert_eq!(warns.len(), 1, "one warn event: {events:#?}");
    let warn = warns[0];
    assert!(
        warn.message.contains("protocol violation by the peer"),
        "{warn:?}"
    );
    assert_eq!(warn.field("code"), Some("PROTOCOL_ERROR"), "{warn:?}");
    assert!(
        warn.field("reason").is_some_and(|r| !r.is_empty()),
        "{warn:?}"
    );
    assert_eq!(warn.session_field("role"), Some("server"), "{warn:?}");
    assert_eq!(warn.session_field("peer"), Some("test-peer"), "{warn:?}");
    let id = warn.session_field("id").expect("session id");
    assert!(id.parse::<u64>().is_ok_and(|id| id >= 1), "{warn:?}");

    let started = events
        .iter()
        .find(|e| e.message == "session started")
        .expect("start event");
    assert_eq!(started.level, Level::DEBUG);
    assert_eq!(started.session_field("id"), Some(id));
    let sent = events
        .iter()
        .find(|e| e.message == "GOAWAY sent")
        .expect("GOAWAY sent event");
    assert_eq!(sent.level, Level::DEBUG);
    assert_eq!(sent.field("code"), Some("PROTOCOL_ERROR"));
    assert_eq!(sent.session_field("id"), Some(id));
}

/// A graceful GOAWAY: the client logs it sent, the server received, both end at debug level
/// with their own role and distinct ids; nothing above debug.
#[tokio::test]
async fn graceful_goaway_logs_debug_events_on_both_sides() {
    let (capture, _guard) = capture();
    let (client, server) = duplex_pair(1 << 16, Config::default(), Config::default());
    client.ping().await.unwrap(); // both handshakes done
    client.goaway();
    let (c, s) = tokio::join!(client.closed(), server.closed());
    assert!(matches!(c, Error::SessionClosed { .. }), "{c:?}");
    assert!(matches!(s, Error::SessionClosed { .. }), "{s:?}");

    let events = braid_events(&capture);
    assert!(
        events.iter().all(|e| e.level >= Level::DEBUG),
        "graceful close logged above debug: {events:#?}"
    );
    let find = |message: &str, role: &str| {
        events
            .iter()
            .find(|e| e.message.starts_with(message) && e.session_field("role") == Some(role))
            .unwrap_or_else(|| panic!("no {message:?} event for the {role}: {events:#?}"))
    };
    let sent = find("GOAWAY sent", "client");
    assert_eq!(sent.field("code"), Some("NO_ERROR"));
    let received = find("GOAWAY received", "server");
    assert_eq!(received.field("code"), Some("NO_ERROR"));
    assert!(received.field("last_stream").is_some());
    let client_end = find("session ended gracefully", "client");
    assert_eq!(client_end.field("by"), Some("local"));
    let server_end = find("session ended gracefully", "server");
    assert_eq!(server_end.field("by"), Some("peer"));
    assert_ne!(
        client_end.session_field("id"),
        server_end.session_field("id"),
        "each session has its own id"
    );
}

/// Streams refused for a full accept backlog (spec §11 L6): one info event the first time the
/// limit is reached, debug events naming the limit and counting every refusal.
#[tokio::test]
async fn backlog_refusals_log_the_limit_once() {
    let (capture, _guard) = capture();
    let config = quiet(Config::default()).with_accept_backlog(2);
    let (_server, mut peer) = server_and_raw(config, 1 << 16).await;
    for id in [1, 3, 5, 7, 9] {
        peer.send(syn(id, b"x")).await;
    }
    sync(&mut peer, 77).await;
    for id in [11, 13] {
        peer.send(syn(id, b"x")).await;
    }
    sync(&mut peer, 78).await;

    let events = braid_events(&capture);
    let reached: Vec<_> = events
        .iter()
        .filter(|e| e.message.starts_with("limit reached"))
        .collect();
    assert_eq!(reached.len(), 1, "{events:#?}");
    assert_eq!(reached[0].level, Level::INFO);
    assert_eq!(reached[0].field("limit"), Some("L6"));
    let refused: u64 = events
        .iter()
        .filter(|e| e.message.starts_with("refused the peer's streams"))
        .inspect(|e| {
            assert_eq!(e.level, Level::DEBUG);
            assert_eq!(e.field("limit"), Some("L6"));
            assert_eq!(e.field("code"), Some("BACKLOG_FULL"));
        })
        .map(|e| e.field("streams").unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(refused, 5, "{events:#?}");
}

/// The events with `message`, asserting each is at `level` (and at no other).
fn with_message<'a>(events: &'a [Captured], message: &str, level: Level) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| e.message == message)
        .inspect(|e| assert_eq!(e.level, level, "{e:?}"))
        .collect()
}

/// Reads until the session's GOAWAY, asserts its code is ENHANCE_YOUR_CALM, closes the pipe and
/// waits for the session to end; returns the session's error reason.
async fn enhance_your_calm(session: &Session, mut peer: RawPeer) -> String {
    let (goaway, _) = guard("GOAWAY", until_goaway(&mut peer)).await;
    assert_goaway(&goaway, ErrorCode::ENHANCE_YOUR_CALM);
    drop(peer); // EOF ends the session's drain
    match guard("session end", session.closed()).await {
        Error::Protocol { code, reason } => {
            assert_eq!(code, ErrorCode::ENHANCE_YOUR_CALM, "{reason}");
            reason.to_string()
        }
        other => panic!("expected Error::Protocol(ENHANCE_YOUR_CALM), got {other:?}"),
    }
}

/// The one warn event of a session the peer's abuse ended (spec §11): ENHANCE_YOUR_CALM, the
/// session's reason, and the limit label `limit`.
fn assert_calm_warning(events: &[Captured], reason: &str, limit: &str, role: &str) {
    let warns: Vec<_> = events.iter().filter(|e| e.level <= Level::WARN).collect();
    assert_eq!(warns.len(), 1, "one warn event, nothing above: {events:#?}");
    let warn = warns[0];
    assert_eq!(warn.level, Level::WARN, "{warn:?}");
    assert_eq!(
        warn.message, "session ended: protocol violation by the peer",
        "{warn:?}"
    );
    assert_eq!(warn.field("code"), Some("ENHANCE_YOUR_CALM"), "{warn:?}");
    assert_eq!(warn.field("limit"), Some(limit), "{warn:?}");
    assert_eq!(warn.field("reason"), Some(reason), "{warn:?}");
    assert_eq!(warn.session_field("role"), Some(role), "{warn:?}");
    let sent = with_message(events, "GOAWAY sent", Level::DEBUG);
    assert_eq!(sent.len(), 1, "{events:#?}");
    assert_eq!(sent[0].field("code"), Some("ENHANCE_YOUR_CALM"));
}

/// Spec §11 L16: refusals (BACKLOG_FULL) past `max_local_resets` end the session; its warn
/// event names L16 and ENHANCE_YOUR_CALM, after the L6 debug events counting the refusals.
#[tokio::test]
async fn too_many_local_resets_warns_with_limit_l16() {
    let (capture, _guard) = capture();
    let config = quiet(Config::default())
        .with_accept_backlog(1)
        .with_max_local_resets(3);
    let (server, mut peer) = server_and_raw(config, 1 << 16).await;
    // Stream 1 fills the backlog; 3, 5 and 7 are refused: exactly the limit.
    for id in [1, 3, 5, 7] {
        peer.send(syn(id, b"x")).await;
    }
    sync(&mut peer, 1).await;
    assert_eq!(server.stats().local_resets, 3);
    assert!(
        braid_events(&capture).iter().all(|e| e.level > Level::WARN),
        "nothing above debug/info before the limit: {:#?}",
        braid_events(&capture)
    );
    // The fourth refusal is one too many.
    peer.send(syn(9, b"x")).await;
    let reason = enhance_your_calm(&server, peer).await;

    let events = braid_events(&capture);
    assert_calm_warning(&events, &reason, "L16", "server");
    let refused: Vec<_> = with_message(
        &events,
        "refused the peer's streams: accept backlog full",
        Level::DEBUG,
    );
    assert!(
        refused
            .iter()
            .all(|e| e.field("limit") == Some("L6") && e.field("code") == Some("BACKLOG_FULL")),
        "{refused:#?}"
    );
    // The SYN that tripped L16 is counted as refused too (the session ends instead of the
    // RESET); it is the last stream.
    let streams: u64 = refused
        .iter()
        .map(|e| e.field("streams").unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(streams, 4, "{refused:#?}");
    assert_eq!(refused.last().unwrap().field("last_stream"), Some("9"));
}

/// Spec §11 L16, L12: open timeouts are locally generated resets too: past
/// `max_local_resets` (1) the second timeout ends the session (paused clock); the warn event
/// names L16, the debug event of the timeouts L12.
#[tokio::test(start_paused = true)]
async fn open_timeouts_past_max_local_resets_warn_with_limit_l16() {
    const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
    let (capture, _guard) = capture();
    let config = quiet(Config::default())
        .with_open_timeout(OPEN_TIMEOUT)
        .with_max_local_resets(1);
    let (client, mut peer) = client_and_raw(config, default_preface(), 1 << 16).await;
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut s = client.open().await.unwrap();
        s.write_all(b"hello").await.unwrap();
        streams.push(s);
    }
    let mut syns = 0;
    while syns < 2 {
        match guard("SYN", peer.recv()).await.expect("session ended") {
            Frame::Data { flags, .. } if flags.contains(Flags::SYN) => syns += 1,
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::time::advance(OPEN_TIMEOUT).await;
    let reason = enhance_your_calm(&client, peer).await;

    let events = braid_events(&capture);
    assert_calm_warning(&events, &reason, "L16", "client");
    let timeouts = with_message(&events, OPEN_TIMEOUT_MSG, Level::DEBUG);
    assert_eq!(timeouts.len(), 1, "{events:#?}");
    assert_eq!(timeouts[0].field("limit"), Some("L12"));
    assert_eq!(timeouts[0].field("streams"), Some("2"));
}

/// Spec §11 L17 (rapid reset): SYN+RESET pairs past `max_unaccepted_resets` end the session;
/// its warn event names L17 and ENHANCE_YOUR_CALM.
#[tokio::test]
async fn rapid_reset_warns_with_limit_l17() {
    let (capture, _guard) = capture();
    let config = quiet(Config::default()).with_max_unaccepted_resets(3);
    let (server, mut peer) = server_and_raw(config, 1 << 16).await;
    let pair = |id| {
        [
            syn(id, b"request"),
            Frame::Reset {
                stream: id,
                code: ErrorCode::CANCEL,
            },
        ]
    };
    for id in [1, 3, 5] {
        peer.try_send_all(&pair(id)).await.unwrap();
    }
    sync(&mut peer, 1).await;
    assert_eq!(server.stats().unaccepted_resets, 3);
    peer.try_send_all(&pair(7)).await.unwrap();
    let reason = enhance_your_calm(&server, peer).await;

    let events = braid_events(&capture);
    assert_calm_warning(&events, &reason, "L17", "server");
    assert!(
        events.iter().all(|e| e.field("limit") != Some("L16")),
        "the peer's resets are not local resets: {events:#?}"
    );
}

/// Spec §11 L19: empty frames (zero-increment WINDOW_UPDATEs) past `max_empty_frames` end the
/// session; its warn event names L19 and ENHANCE_YOUR_CALM.
#[tokio::test]
async fn empty_frames_warn_with_limit_l19() {
    let (capture, _guard) = capture();
    let config = quiet(Config::default()).with_max_empty_frames(3);
    let (server, mut peer) = server_and_raw(config, 1 << 16).await;
    let empty = || Frame::WindowUpdate {
        stream: 0,
        increment: 0,
    };
    peer.try_send_all(&[empty(), empty(), empty()])
        .await
        .unwrap();
    sync(&mut peer, 1).await;
    assert_eq!(server.stats().empty_frames, 3);
    peer.send(empty()).await;
    let reason = enhance_your_calm(&server, peer).await;

    assert_calm_warning(&braid_events(&capture), &reason, "L19", "server");
}

/// Moves the paused clock to 1 ms before `deadline` and, once the session's tasks have run,
/// checks that no `message` event was logged early; then moves the last millisecond.
async fn advance_through_deadline(capture: &Capture, deadline: Duration, message: &str) {
    tokio::time::advance(deadline - Duration::from_millis(1)).await;
    let early = hostile::settle("events before the deadline", || braid_events(capture).len()).await;
    let events = braid_events(capture);
    assert!(
        with_message(&events, message, Level::DEBUG).is_empty(),
        "logged before the deadline ({early} events): {events:#?}"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
}

/// A timeout defence logged exactly one debug event for its turn, naming `limit` and
/// TIMEOUT, the (stream count, last stream id) and the session's role, and nothing above
/// debug: it is a defence, not a limit reached.
fn assert_timeout_event(
    events: &[Captured],
    message: &str,
    limit: &str,
    (streams, last): (&str, &str),
    role: &str,
) {
    let timeouts = with_message(events, message, Level::DEBUG);
    assert_eq!(timeouts.len(), 1, "one event for the turn: {events:#?}");
    let e = timeouts[0];
    assert_eq!(e.field("limit"), Some(limit), "{e:?}");
    assert_eq!(e.field("code"), Some("TIMEOUT"), "{e:?}");
    assert_eq!(e.field("streams"), Some(streams), "{e:?}");
    assert_eq!(e.field("last_stream"), Some(last), "{e:?}");
    assert_eq!(e.session_field("role"), Some(role), "{e:?}");
    assert!(
        events.iter().all(|e| e.level > Level::INFO),
        "a defence, not a limit reached: debug only: {events:#?}"
    );
}

const OPEN_TIMEOUT_MSG: &str =
    "reset our streams: the peer did not acknowledge them within open_timeout";
const LINGER_TIMEOUT_MSG: &str =
    "reset dropped streams: the peer did not finish them within linger_timeout";

/// Spec §11 L12: two opens the peer never acknowledges time out together (paused clock): one
/// debug event names L12 and TIMEOUT, counts both streams and the last id; nothing before
/// the timeout, nothing above debug, the session lives on.
#[tokio::test(start_paused = true)]
async fn open_timeouts_log_limit_l12() {
    const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
    let (capture, _guard) = capture();
    let config = quiet(Config::default()).with_open_timeout(OPEN_TIMEOUT);
    let preface = Preface {
        accept_backlog: 4,
        ..default_preface()
    };
    let (client, mut peer) = client_and_raw(config, preface, 1 << 16).await;
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut s = client.open().await.unwrap();
        s.write_all(b"hello").await.unwrap();
        streams.push(s);
    }
    let mut syns = Vec::new();
    while syns.len() < 2 {
        match guard("SYN", peer.recv()).await.expect("session ended") {
            Frame::Data { stream, flags, .. } if flags.contains(Flags::SYN) => syns.push(stream),
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(syns, [1, 3]);
    advance_through_deadline(&capture, OPEN_TIMEOUT, OPEN_TIMEOUT_MSG).await;
    let mut resets = Vec::new();
    while resets.len() < 2 {
        match guard("RESET(TIMEOUT)", peer.recv())
            .await
            .expect("session ended")
        {
            Frame::Reset { stream, code } => {
                assert_eq!(code, ErrorCode::TIMEOUT);
                resets.push(stream);
            }
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(resets, [1, 3]);

    let events = braid_events(&capture);
    assert_timeout_event(&events, OPEN_TIMEOUT_MSG, "L12", ("2", "3"), "client");
    assert!(client.closed_reason().is_none());
    for s in &mut streams {
        assert!(s.read(&mut [0u8; 1]).await.is_err());
    }
}

/// Spec §11 L14: a stream the application finished and dropped, the peer never finishes: after
/// `linger_timeout` (paused clock) one debug event names L14 and TIMEOUT, with the stream
/// count and id; nothing before the timeout, nothing above debug.
#[tokio::test(start_paused = true)]
async fn linger_timeout_logs_limit_l14() {
    const LINGER: Duration = Duration::from_secs(10);
    let (capture, _guard) = capture();
    let config = quiet(Config::default()).with_linger_timeout(LINGER);
    let (server, mut peer) = server_and_raw(config, 1 << 16).await;
    peer.send(syn(1, b"hi")).await;
    let mut s = guard("accept", server.accept()).await.unwrap();
    let mut got = [0u8; 2];
    s.read_exact(&mut got).await.unwrap();
    s.write_all(b"bye").await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    assert_eq!(server.stats().tracked_streams, 1);
    advance_through_deadline(&capture, LINGER, LINGER_TIMEOUT_MSG).await;
    loop {
        match guard("RESET(TIMEOUT)", peer.recv())
            .await
            .expect("session ended")
        {
            Frame::Reset { stream: 1, code } => {
                assert_eq!(code, ErrorCode::TIMEOUT);
                break;
            }
            Frame::Data { stream: 1, .. }
            | Frame::StopSending { stream: 1, .. }
            | Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    let events = braid_events(&capture);
    assert_timeout_event(&events, LINGER_TIMEOUT_MSG, "L14", ("1", "1"), "server");
    assert_eq!(server.stats().tracked_streams, 0);
    assert!(server.closed_reason().is_none());
}
