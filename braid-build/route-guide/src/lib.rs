//! The canonical braid-build example: a route guide with all four call kinds, generated from
//! `proto/route_guide.proto` by `build.rs` (`braid_build::compile_protos`), and
//! [`RouteGuideService`], its implementation. `examples/route_guide.rs` runs it over TCP;
//! `tests/route_guide.rs` tests every call kind, cancellation, deadlines, statuses with
//! details and metadata.

use std::{collections::HashMap, pin::Pin, sync::Arc};

use braid::rpc::{MetadataMap, Status};
use braid_prost::{Request, Response, Streaming};
use futures::{stream, Stream, TryStreamExt};
use parking_lot::Mutex;
use prost::Message;
use tokio::time::Instant;

/// The generated code: messages, `route_guide_client` and `route_guide_server`.
#[allow(missing_docs)] // the messages' fields have no comments in the .proto
pub mod routeguide {
    braid_prost::include_proto!("routeguide");
}

use routeguide::{
    route_guide_server::RouteGuide, BadPoint, Feature, Point, Rectangle, RouteNote, RouteSummary,
};

/// A point from degrees.
pub fn point(lat: f64, lon: f64) -> Point {
    Point {
        latitude: (lat * 1e7).round() as i32,
        longitude: (lon * 1e7).round() as i32,
    }
}

/// A made-up map: a few named places around a lake.
pub fn sample_features() -> Vec<Feature> {
    [
        ("Boathouse", 47.0010, 8.0020),
        ("North Pier", 47.0150, 8.0030),
        ("Old Mill", 47.0080, 8.0210),
        ("Lookout", 47.0220, 8.0190),
        ("Ferry Landing", 46.9950, 7.9900),
    ]
    .into_iter()
    .map(|(name, lat, lon)| Feature {
        name: name.to_owned(),
        location: Some(point(lat, lon)),
    })
    .collect()
}

/// Whether `p` is on the globe.
fn valid(p: &Point) -> bool {
    p.latitude.abs() <= 900_000_000 && p.longitude.abs() <= 1_800_000_000
}

/// The status for a point off the globe: `InvalidArgument` with a [`BadPoint`] as details.
pub fn bad_point(p: &Point) -> Status {
    let detail = BadPoint {
        point: Some(*p),
        reason: "latitude must be within ±90°, longitude within ±180°".to_owned(),
    };
    Status::invalid_argument("point is off the globe").with_details(detail.encode_to_vec())
}

/// Metres between two points (haversine).
pub fn distance(a: &Point, b: &Point) -> f64 {
    const R: f64 = 6_371_000.0;
    let rad = |v: i32| (v as f64 / 1e7).to_radians();
    let (lat1, lat2) = (rad(a.latitude), rad(b.latitude));
    let dlat = lat2 - lat1;
    let dlon = rad(b.longitude) - rad(a.longitude);
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().atan2((1.0 - h).sqrt())
}

fn inside(r: &Rectangle, p: &Point) -> bool {
    let (lo, hi) = (r.lo.unwrap_or_default(), r.hi.unwrap_or_default());
    let (lat_lo, lat_hi) = (lo.latitude.min(hi.latitude), lo.latitude.max(hi.latitude));
    let (lon_lo, lon_hi) = (
        lo.longitude.min(hi.longitude),
        lo.longitude.max(hi.longitude),
    );
    (lat_lo..=lat_hi).contains(&p.latitude) && (lon_lo..=lon_hi).contains(&p.longitude)
}

/// The notes left so far, by place (latitude, longitude).
type Notes = HashMap<(i32, i32), Vec<RouteNote>>;

/// The route guide: a fixed map and the notes left so far.
#[derive(Debug, Clone, Default)]
pub struct RouteGuideService {
    features: Arc<Vec<Feature>>,
    notes: Arc<Mutex<Notes>>,
}

impl RouteGuideService {
    /// A guide over `features`.
    pub fn new(features: Vec<Feature>) -> RouteGuideService {
        RouteGuideService {
            features: Arc::new(features),
            notes: Arc::default(),
        }
    }

    fn feature_at(&self, p: &Point) -> Option<&Feature> {
        self.features
            .iter()
            .find(|f| f.location.as_ref() == Some(p))
    }
}

/// The response stream of [`RouteGuideService`]'s streaming methods.
pub type FeatureStream = Pin<Box<dyn Stream<Item = Result<Feature, Status>> + Send>>;
/// The response stream of [`RouteGuideService::route_chat`].
pub type NoteStream = Pin<Box<dyn Stream<Item = Result<RouteNote, Status>> + Send>>;

impl RouteGuide for RouteGuideService {
    /// Echoes the client's `x-request-id` in the header; the trailer says `x-lookup: hit` or
    /// `miss`.
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        let p = *request.get_ref();
        if !valid(&p) {
            return Err(bad_point(&p));
        }
        let found = self.feature_at(&p).cloned();
        let mut header = MetadataMap::new();
        if let Some(id) = request.metadata().get("x-request-id") {
            header.append("x-request-id", id)?;
        }
        let lookup = if found.is_some() { "hit" } else { "miss" };
        let trailer = MetadataMap::new().with("x-lookup", lookup)?;
        let feature = found.unwrap_or(Feature {
            name: String::new(),
            location: Some(p),
        });
        Ok(Response::from_parts(header, feature, trailer))
    }

    type ListFeaturesStream = FeatureStream;

    /// The header carries `x-count`, the number of features that follow.
    async fn list_features(
        &self,
        request: Request<Rectangle>,
    ) -> Result<Response<FeatureStream>, Status> {
        let rect = request.into_inner();
        let found: Vec<Feature> = self
            .features
            .iter()
            .filter(|f| f.location.as_ref().is_some_and(|p| inside(&rect, p)))
            .cloned()
            .collect();
        let header = MetadataMap::new().with("x-count", &found.len().to_string())?;
        let features: FeatureStream = Box::pin(stream::iter(found.into_iter().map(Ok)));
        Ok(Response::from_parts(header, features, MetadataMap::new()))
    }

    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        let mut points = request.into_inner();
        let mut summary = RouteSummary::default();
        let mut last: Option<Point> = None;
        let mut first: Option<Instant> = None;
        while let Some(p) = points.message().await? {
            let first = *first.get_or_insert_with(Instant::now);
            summary.elapsed_time = first.elapsed().as_secs() as i32;
            if !valid(&p) {
                return Err(bad_point(&p));
            }
            summary.point_count += 1;
            if self.feature_at(&p).is_some() {
                summary.feature_count += 1;
            }
            if let Some(prev) = last {
                summary.distance += distance(&prev, &p).round() as i32;
            }
            last = Some(p);
        }
        Ok(Response::new(summary))
    }

    type RouteChatStream = NoteStream;

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<NoteStream>, Status> {
        let notes = self.notes.clone();
        let replies = request
            .into_inner()
            .map_ok(move |note| {
                let at = note.location.unwrap_or_default();
                let mut notes = notes.lock();
                let here = notes.entry((at.latitude, at.longitude)).or_default();
                let before = here.clone();
                here.push(note);
                stream::iter(before.into_iter().map(Ok))
            })
            .try_flatten();
        Ok(Response::new(Box::pin(replies) as NoteStream))
    }
}
