//! gRPC-style calls over braid: one call per stream, with methods, metadata, deadlines,
//! length-prefixed messages, and a status at the end. The wire format is `spec/RPC.md`.
//!
//! * Client: [`Client::call`] starts a [`Call`]; `send` / `close_send` / `header` / `recv`
//!   / `trailer` / `status`, or [`Call::split`] for a sending and a receiving task.
//! * Server: [`Server::route`] maps method paths to async handlers that get a
//!   [`ServerStream`]; [`Server::serve`] runs a session's calls, one task each.
//! * [`Status`] (17 gRPC codes, message, binary details), [`MetadataMap`] (ordered ASCII and
//!   binary pairs), [`Codec`] (message encoding; [`Bytes`](bytes::Bytes) by default).
//!
//! ```no_run
//! use braid::rpc::{Client, MetadataMap, Server, ServerStream};
//! # async fn demo(client_session: braid::Session, server_session: braid::Session)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::new().route("/echo.Echo/Echo", |mut stream: ServerStream| async move {
//!     while let Some(msg) = stream.recv().await? {
//!         stream.send(msg).await?;
//!     }
//!     Ok(())
//! });
//! tokio::spawn(async move { server.serve(server_session).await });
//!
//! let client = Client::new(client_session);
//! let mut call = client.call("/echo.Echo/Echo", MetadataMap::new()).await?;
//! call.send("ping".into()).await?;
//! call.close_send()?;
//! assert_eq!(call.recv().await?.as_deref(), Some(&b"ping"[..]));
//! assert_eq!(call.recv().await?, None); // status OK
//! # Ok(()) }
//! ```

mod batch;
mod call;
mod client;
mod codec;
mod io;
mod metadata;
mod server;
mod server_stream;
mod status;
pub mod wire;

pub use call::{Call, CallReceiver, CallSender, SendError};
pub use client::{CallOptions, Client};
pub use codec::{BytesCodec, Codec};
pub use io::RESET_CODE_BASE;
pub use metadata::{MetadataError, MetadataMap, MetadataValue, MAX_ENTRIES, MAX_KEY_LEN};
pub use server::Server;
pub use server_stream::{ServerReceiver, ServerSender, ServerStream};
pub use status::{Code, Status};

/// Default largest message a side accepts: 4 MiB, as in gRPC.
pub const DEFAULT_MAX_RECV_MESSAGE_SIZE: usize = 4 << 20;

/// Default largest message a side sends: the wire maximum (a u32 length), 4 GiB − 1.
pub const DEFAULT_MAX_SEND_MESSAGE_SIZE: usize = u32::MAX as usize;

/// Default largest encoded header or trailer record body: 16 KiB.
pub const DEFAULT_MAX_METADATA_SIZE: usize = 16 << 10;
