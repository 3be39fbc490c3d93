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
//!
//! # Logging
//!
//! With the cargo feature `tracing` (on by default) each session's driver logs through the
//! [`tracing`](https://docs.rs/tracing) crate, target `braid`, inside the session's span
//! `braid_session` (level INFO; fields `role`, `id`, a process-wide counter, and `peer`, which
//! the application may record: [`Session::span`]). Events:
//!
//! | event | level | fields |
//! |---|---|---|
//! | session started | DEBUG | |
//! | session ended: protocol violation by the peer | WARN | `code` (spec §9), `reason`, `limit` for an abuse limit (L16, L17, L19) |
//! | session ended: keepalive timeout, or no preface in time | WARN | `code`, `limit` (L11) |
//! | session ended: write timeout (the peer stopped reading) | WARN | `code`, `limit` (L13) |
//! | session ended: the peer sent GOAWAY with an error | INFO | `code`, `reason` |
//! | session ended (transport error or EOF, driver dropped, ...) | INFO | `error` |
//! | session ended gracefully (GOAWAY) | DEBUG | `by` (`local` or `peer`) |
//! | session closed by the application ([`Session::close`]) | DEBUG | `code` |
//! | GOAWAY sent / GOAWAY received | DEBUG | `code`; received: `last_stream` |
//! | limit reached: `max_inbound_streams` (L4), accept backlog (L6), shared memory budget (§7.6) | INFO, once per session | L4, L6: `limit` and the setting's value |
//! | refused the peer's streams (L4, L6, or after our GOAWAY), reset streams on an open (L12) or linger (L14) timeout | DEBUG, once per driver turn | `limit` (or `rule`), `code`, `streams` (how many), `last_stream` |
//!
//! The limits' labels (L4, ...) are the rows of spec §11. A session ends with exactly one
//! "session ended" or "session closed" event. A span is filtered like an event: with a filter
//! above INFO (say `warn`) the span is off and WARN events come without its fields; keep
//! `braid=info` to have them. Nothing is formatted or allocated for an event no subscriber
//! wants, and with the feature off the library has no `tracing` code at all
//! (`default-features = false`).

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
