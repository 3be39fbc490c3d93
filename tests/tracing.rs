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
};

use braid::{frame::ErrorCode, Config, Error, Session};
use hostile::{quiet, server_and_raw, syn, sync};
use support::{duplex_pair, raw::RawPeer};
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
