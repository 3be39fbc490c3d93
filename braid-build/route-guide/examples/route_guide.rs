//! The route guide over loopback TCP: a braid server with the generated `RouteGuideServer`,
//! and the generated `RouteGuideClient` making each kind of call.
//!
//! ```text
//! cargo run -p braid-route-guide --example route_guide
//! ```

use std::time::Duration;

use braid::{rpc::Server, Config, Session};
use braid_prost::{Request, ServerExt};
use braid_route_guide::{
    point,
    routeguide::{
        route_guide_client::RouteGuideClient, route_guide_server::RouteGuideServer, BadPoint,
        Rectangle, RouteNote,
    },
    sample_features, RouteGuideService,
};
use futures::stream;
use prost::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        let session = Session::server(tcp, Config::default()).expect("config");
        let server = Server::new().add_service(RouteGuideServer::new(RouteGuideService::new(
            sample_features(),
        )));
        if let Err(e) = server.serve(session).await {
            eprintln!("server: {e}");
        }
    });

    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let client = RouteGuideClient::new(Session::client(tcp, Config::default())?);

    // Unary, with metadata and a deadline.
    let mut request = Request::new(point(47.008, 8.021)).with_timeout(Duration::from_secs(5));
    request.metadata_mut().append("x-request-id", "demo-1")?;
    let response = client.get_feature_full(request).await?;
    println!(
        "GetFeature: {:?} (request id {:?}, lookup {:?})",
        response.get_ref().name,
        response.metadata().get("x-request-id"),
        response.trailer().get("x-lookup"),
    );

    // A status with details.
    let status = client.get_feature(point(95.0, 0.0)).await.unwrap_err();
    let detail = BadPoint::decode(status.details())?;
    println!(
        "GetFeature off the globe: {status} (details: {})",
        detail.reason
    );

    // Server-streaming.
    let rect = Rectangle {
        lo: Some(point(47.0, 8.0)),
        hi: Some(point(47.03, 8.03)),
    };
    let mut features = client.list_features(rect).await?;
    let count = features
        .header()
        .await
        .and_then(|h| h.get("x-count"))
        .map(str::to_owned);
    println!("ListFeatures: {} features", count.as_deref().unwrap_or("?"));
    while let Some(feature) = features.message().await? {
        println!("  {}", feature.name);
    }

    // Client-streaming.
    let walk: Vec<_> = sample_features()
        .into_iter()
        .filter_map(|f| f.location)
        .collect();
    let summary = client.record_route(stream::iter(walk)).await?;
    println!(
        "RecordRoute: {} points, {} features, {} m",
        summary.point_count, summary.feature_count, summary.distance
    );

    // Bidirectional: the sender in its own task, replies printed as they come.
    let (mut tx, mut rx) = client.route_chat(()).await?;
    let sender = tokio::spawn(async move {
        let pier = point(47.015, 8.003);
        for text in ["meet here", "bring a boat", "or swim"] {
            let note = RouteNote {
                location: Some(pier),
                message: text.to_owned(),
            };
            if tx.send(note).await.is_err() {
                break; // the call ended: rx reports why
            }
        }
        let _ = tx.close_send();
    });
    while let Some(note) = rx.message().await? {
        println!("RouteChat: earlier note {:?}", note.message);
    }
    sender.await?;
    println!("RouteChat ended with {}", rx.status().expect("ended"));
    Ok(())
}
