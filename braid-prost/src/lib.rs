//! Runtime support for the code [`braid-build`](https://docs.rs/braid-build) generates from
//! `.proto` files: typed [prost](https://docs.rs/prost) messages over [`braid::rpc`].
//!
//! A crate that uses generated services depends on `braid`, `braid-prost` and `prost`, and has
//! `braid-build` as a build dependency (as a tonic user has `tonic`, `prost` and
//! `tonic-build`). What lives here is the part of the generated code that is the same for
//! every service, so the generated code stays small and the `braid` library itself needs no
//! protobuf dependency:
//!
//! * [`ProstCodec`]: decodes prost messages as a [`braid::rpc::Codec`]. The typed senders
//!   encode each outgoing message straight into braid's send batch
//!   ([`Codec::encode_into`](braid::rpc::Codec::encode_into)), so a streamed message costs no
//!   allocation of its own; [`encode`] gives one message's bytes, for the untyped API.
//! * [`Request`] and [`Response`]: a message with its metadata (and for a request, a timeout
//!   on the client and the deadline on the server), shaped like tonic's.
//! * [`Streaming`]: the messages of a streaming call, on either side; [`Sender`]: the typed
//!   sending half of a bidirectional call on the client.
//! * [`client::Grpc`] and the [`server`] functions: the four call kinds, used by each
//!   generated method.
//! * [`include_proto!`]: includes what `braid-build` wrote to `OUT_DIR`.
//!
//! Why a crate of its own rather than a feature of `braid`: the library is a multiplexer
//! first and stays free of protobuf; why not everything inline in the generated code: one
//! [`Streaming`] type shared by every service and package, and fixes that reach users with a
//! `cargo update` instead of a rebuild of their generated code.
//!
//! Every typed call can drop down to the untyped API: a generated client's `client()` is the
//! [`braid::rpc::Client`] it calls with, and a generated server registers ordinary routes on a
//! [`braid::rpc::Server`], next to any hand-written ones.

#![forbid(unsafe_code)]

pub mod client;
mod codec;
mod request;
pub mod server;
mod streaming;

pub use braid;
pub use client::Grpc;
pub use codec::{encode, ProstCodec};
pub use request::{IntoRequest, IntoStreamingRequest, Request, Response};
pub use server::{ServerExt, Service};
pub use streaming::{Sender, Streaming};

/// What generated code imports; not for direct use.
#[doc(hidden)]
pub mod __codegen {
    pub use braid::rpc::{Client, Server, ServerStream, Status};
    pub use braid::Session;
    pub use futures::Stream;
    pub use std::{future::Future, sync::Arc};
}

/// Includes the Rust code `braid-build` generated for a protobuf package: the messages, the
/// clients (`xxx_client::XxxClient`) and the servers (`xxx_server::{Xxx, XxxServer}`).
///
/// `include_proto!("routeguide")` is `include!(concat!(env!("OUT_DIR"), "/routeguide.rs"))`,
/// like tonic's `include_proto!`.
///
/// ```ignore
/// pub mod routeguide {
///     braid_prost::include_proto!("routeguide");
/// }
/// ```
#[macro_export]
macro_rules! include_proto {
    ($package:tt) => {
        include!(concat!(env!("OUT_DIR"), concat!("/", $package, ".rs")));
    };
}
