//! The generated route guide end to end, over in-memory braid sessions with tokio's paused
//! clock: every call kind, metadata both ways, a status with details, a deadline, and
//! cancellation from either side; plus the drop-down to untyped calls.

use std::{future::pending, pin::Pin, sync::Arc, time::Duration};

use braid::rpc::{Code, MetadataMap, Server, Status};
use braid::{Config, Session};
use braid_prost::{encode, Request, Response, ServerExt, Streaming};
use braid_route_guide::{
    point,
    routeguide::{
        route_guide_client::RouteGuideClient,
        route_guide_server::{RouteGuide, RouteGuideServer},
        BadPoint, Feature, Point, Rectangle, RouteNote, RouteSummary,
    },
    sample_features, RouteGuideService,
};
use bytes::Bytes;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::{sync::mpsc, time::Instant};

/// Serves `server` on an in-memory session pair; returns a typed client.
fn start_server(server: Server) -> RouteGuideClient {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let client = Session::client(a, Config::default()).unwrap();
    let session = Session::server(b, Config::default()).unwrap();
    tokio::spawn(async move { server.serve(session).await });
    RouteGuideClient::new(client)
}

fn start<S: RouteGuide>(service: S) -> RouteGuideClient {
    start_server(Server::new().add_service(RouteGuideServer::new(service)))
}

fn guide() -> RouteGuideClient {
    start(RouteGuideService::new(sample_features()))
}

fn features() -> Vec<Feature> {
    sample_features()
}

fn at(i: usize) -> Point {
    features()[i].location.unwrap()
}

fn note(p: Point, text: &str) -> RouteNote {
    RouteNote {
        location: Some(p),
        message: text.to_owned(),
    }
}

#[tokio::test(start_paused = true)]
async fn unary_finds_a_feature_or_none() {
    let client = guide();
    let hit = client.get_feature(at(2)).await.unwrap();
    assert_eq!(hit.name, "Old Mill");
    assert_eq!(hit.location, Some(at(2)));
    let nowhere = point(10.0, 10.0);
    let miss = client.get_feature(nowhere).await.unwrap();
    assert_eq!(miss.name, "");
    assert_eq!(miss.location, Some(nowhere));
}

#[tokio::test(start_paused = true)]
async fn unary_metadata_both_ways() {
    let client = guide();
    let mut request = Request::new(at(0));
    request
        .metadata_mut()
        .append("x-request-id", "req-7")
        .unwrap();
    let response = client.get_feature_full(request).await.unwrap();
    // The handler read the client's header metadata and answered with its own.
    assert_eq!(response.metadata().get("x-request-id"), Some("req-7"));
    assert_eq!(response.trailer().get("x-lookup"), Some("hit"));
    assert_eq!(response.get_ref().name, "Boathouse");

    let response = client.get_feature_full(point(0.0, 0.0)).await.unwrap();
    assert_eq!(response.metadata().get("x-request-id"), None);
    assert_eq!(response.trailer().get("x-lookup"), Some("miss"));
}

#[tokio::test(start_paused = true)]
async fn status_with_details() {
    let client = guide();
    let off = Point {
        latitude: 950_000_000,
        longitude: 0,
    };
    let status = client.get_feature(off).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "point is off the globe");
    let detail = BadPoint::decode(status.details()).unwrap();
    assert_eq!(detail.point, Some(off));
    assert!(detail.reason.contains("latitude"), "{}", detail.reason);

    // The same status from the client-streaming method, mid-stream.
    let walk = stream::iter([at(0), off, at(1)]);
    let status = client.record_route(walk).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(BadPoint::decode(status.details()).unwrap().point, Some(off));
}

#[tokio::test(start_paused = true)]
async fn server_streaming_lists_features() {
    let client = guide();
    // Around the lake's north-east: North Pier, Old Mill, Lookout.
    let rect = Rectangle {
        lo: Some(point(47.005, 8.0025)),
        hi: Some(point(47.03, 8.03)),
    };
    let mut features = client.list_features(rect).await.unwrap();
    assert_eq!(features.header().await.unwrap().get("x-count"), Some("3"));
    let mut names = Vec::new();
    while let Some(f) = features.message().await.unwrap() {
        names.push(f.name);
    }
    assert_eq!(names, ["North Pier", "Old Mill", "Lookout"]);
    assert!(features.status().unwrap().is_ok());
    assert!(features.trailer().unwrap().is_empty());

    // The same as a futures Stream; an empty rectangle is an empty stream.
    let all = Rectangle {
        lo: Some(point(-90.0, -180.0)),
        hi: Some(point(90.0, 180.0)),
    };
    let listed: Vec<Feature> = client
        .list_features(all)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, sample_features());
    let none: Vec<Feature> = client
        .list_features(Rectangle::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test(start_paused = true)]
async fn client_streaming_records_a_walk() {
    let client = guide();
    // Three features and one unknown point, ten (virtual) seconds apart.
    let points = vec![at(0), at(1), point(47.02, 8.01), at(3)];
    let expected_distance: f64 = points
        .windows(2)
        .map(|w| braid_route_guide::distance(&w[0], &w[1]).round())
        .sum();
    let walk = stream::iter(points).then(|p| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        p
    });
    let summary = client.record_route(walk).await.unwrap();
    assert_eq!(
        summary,
        RouteSummary {
            point_count: 4,
            feature_count: 3,
            distance: expected_distance as i32,
            elapsed_time: 30,
        }
    );
    assert!(summary.distance > 2_000, "{summary:?}");

    // No points: an empty summary, OK.
    let empty = client.record_route(stream::empty()).await.unwrap();
    assert_eq!(empty, RouteSummary::default());
}

#[tokio::test(start_paused = true)]
async fn bidirectional_chat_with_typed_halves() {
    let client = guide();
    let (here, there) = (at(0), at(4));
    let (mut tx, mut rx) = client.route_chat(()).await.unwrap();
    tx.send(note(here, "first")).await.unwrap();
    tx.send(note(there, "elsewhere")).await.unwrap();
    tx.send(note(here, "second")).await.unwrap();
    // The first note at `here` is the reply to the second one there.
    assert_eq!(rx.message().await.unwrap().unwrap(), note(here, "first"));
    tx.send(note(here, "third")).await.unwrap();
    assert_eq!(rx.message().await.unwrap().unwrap(), note(here, "first"));
    assert_eq!(rx.message().await.unwrap().unwrap(), note(here, "second"));
    tx.close_send().unwrap();
    assert_eq!(rx.message().await.unwrap(), None);
    assert!(rx.status().unwrap().is_ok());

    // A second chat sees the notes of the first; sender and receiver in two tasks.
    let (mut tx, rx) = client.route_chat(()).await.unwrap();
    let sender = tokio::spawn(async move {
        tx.send_all(stream::iter([note(there, "again"), note(here, "fourth")]))
            .await
            .unwrap();
        tx.close_send().unwrap();
    });
    let replies: Vec<RouteNote> = rx.try_collect().await.unwrap();
    sender.await.unwrap();
    let texts: Vec<&str> = replies.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(texts, ["elsewhere", "first", "second", "third"]);
}

/// What a [`Probe`] handler observed.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The request's timeout and whether it had a deadline.
    Deadline(Option<Duration>, bool),
    /// How the stream of requests ended.
    RequestsEnded(Code),
    /// The response stream was dropped (the call is over for the server).
    ResponsesDropped,
    /// A header metadata value.
    Metadata(Option<String>),
}

/// A route guide that waits, cancels and reports what it sees.
struct Probe {
    seen: mpsc::UnboundedSender<Seen>,
}

/// Sends [`Seen::ResponsesDropped`] when dropped.
struct DropGuard(mpsc::UnboundedSender<Seen>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Seen::ResponsesDropped);
    }
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl RouteGuide for Probe {
    /// Latitude 1: never answers (for deadlines). Latitude 2: the server cancels.
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        let _ = self.seen.send(Seen::Deadline(
            request.timeout(),
            request.deadline().is_some(),
        ));
        match request.get_ref().latitude {
            1 => pending().await,
            2 => Err(Status::cancelled("the server gave up")),
            _ => Ok(Response::new(Feature::default())),
        }
    }

    type ListFeaturesStream = Boxed<Feature>;

    /// Features forever, until the call ends.
    async fn list_features(
        &self,
        _: Request<Rectangle>,
    ) -> Result<Response<Boxed<Feature>>, Status> {
        let guard = DropGuard(self.seen.clone());
        let endless = stream::repeat_with(move || {
            let _ = &guard;
            Ok(Feature {
                name: "again".to_owned(),
                location: None,
            })
        });
        Ok(Response::new(Box::pin(endless)))
    }

    /// Reports the client's `x-mode` header; with `x-mode: cancel` cancels after 3 points,
    /// else reads to the end and reports how the requests ended.
    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        let mode = request.metadata().get("x-mode").map(str::to_owned);
        let _ = self.seen.send(Seen::Metadata(mode.clone()));
        let mut points = request.into_inner();
        let mut n = 0;
        loop {
            match points.message().await {
                Ok(Some(_)) => {
                    n += 1;
                    if n == 3 && mode.as_deref() == Some("cancel") {
                        return Err(Status::cancelled("the server cancelled the walk"));
                    }
                }
                Ok(None) => break,
                Err(status) => {
                    let _ = self.seen.send(Seen::RequestsEnded(status.code()));
                    return Err(status);
                }
            }
        }
        let _ = self.seen.send(Seen::RequestsEnded(Code::Ok));
        Ok(Response::new(RouteSummary {
            point_count: n,
            ..Default::default()
        }))
    }

    type RouteChatStream = Boxed<RouteNote>;

    /// Echoes every note; reports how the requests ended.
    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<Boxed<RouteNote>>, Status> {
        let seen = self.seen.clone();
        let echoes = request.into_inner().inspect(move |r| match r {
            Ok(_) => {}
            Err(status) => {
                let _ = seen.send(Seen::RequestsEnded(status.code()));
            }
        });
        Ok(Response::new(Box::pin(echoes)))
    }
}

fn probe() -> (RouteGuideClient, mpsc::UnboundedReceiver<Seen>) {
    let (seen, events) = mpsc::unbounded_channel();
    (start(Probe { seen }), events)
}

#[tokio::test(start_paused = true)]
async fn deadline_ends_the_call_on_both_sides() {
    let (client, mut seen) = probe();
    // Unary: the handler never answers; the client gives up at its timeout, exactly.
    let start = Instant::now();
    let request = Request::new(Point {
        latitude: 1,
        longitude: 0,
    })
    .with_timeout(Duration::from_millis(300));
    let status = client.get_feature(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    // The handler saw the deadline (the timeout left when it started, within the 300 ms).
    match seen.recv().await.unwrap() {
        Seen::Deadline(Some(left), true) => assert!(left <= Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }

    // Client-streaming: the client never finishes its stream; the server's receive fails
    // with DeadlineExceeded too.
    let start = Instant::now();
    let request = Request::new(stream::pending::<Point>()).with_timeout(Duration::from_secs(2));
    let status = client.record_route(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(seen.recv().await.unwrap(), Seen::Metadata(None));
    assert_eq!(
        seen.recv().await.unwrap(),
        Seen::RequestsEnded(Code::DeadlineExceeded)
    );
}

#[tokio::test(start_paused = true)]
async fn the_client_cancels() {
    let (client, mut seen) = probe();
    // Server-streaming: drop the stream after two messages; the server's endless response
    // stream is dropped (its send failed: the call is over).
    let mut features = client.list_features(Rectangle::default()).await.unwrap();
    for _ in 0..2 {
        assert_eq!(features.message().await.unwrap().unwrap().name, "again");
    }
    drop(features);
    assert_eq!(seen.recv().await.unwrap(), Seen::ResponsesDropped);

    // Bidirectional: one echo, then both halves dropped without close_send; the server's
    // request stream ends with Cancelled.
    let (mut tx, mut rx) = client.route_chat(()).await.unwrap();
    tx.send(note(at(0), "hello")).await.unwrap();
    assert_eq!(rx.message().await.unwrap().unwrap().message, "hello");
    drop((tx, rx));
    assert_eq!(
        seen.recv().await.unwrap(),
        Seen::RequestsEnded(Code::Cancelled)
    );
}

#[tokio::test(start_paused = true)]
async fn the_server_cancels() {
    let (client, mut seen) = probe();
    // Unary: the handler returns Cancelled.
    let status = client
        .get_feature(Point {
            latitude: 2,
            longitude: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Cancelled);
    assert_eq!(status.message(), "the server gave up");
    let _ = seen.recv().await;

    // Client-streaming: the client streams points forever; the server cancels after three
    // and the client's call ends with that status instead of sending on.
    let mut request = Request::new(stream::repeat(at(0)));
    request.metadata_mut().append("x-mode", "cancel").unwrap();
    let status = client.record_route(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled);
    assert_eq!(status.message(), "the server cancelled the walk");
    assert_eq!(
        seen.recv().await.unwrap(),
        Seen::Metadata(Some("cancel".to_owned()))
    );
}

#[tokio::test(start_paused = true)]
async fn client_streaming_carries_metadata_and_full_response() {
    let (client, mut seen) = probe();
    let request = Request::from_parts(
        MetadataMap::new().with("x-mode", "count").unwrap(),
        stream::iter(vec![at(0); 5]),
    );
    let response = client.record_route_full(request).await.unwrap();
    assert_eq!(response.get_ref().point_count, 5);
    assert!(response.metadata().is_empty() && response.trailer().is_empty());
    assert_eq!(
        seen.recv().await.unwrap(),
        Seen::Metadata(Some("count".to_owned()))
    );
    assert_eq!(seen.recv().await.unwrap(), Seen::RequestsEnded(Code::Ok));
}

#[tokio::test(start_paused = true)]
async fn typed_and_untyped_calls_mix() {
    // A hand-written untyped route next to the generated ones on one server.
    let server = Server::new()
        .add_service(RouteGuideServer::from_arc(Arc::new(
            RouteGuideService::new(sample_features()),
        )))
        .route(
            "/raw.Echo/Echo",
            |mut stream: braid::rpc::ServerStream| async move {
                while let Some(msg) = stream.recv().await? {
                    stream.send(msg).await?;
                }
                Ok(())
            },
        );
    let client = start_server(server);
    assert_eq!(client.get_feature(at(3)).await.unwrap().name, "Lookout");

    // The generated method's path, called untyped with prost bytes.
    let untyped = client.client();
    let mut call = untyped
        .call("/routeguide.RouteGuide/GetFeature", MetadataMap::new())
        .await
        .unwrap();
    call.send(encode(&at(1))).await.unwrap();
    call.close_send().unwrap();
    let reply = call.recv().await.unwrap().unwrap();
    assert_eq!(Feature::decode(reply).unwrap().name, "North Pier");
    assert_eq!(call.recv().await.unwrap(), None);

    // Bytes that are not a Point: the server's codec fails the call with Internal.
    let mut call = untyped
        .call("/routeguide.RouteGuide/GetFeature", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from_static(b"\xff\xff\xff"))
        .await
        .unwrap();
    call.close_send().unwrap();
    let status = call.recv().await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(status.message().contains("failed to decode"), "{status}");

    // A unary method given two requests: Internal, the handler never runs.
    let mut call = untyped
        .call("/routeguide.RouteGuide/GetFeature", MetadataMap::new())
        .await
        .unwrap();
    call.send(encode(&at(1))).await.unwrap();
    call.send(encode(&at(2))).await.unwrap();
    call.close_send().unwrap();
    assert_eq!(call.recv().await.unwrap_err().code(), Code::Internal);

    // The untyped route still works beside the typed ones.
    let mut call = untyped
        .call("/raw.Echo/Echo", MetadataMap::new())
        .await
        .unwrap();
    call.send(Bytes::from_static(b"raw")).await.unwrap();
    call.close_send().unwrap();
    assert_eq!(call.recv().await.unwrap().as_deref(), Some(&b"raw"[..]));
}

#[tokio::test(start_paused = true)]
async fn a_server_without_the_service_is_unimplemented() {
    let client = start_server(Server::new());
    let status = client.get_feature(at(0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let mut features = client.list_features(Rectangle::default()).await.unwrap();
    assert_eq!(
        features.message().await.unwrap_err().code(),
        Code::Unimplemented
    );
}
