//! The tokio shell around [`crate::proto::Core`]: one driver task per session moves bytes
//! between the transport and the core and arms its timers; [`Session`] and [`Stream`] are
//! the handles applications hold. No protocol rule lives here.

mod driver;
mod read_buffers;
mod session;
mod shared;
mod split;
mod stream;
mod writer;

pub use driver::Driver;
pub use session::Session;
pub use stream::{RecvStream, SendStream, Stream};

/// The clock the runtime feeds the core: tokio's, so a paused test clock applies.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
