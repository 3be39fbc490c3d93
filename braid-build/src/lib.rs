//! Typed [`braid::rpc`](https://docs.rs/braid) services from `.proto` files: prost messages,
//! a client per service and a server trait to implement, generated in `build.rs`. Like
//! `tonic-build`, without a system `protoc`: `.proto` files are parsed by the pure-Rust
//! [`protox`], so a fresh machine builds with cargo alone.
//!
//! # Use
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! braid-mux = "0.1" # the library is `braid` (`use braid::...`)
//! braid-prost = "0.1" # runtime support of the generated code
//! prost = "0.14"
//!
//! [build-dependencies]
//! braid-build = "0.1"
//! ```
//!
//! `build.rs`:
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     braid_build::compile_protos("proto/route_guide.proto")
//! }
//! ```
//!
//! In the crate, per protobuf package:
//!
//! ```ignore
//! pub mod routeguide {
//!     braid_prost::include_proto!("routeguide");
//! }
//! ```
//!
//! # What is generated
//!
//! The messages, by [`prost_build`]; then, for a service `RouteGuide` in package
//! `routeguide` (the layout of tonic's generated code):
//!
//! * `route_guide_client::RouteGuideClient`: `new(session)`, `from_client(client)`,
//!   `client()` (the untyped `braid::rpc::Client`, to drop down to an untyped call), and per
//!   RPC, taking the message or a `braid_prost::Request` (metadata, timeout):
//!   * unary: `async fn get_feature(&self, request) -> Result<Feature, Status>`, and
//!     `get_feature_full`, which returns a `Response<Feature>` with the server's header and
//!     trailer;
//!   * server-streaming: `async fn list_features(&self, request) -> Result<Streaming<Feature>, Status>`;
//!   * client-streaming: `async fn record_route(&self, request: impl
//!     IntoStreamingRequest<Message = Point>)`: any `Stream` of points, or a `Request`
//!     around one; and `record_route_full`;
//!   * bidirectional: `async fn route_chat(&self, request: impl IntoRequest<()>) ->
//!     Result<(Sender<RouteNote, RouteNote>, Streaming<RouteNote>), Status>`: typed halves.
//! * `route_guide_server::RouteGuide`: a trait with one method per RPC, implemented with
//!   plain `async fn` (no `async_trait`): `async fn get_feature(&self, request:
//!   Request<Point>) -> Result<Response<Feature>, Status>`; a streaming request is a
//!   `Request<Streaming<Point>>`, a streaming response an associated type
//!   (`type ListFeaturesStream: Stream<Item = Result<Feature, Status>>`). The request
//!   carries the client's metadata and the call's deadline.
//! * `route_guide_server::RouteGuideServer<T>`: `RouteGuideServer::new(my_impl)` and
//!   `.register(server)`, or `server.add_service(...)` with `braid_prost::ServerExt`,
//!   routes every method on a `braid::rpc::Server`.
//!
//! The runtime half lives in the `braid-prost` crate, not in `braid`, so the multiplexer
//! stays free of protobuf dependencies, and not in the generated code, so there is one
//! `Streaming` type for all services. Statuses, metadata, deadlines and cancellation are
//! those of `braid::rpc` (spec/RPC.md), unchanged: the typed layer only encodes and decodes.
//!
//! # Options
//!
//! [`configure`] returns a [`Builder`]: client or server only, another output directory,
//! include paths, or your own [`prost_build::Config`] (for `bytes`, `extern_path`, ...).

#![forbid(unsafe_code)]

mod generator;

use std::{
    io,
    path::{Path, PathBuf},
};

pub use generator::BraidServiceGenerator;
pub use prost_build;
pub use protox;

/// Compiles one `.proto` file (imports resolved from its directory) into `OUT_DIR`, with
/// clients and servers: `configure().compile_protos(&[proto], &[its directory])`.
pub fn compile_protos(proto: impl AsRef<Path>) -> io::Result<()> {
    let proto = proto.as_ref();
    let dir = proto
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    configure().compile_protos(&[proto], &[dir])
}

/// A [`Builder`] with the defaults: clients and servers, written to `OUT_DIR`.
pub fn configure() -> Builder {
    Builder {
        generator: BraidServiceGenerator::default(),
        out_dir: None,
        prost_config: None,
        emit_rerun_if_changed: std::env::var_os("CARGO").is_some(),
    }
}

/// Settings for one generation run; from [`configure`].
#[derive(Debug)]
pub struct Builder {
    generator: BraidServiceGenerator,
    out_dir: Option<PathBuf>,
    prost_config: Option<prost_build::Config>,
    emit_rerun_if_changed: bool,
}

impl Builder {
    /// Whether to generate the clients (default true).
    pub fn build_client(mut self, enable: bool) -> Self {
        self.generator.client = enable;
        self
    }

    /// Whether to generate the server traits and `XxxServer`s (default true).
    pub fn build_server(mut self, enable: bool) -> Self {
        self.generator.server = enable;
        self
    }

    /// Where to write the `.rs` files (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The path the generated code uses for the runtime crate (default `::braid_prost`),
    /// for a crate that renames or re-exports it.
    pub fn runtime_crate(mut self, path: impl Into<String>) -> Self {
        self.generator.runtime = path.into();
        self
    }

    /// A [`prost_build::Config`] to generate the messages with (its service generator and
    /// output directory are replaced).
    pub fn prost_config(mut self, config: prost_build::Config) -> Self {
        self.prost_config = Some(config);
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for the protos and include directories
    /// (default: when run by cargo).
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = enable;
        self
    }

    /// Parses `protos` with [`protox`] (imports searched in `includes`) and generates one
    /// `.rs` file per protobuf package. Parse errors come back as
    /// [`io::ErrorKind::InvalidInput`], with the file, line and reason.
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        if self.emit_rerun_if_changed {
            for path in protos.iter().map(AsRef::as_ref) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            for path in includes.iter().map(AsRef::as_ref) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let fds = protox::compile(protos, includes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        self.compile_fds(fds)
    }

    /// Generates from an already parsed descriptor set.
    pub fn compile_fds(self, fds: prost_types::FileDescriptorSet) -> io::Result<()> {
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "OUT_DIR is not set: run from build.rs, or set Builder::out_dir",
                    )
                })?,
        };
        let mut config = self.prost_config.unwrap_or_default();
        config
            .out_dir(out_dir)
            .service_generator(Box::new(self.generator));
        config.compile_fds(fds)
    }
}
