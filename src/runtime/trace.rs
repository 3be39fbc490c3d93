//! The runtime's `tracing` output (cargo feature `tracing`, on by default): the session's span
//! and the events the driver derives, once per turn, from the core's state (its error, its
//! GOAWAYs, its `Defences` counters). Every `tracing` call of the
//! library is here; the core does no logging. Without the feature, [`SessionTrace`] is a
//! zero-sized stand-in whose methods do nothing.
//!
//! Cost when no subscriber wants the events: per session, one atomic increment and a disabled
//! span; per driver poll, cloning and entering that disabled span (a branch or two); per turn, one load of
//! tracing's global level filter. Nothing is formatted or allocated unless an event is enabled.

#[cfg(feature = "tracing")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::{debug, info, warn, Level, Span};

    use crate::{
        error::{Error, Side, TimeoutKind},
        frame::ErrorCode,
        proto::{
            Core, Defences, Role, TOO_MANY_EMPTY_FRAMES, TOO_MANY_LOCAL_RESETS,
            TOO_MANY_UNACCEPTED_RESETS,
        },
    };

    /// The next session's id (process-wide, from 1).
    static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

    /// A session's span and what its driver has logged of the core's state so far.
    #[derive(Debug)]
    pub(crate) struct SessionTrace {
        span: Span,
        goaway_sent: Option<ErrorCode>,
        goaway_recv: Option<(u32, ErrorCode)>,
        defences: Defences,
        budget_spent: bool,
        ended: bool,
    }

    impl SessionTrace {
        /// The span of a new session (`braid_session{role, id, peer}`), and its start event.
        pub(crate) fn new(role: Role) -> SessionTrace {
            let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
            let role = match role {
                Role::Client => "client",
                Role::Server => "server",
            };
            let span = tracing::info_span!(
                target: "braid",
                "braid_session",
                role,
                id,
                peer = tracing::field::Empty
            );
            debug!(target: "braid", parent: &span, "session started");
            SessionTrace {
                span,
                goaway_sent: None,
                goaway_recv: None,
                defences: Defences::default(),
                budget_spent: false,
                ended: false,
            }
        }

        pub(crate) fn span(&self) -> &Span {
            &self.span
        }

        /// Enters the span for a poll of the driver. Owned, so the driver stays free to borrow
        /// itself mutably; with the span disabled the clone and the enter are a branch each.
        #[inline]
        pub(crate) fn enter(&self) -> tracing::span::EnteredSpan {
            self.span.clone().entered()
        }

        /// Logs what changed in the core since the last call. Called once per driver turn,
        /// under the session lock, after the turn's frames are framed.
        #[inline]
        pub(crate) fn observe(&mut self, core: &Core) {
            if !tracing::level_enabled!(Level::WARN) {
                return; // no subscriber (or all of them off): one load of the global filter
            }
            let unchanged = core.goaway_sent() == self.goaway_sent
                && core.goaway_received() == self.goaway_recv
                && *core.defences() == self.defences
                && core.error().is_some() == self.ended
                && (self.budget_spent || !core.budget_spent());
            if !unchanged {
                self.changed(core);
            }
        }

        #[cold]
        #[inline(never)]
        fn changed(&mut self, core: &Core) {
            if core.goaway_received() != self.goaway_recv {
                if let Some((last_stream, code)) = core.goaway_received() {
                    debug!(target: "braid", %code, last_stream, "GOAWAY received");
                }
                self.goaway_recv = core.goaway_received();
            }
            if *core.defences() != self.defences {
                log_defences(core, &self.defences);
                self.defences = *core.defences();
            }
            if !self.budget_spent && core.budget_spent() {
                self.budget_spent = true;
                info!(
                    target: "braid",
                    "limit reached: the shared memory budget is spent; session credit waits \
                     for it (spec §7.6)"
                );
            }
            // Logged once framed: the turn's write hands it to the transport.
            if core.goaway_sent() != self.goaway_sent && !core.goaway_queued() {
                if let Some(code) = core.goaway_sent() {
                    debug!(target: "braid", %code, "GOAWAY sent");
                }
                self.goaway_sent = core.goaway_sent();
            }
            if !self.ended {
                if let Some(err) = core.error() {
                    self.ended = true;
                    log_end(core, err);
                }
            }
        }
    }

    /// Streams the core refused or reset by a defence since `old`: one debug event per kind and
    /// turn (with how many and the last id), and for the limits the peer ran into, an info event
    /// the first time in the session.
    fn log_defences(core: &Core, old: &Defences) {
        let (new, config) = (core.defences(), core.config());
        // (count now, count before, limit, code, what happened, for a limit the peer reached:
        // the setting and its value)
        let kinds = [
            (
                new.refused_at_limit,
                old.refused_at_limit,
                Some("L4"),
                ErrorCode::REFUSED_STREAM,
                "refused the peer's streams: max_inbound_streams open",
                Some(("max_inbound_streams", config.max_inbound_streams)),
            ),
            (
                new.refused_after_goaway,
                old.refused_after_goaway,
                None,
                ErrorCode::REFUSED_STREAM,
                "refused the peer's streams: opened after our GOAWAY (spec §8.2)",
                None,
            ),
            (
                new.backlog_full,
                old.backlog_full,
                Some("L6"),
                ErrorCode::BACKLOG_FULL,
                "refused the peer's streams: accept backlog full",
                Some(("accept_backlog", config.accept_backlog)),
            ),
            (
                new.open_timeouts,
                old.open_timeouts,
                Some("L12"),
                ErrorCode::TIMEOUT,
                "reset our streams: the peer did not acknowledge them within open_timeout",
                None,
            ),
            (
                new.linger_timeouts,
                old.linger_timeouts,
                Some("L14"),
                ErrorCode::TIMEOUT,
                "reset dropped streams: the peer did not finish them within linger_timeout",
                None,
            ),
        ];
        for (now, before, limit, code, what, reached) in kinds {
            if now == before {
                continue;
            }
            if let Some((setting, value)) = reached.filter(|_| before == 0) {
                info!(
                    target: "braid",
                    limit,
                    setting,
                    value,
                    "limit reached: {setting} ({value}); the peer's further streams are refused"
                );
            }
            debug!(
                target: "braid",
                limit,
                code = %code,
                streams = now - before,
                last_stream = new.last_stream,
                "{what}"
            );
        }
    }

    /// The limit (spec §11) behind an `ENHANCE_YOUR_CALM` session error.
    fn limit_of(reason: &str) -> Option<&'static str> {
        match reason {
            TOO_MANY_LOCAL_RESETS => Some("L16"),
            TOO_MANY_UNACCEPTED_RESETS => Some("L17"),
            TOO_MANY_EMPTY_FRAMES => Some("L19"),
            _ => None,
        }
    }

    /// How the session ended: warn for the peer's fault and timeouts, info for other errors,
    /// debug for a graceful GOAWAY or the application's own close.
    fn log_end(core: &Core, err: &Error) {
        match err {
            Error::Protocol { code, reason } => warn!(
                target: "braid",
                %code,
                reason,
                limit = limit_of(reason),
                "session ended: protocol violation by the peer"
            ),
            Error::Timeout(TimeoutKind::Keepalive) if !core.handshake_done() => warn!(
                target: "braid",
                code = %ErrorCode::TIMEOUT,
                limit = "L11",
                "session ended: no preface from the peer within keepalive_timeout"
            ),
            Error::Timeout(TimeoutKind::Keepalive) => warn!(
                target: "braid",
                code = %ErrorCode::TIMEOUT,
                limit = "L11",
                "session ended: keepalive timeout (the peer did not answer a PING within \
                 keepalive_timeout)"
            ),
            Error::Timeout(TimeoutKind::Write) => warn!(
                target: "braid",
                code = %ErrorCode::TIMEOUT,
                limit = "L13",
                "session ended: write timeout (the transport took no bytes within \
                 write_timeout; the peer stopped reading)"
            ),
            Error::SessionClosed { code, by, .. } if *code == ErrorCode::NO_ERROR => debug!(
                target: "braid",
                by = side(*by),
                "session ended gracefully (GOAWAY)"
            ),
            Error::SessionClosed {
                code,
                by: Side::Local,
                ..
            } => debug!(target: "braid", %code, "session closed by the application"),
            Error::SessionClosed { code, reason, .. } => info!(
                target: "braid",
                %code,
                reason = reason.as_deref(),
                "session ended: the peer sent GOAWAY with an error"
            ),
            other => info!(target: "braid", error = %other, "session ended"),
        }
    }

    fn side(side: Side) -> &'static str {
        match side {
            Side::Local => "local",
            Side::Remote => "peer",
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    use crate::proto::{Core, Role};

    /// Without the `tracing` feature: nothing.
    #[derive(Debug)]
    pub(crate) struct SessionTrace;

    /// What [`SessionTrace::enter`] returns without the feature.
    pub(crate) struct Entered;

    impl SessionTrace {
        #[inline(always)]
        pub(crate) fn new(_role: Role) -> SessionTrace {
            SessionTrace
        }

        #[inline(always)]
        pub(crate) fn enter(&self) -> Entered {
            Entered
        }

        #[inline(always)]
        pub(crate) fn observe(&mut self, _core: &Core) {}
    }
}

pub(crate) use imp::SessionTrace;
