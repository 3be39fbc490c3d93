//! # braid
//!
//! Many independent, ordered, flow-controlled byte streams over one TCP connection (or any
//! tokio `AsyncRead + AsyncWrite` transport), with a fixed 12-byte frame header instead of
//! HTTP/2's encoding. The wire protocol is specified in `spec/PROTOCOL.md`.
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:7000").await?;
//! let session = braid::Session::client(tcp, braid::Config::default())?;
//! let mut stream = session.open().await?;
//! stream.write_all(b"hello").await?;
//! stream.shutdown().await?; // FIN: we are done sending, the reply still flows
//! let mut reply = Vec::new();
//! stream.read_to_end(&mut reply).await?;
//! # Ok(()) }
//! ```
//!
//! Layers: [`frame`] (bytes ⇄ frames), [`proto`] (the IO-free protocol core), and the tokio
//! runtime ([`Session`], [`Stream`]).

#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod frame;
pub mod proto;
pub mod rpc;
mod runtime;

pub use config::{Config, ConfigError};
pub use error::{Error, Result, Side, TimeoutKind};
pub use frame::ErrorCode;
pub use proto::MemoryBudget;
pub use proto::Role;
pub use proto::Stats;
pub use runtime::{Driver, RecvStream, SendStream, Session, Stream};
