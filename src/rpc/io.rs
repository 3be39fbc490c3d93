//! Records over a braid stream: [`RecordReader`] pulls records out of a [`RecvStream`],
//! [`RecordWriter`] writes whole records to a [`SendStream`] that several handles share
//! (the sender, the receiver and drop paths all may reset it), and the mapping from stream
//! errors and RESET codes to statuses (spec/RPC.md §6).

use std::{
    future::poll_fn,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tokio::{io::AsyncWrite, time::Instant};

use super::{
    status::{Code, Status},
    wire::{Limits, Record, RecordDecoder, WireError},
};
use crate::{error::TimeoutKind, Error, ErrorCode, RecvStream, SendStream, Side};

/// RESET codes `RESET_CODE_BASE + c` (`c` = 2..=16) end a call with status code `c`
/// (spec/RPC.md §6). `Cancelled` uses braid's own `CANCEL`.
pub const RESET_CODE_BASE: u32 = 0x5250_4300;

/// The RESET code that tells the peer the call ended with `code`.
pub(crate) fn reset_code(code: Code) -> ErrorCode {
    match code {
        Code::Cancelled => ErrorCode::CANCEL,
        Code::Ok => ErrorCode(RESET_CODE_BASE + Code::Internal.as_u8() as u32),
        c => ErrorCode(RESET_CODE_BASE + c.as_u8() as u32),
    }
}

/// The status for a RESET or STOP_SENDING `code` received from the `peer` ("client" or
/// "server").
pub(crate) fn status_from_code(code: ErrorCode, peer: &str) -> Status {
    let c = match code {
        ErrorCode::CANCEL => return Status::cancelled(format!("call cancelled by the {peer}")),
        ErrorCode(n) if (RESET_CODE_BASE + 2..=RESET_CODE_BASE + 16).contains(&n) => {
            Code::from_u8((n - RESET_CODE_BASE) as u8)
        }
        ErrorCode::REFUSED_STREAM | ErrorCode::BACKLOG_FULL => Code::Unavailable,
        ErrorCode::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        _ => Code::Internal,
    };
    Status::new(c, format!("stream reset by the {peer} with {code}"))
}

/// The status for a stream error that this side did not cause on purpose.
pub(crate) fn status_from_error(err: &Error, peer: &str) -> Status {
    match err {
        Error::StreamReset {
            code,
            by: Side::Remote,
        } => status_from_code(*code, peer),
        Error::StreamStopped { code } => status_from_code(*code, peer),
        Error::StreamRefused { .. } | Error::Timeout(TimeoutKind::Open) => {
            Status::unavailable(format!("{err}; the call was not processed"))
        }
        Error::StreamReset {
            code: ErrorCode::CANCEL,
            by: Side::Local,
        } => Status::cancelled(err.to_string()),
        Error::StreamReset {
            by: Side::Local, ..
        } => Status::internal(err.to_string()),
        _ => Status::unavailable(format!("transport: {err}")),
    }
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Why [`RecordReader::next`] failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer's bytes are not valid records (or over a limit).
    Wire(WireError),
    /// The stream broke.
    Stream(Error),
}

/// Reads whole records from a receive half. Cancel-safe: partial input stays buffered.
#[derive(Debug)]
pub(crate) struct RecordReader {
    stream: RecvStream,
    decoder: RecordDecoder,
    eof: bool,
}

impl RecordReader {
    pub(crate) fn new(stream: RecvStream, limits: Limits) -> RecordReader {
        RecordReader {
            stream,
            decoder: RecordDecoder::new(limits),
            eof: false,
        }
    }

    /// The next record if it can be had without waiting (`None`: [`RecordReader::next`]
    /// would wait for bytes).
    pub(crate) fn try_next(&mut self) -> Option<Result<Option<Record>, ReadError>> {
        match self.decoder.next_record() {
            Ok(Some(rec)) => Some(Ok(Some(rec))),
            Err(e) => Some(Err(ReadError::Wire(e))),
            Ok(None) if self.eof => Some(Ok(None)),
            Ok(None) => None,
        }
    }

    /// The next record; `Ok(None)` at the peer's FIN on a record boundary.
    pub(crate) async fn next(&mut self) -> Result<Option<Record>, ReadError> {
        loop {
            if let Some(rec) = self.decoder.next_record().map_err(ReadError::Wire)? {
                return Ok(Some(rec));
            }
            if self.eof {
                return Ok(None);
            }
            match self.stream.recv().await {
                Ok(Some(chunk)) => self.decoder.push(chunk),
                Ok(None) => {
                    self.decoder.finish().map_err(ReadError::Wire)?;
                    self.eof = true;
                }
                Err(e) => return Err(ReadError::Stream(e)),
            }
        }
    }

    /// Asks the peer to stop sending (STOP_SENDING) unless its FIN already arrived.
    pub(crate) fn stop(&mut self, code: ErrorCode) {
        if !self.eof {
            self.stream.stop(code);
        }
    }
}

/// Records (all parts together) up to this size are queued whole in one call when the stream
/// has room ([`RecordWriter::try_write_now`]); larger ones, and small ones that must wait for
/// room, are written part by part.
const SMALL_RECORD: usize = 1024;

/// Why [`RecordWriter::write`] or [`RecordWriter::finish`] failed.
#[derive(Debug, Clone)]
pub(crate) enum WriteError {
    /// This side reset the stream, for this reason.
    Reset(Status),
    /// This side already finished its direction.
    Finished,
    /// Another record is being written, or an earlier write was cancelled midway.
    Busy,
    /// The stream broke (peer reset or stop, session gone).
    Stream(Error),
}

#[derive(Debug)]
enum State {
    Open,
    Finished,
    Reset(Status),
    Broken(Error),
}

#[derive(Debug)]
struct Inner {
    stream: SendStream,
    /// A record is partly written: no other record may start.
    busy: bool,
    state: State,
}

impl Inner {
    fn check(&self) -> Result<(), WriteError> {
        match &self.state {
            State::Open => Ok(()),
            State::Finished => Err(WriteError::Finished),
            State::Reset(s) => Err(WriteError::Reset(s.clone())),
            State::Broken(e) => Err(WriteError::Stream(e.clone())),
        }
    }
}

/// A send half shared by the handles of one call. Records are written whole: a record
/// started and not completed (its future was dropped) marks the writer busy for good, and
/// the owner then resets the stream rather than corrupt the framing.
#[derive(Debug, Clone)]
pub(crate) struct RecordWriter {
    inner: Arc<Mutex<Inner>>,
}

fn braid_error(err: io::Error) -> Error {
    Error::from_io(&err)
        .cloned()
        .unwrap_or_else(|| Error::Io(Arc::new(err)))
}

impl RecordWriter {
    pub(crate) fn new(stream: SendStream) -> RecordWriter {
        RecordWriter {
            inner: Arc::new(Mutex::new(Inner {
                stream,
                busy: false,
                state: State::Open,
            })),
        }
    }

    /// Writes a small record (`parts` back to back, at most [`SMALL_RECORD`] bytes) at once
    /// if the stream's send buffer has room: one lock each, no copy but into the stream's
    /// buffer. `None` when it has to wait (or is large): use [`RecordWriter::write`].
    pub(crate) fn try_write_now(&self, parts: &[&[u8]]) -> Option<Result<(), WriteError>> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > SMALL_RECORD {
            return None;
        }
        let mut w = self.inner.lock();
        if let Err(e) = w.check() {
            return Some(Err(e));
        }
        if w.busy {
            return Some(Err(WriteError::Busy));
        }
        match w.stream.try_write_all(parts) {
            Ok(true) => Some(Ok(())),
            Ok(false) => None,
            Err(e) => {
                w.state = State::Broken(e.clone());
                Some(Err(WriteError::Stream(e)))
            }
        }
    }

    /// Writes `parts` back to back as one unit. Returns once every byte is queued in the
    /// stream (waiting for flow control), not when the peer has it.
    pub(crate) async fn write(&self, parts: &[&[u8]]) -> Result<(), WriteError> {
        if let Some(done) = self.try_write_now(parts) {
            return done;
        }
        self.begin()?;
        for part in parts {
            let mut off = 0;
            while off < part.len() {
                off += poll_fn(|cx| {
                    self.poll_part(|stream| {
                        Pin::new(stream)
                            .poll_write(cx, &part[off..])
                            .map_err(braid_error)
                    })
                })
                .await?;
            }
        }
        self.inner.lock().busy = false;
        Ok(())
    }

    /// Writes `records` (whole records back to back) as one unit, without copying them.
    /// Returns once every byte is queued in the stream.
    pub(crate) async fn write_bytes(&self, mut records: Bytes) -> Result<(), WriteError> {
        self.begin()?;
        while !records.is_empty() {
            let n = poll_fn(|cx| self.poll_part(|stream| stream.poll_send(cx, &records))).await?;
            records.advance(n);
        }
        self.inner.lock().busy = false;
        Ok(())
    }

    /// Starts a unit that may be written in several steps: no other may start until it
    /// ends, and one abandoned midway leaves the writer busy for good.
    fn begin(&self) -> Result<(), WriteError> {
        let mut w = self.inner.lock();
        w.check()?;
        if w.busy {
            return Err(WriteError::Busy);
        }
        w.busy = true;
        Ok(())
    }

    /// One step of a unit: `write` on the stream, unless this side has reset it; a stream
    /// error breaks the writer.
    fn poll_part(
        &self,
        write: impl FnOnce(&mut SendStream) -> Poll<Result<usize, Error>>,
    ) -> Poll<Result<usize, WriteError>> {
        let mut w = self.inner.lock();
        w.check()?;
        match write(&mut w.stream) {
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(e)) => {
                if let Err(err) = w.check() {
                    return Poll::Ready(Err(err)); // we reset it ourselves
                }
                w.state = State::Broken(e.clone());
                Poll::Ready(Err(WriteError::Stream(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// `Ready` with the reason once no record can be written any more: this side finished
    /// or reset the stream, or it broke (the peer reset it or stopped reading, the session
    /// ended). `Pending` while the stream is open; the waker is woken when that changes.
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<WriteError> {
        let mut w = self.inner.lock();
        if let Err(e) = w.check() {
            return Poll::Ready(e);
        }
        match w.stream.poll_closed(cx) {
            Poll::Ready(e) => {
                w.state = State::Broken(e.clone());
                Poll::Ready(WriteError::Stream(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Sends FIN after the records written so far.
    pub(crate) fn finish(&self) -> Result<(), WriteError> {
        let mut w = self.inner.lock();
        w.check()?;
        if w.busy {
            return Err(WriteError::Busy);
        }
        match w.stream.finish() {
            Ok(()) => {
                w.state = State::Finished;
                Ok(())
            }
            Err(e) => {
                w.state = State::Broken(e.clone());
                Err(WriteError::Stream(e))
            }
        }
    }

    /// Resets the stream with `code`, remembering `why` as the reason this side reports.
    /// Does nothing if the stream already broke or was reset.
    pub(crate) fn reset(&self, code: ErrorCode, why: Status) {
        let mut w = self.inner.lock();
        if matches!(w.state, State::Open | State::Finished) {
            w.stream.reset(code);
            w.state = State::Reset(why);
        }
    }

    /// The call is over: finish the send direction if it is still open, or reset it if a
    /// record is half written (a sender may be waiting for credit that will never come).
    pub(crate) fn close_after_end(&self) {
        let mut w = self.inner.lock();
        if !matches!(w.state, State::Open) {
            return;
        }
        if !w.busy {
            if let Ok(()) = w.stream.finish() {
                w.state = State::Finished;
                return;
            }
        }
        w.stream.reset(ErrorCode::CANCEL);
        w.state = State::Reset(Status::cancelled("the call ended"));
    }

    /// Whether the send direction is still open (not finished, reset or broken).
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.inner.lock().state, State::Open)
    }

    /// The reason this side reset the stream, if it did.
    pub(crate) fn local_reset(&self) -> Option<Status> {
        match &self.inner.lock().state {
            State::Reset(s) => Some(s.clone()),
            _ => None,
        }
    }
}
