//! braid itself, with defaults and tuned windows.
//!

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::{Acceptor, BoxFuture, Mux, Opener};

const MIB: u32 = 1024 * 1024;

/// braid-tuned windows: (initial_stream_window, max_stream_window, session_window).
/// The session window is kept at 16 x max_stream_window, as braid's design asks.
const TUNED: (u32, u32, u32) = (16 * MIB, 16 * MIB, 256 * MIB);

/// braid with default or tuned settings.
#[derive(Debug, Clone, Copy)]
pub struct Braid {
    tuned: bool,
}

impl Braid {
    /// `braid`: `Config::default()`.
    pub fn defaults() -> Self {
        Braid { tuned: false }
    }

    /// `braid-tuned`: large windows.
    pub fn tuned() -> Self {
        Braid { tuned: true }
    }
}

impl Mux for Braid {
    fn name(&self) -> &'static str {
        if self.tuned {
            "braid-tuned"
        } else {
            "braid"
        }
    }

    fn settings(&self) -> String {
        if self.tuned {
            let (initial, max, session) = TUNED;
            format!(
                "braid Config: initial_stream_window={initial} (16 MiB), \
                 max_stream_window={max} (16 MiB), session_window={session} (256 MiB); rest default"
            )
        } else {
            "braid Config::default()".into()
        }
    }

    fn unavailable(&self) -> Option<String> {
        imp::unavailable()
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, Arc<dyn Opener>> {
        imp::connect(self.tuned, addr)
    }

    fn listen(&self, listener: TcpListener) -> BoxFuture<'static, Box<dyn Acceptor>> {
        imp::listen(self.tuned, listener)
    }
}

use real as imp;

mod real {
    use super::*;
    use crate::impls::{accept_tcp, connect_tcp, io_err, BoxStream};

    fn config(tuned: bool) -> braid::Config {
        if tuned {
            let (initial, max, session) = TUNED;
            braid::Config::default()
                .with_initial_stream_window(initial)
                .with_max_stream_window(max)
                .with_session_window(session)
        } else {
            braid::Config::default()
        }
    }

    pub fn unavailable() -> Option<String> {
        None
    }

    pub fn connect(tuned: bool, addr: SocketAddr) -> BoxFuture<'static, Arc<dyn Opener>> {
        Box::pin(async move {
            let tcp = connect_tcp(addr).await?;
            let session =
                braid::Session::client(tcp, config(tuned)).map_err(io_err("braid client"))?;
            let opener: Arc<dyn Opener> = Arc::new(BraidOpener { session });
            Ok(opener)
        })
    }

    pub fn listen(tuned: bool, listener: TcpListener) -> BoxFuture<'static, Box<dyn Acceptor>> {
        Box::pin(async move {
            let tcp = accept_tcp(&listener).await?;
            let session =
                braid::Session::server(tcp, config(tuned)).map_err(io_err("braid server"))?;
            let acceptor: Box<dyn Acceptor> = Box::new(BraidAcceptor { session });
            Ok(acceptor)
        })
    }

    struct BraidOpener {
        session: braid::Session,
    }

    impl Opener for BraidOpener {
        fn open(&self) -> BoxFuture<'_, BoxStream> {
            Box::pin(async move {
                let stream = self.session.open().await.map_err(io_err("braid open"))?;
                Ok(Box::new(stream) as BoxStream)
            })
        }
    }

    struct BraidAcceptor {
        session: braid::Session,
    }

    impl Acceptor for BraidAcceptor {
        fn accept(&mut self) -> BoxFuture<'_, Option<BoxStream>> {
            Box::pin(async move {
                let stream = self
                    .session
                    .accept()
                    .await
                    .map_err(io_err("braid accept"))?;
                Ok(Some(Box::new(stream) as BoxStream))
            })
        }
    }
}
