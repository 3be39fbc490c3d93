//! The client's view of one call: [`Call`], and its owned halves [`CallSender`] and
//! [`CallReceiver`] for one task sending while another receives.

use std::{
    future::Future,
    pin::pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::time::Instant;

use super::{
    batch::{self, encode_message, Filled},
    codec::{BytesCodec, Codec},
    io::{
        reset_code, sleep_until, status_from_error, ReadError, RecordReader, RecordWriter,
        WriteError,
    },
    metadata::MetadataMap,
    status::{Code, Status},
    wire::{decode_response_head, decode_trailers, record_header, Kind, Limits, Record},
};
use crate::{ErrorCode, RecvStream};

/// Size limits of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub(crate) max_recv: usize,
    pub(crate) max_send: usize,
    pub(crate) max_metadata: usize,
}

/// Why [`Call::send`] did not send a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The call has ended (the server finished it, it was cancelled, its deadline passed, or
    /// the connection broke). [`Call::recv`] returns the real status.
    #[error("the call has ended; recv() returns its status")]
    Ended,
    /// This message was refused locally (too large, or the codec failed); the call goes on.
    #[error("message not sent: {0}")]
    Rejected(Status),
}

/// One client call, from [`Client::call`](super::Client::call).
///
/// Methods take `&mut self`, so one task can't send twice at once or receive twice at once;
/// [`Call::split`] gives owned halves so one task can send while another receives.
///
/// * **Drop**: dropping a call that has not ended cancels it: the stream is reset with
///   `CANCEL`, the server sees [`Code::Cancelled`], and nothing stays allocated.
/// * **Deadline**: with [`CallOptions::timeout`](super::CallOptions::timeout), every
///   operation fails once it passes, the stream is reset, and `recv` returns
///   `DeadlineExceeded`.
/// * **Cancel safety**: `recv` and `header` may be dropped mid-way (e.g. in `select!`)
///   without losing data. Dropping a `send` before it returns may leave a message half
///   written; the call is then cancelled at the next send or `close_send`.
///
/// ```no_run
/// # async fn demo(client: braid::rpc::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use braid::rpc::MetadataMap;
/// use bytes::Bytes;
/// let mut call = client.call("/chat.Chat/Talk", MetadataMap::new()).await?;
/// call.send(Bytes::from_static(b"hello")).await?;
/// call.close_send()?; // half-close: the server's recv() now returns None
/// if let Some(header) = call.header().await {
///     println!("server header: {header:?}"); // None: the call ended without one
/// }
/// while let Some(reply) = call.recv().await? {
///     println!("reply: {reply:?}");
/// }
/// // recv() returned None: the call ended with status OK; the trailer is readable now.
/// println!("trailer: {:?}", call.trailer());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Call<C: Codec = BytesCodec> {
    // Dropped first: an unfinished call is cancelled by the sender's reset.
    sender: CallSender<C>,
    receiver: CallReceiver<C>,
}

/// The sending half of a [`Call`] (from [`Call::split`]).
///
/// Dropping it before [`CallSender::close_send`] cancels the call unless it already ended.
#[derive(Debug)]
pub struct CallSender<C: Codec = BytesCodec> {
    end: SendEnd,
    codec: C,
    max_send: usize,
    deadline: Option<Instant>,
}

/// A [`CallSender`]'s hold on the call, apart from its codec (so
/// [`CallSender::with_codec`] can move it): cancels an unfinished call when dropped.
#[derive(Debug)]
struct SendEnd {
    writer: RecordWriter,
    ended: Arc<AtomicBool>,
}

/// The receiving half of a [`Call`] (from [`Call::split`]).
///
/// Dropping it before the call ended cancels the call.
#[derive(Debug)]
pub struct CallReceiver<C: Codec = BytesCodec> {
    writer: RecordWriter,
    ended: Arc<AtomicBool>,
    reader: RecordReader,
    codec: C,
    deadline: Option<Instant>,
    header: Option<MetadataMap>,
    /// TRAILERS arrived; waiting for the FIN that must follow.
    trailers_seen: Option<(Status, MetadataMap)>,
    trailer: Option<MetadataMap>,
    status: Option<Status>,
}

impl<C: Codec> Call<C> {
    pub(crate) fn new(
        writer: RecordWriter,
        recv: RecvStream,
        codec: C,
        limits: CallLimits,
        deadline: Option<Instant>,
    ) -> Call<C> {
        let ended = Arc::new(AtomicBool::new(false));
        let reader = RecordReader::new(
            recv,
            Limits {
                max_message: limits.max_recv,
                max_metadata: limits.max_metadata,
            },
        );
        Call {
            sender: CallSender {
                end: SendEnd {
                    writer: writer.clone(),
                    ended: ended.clone(),
                },
                codec: codec.clone(),
                max_send: limits.max_send.min(u32::MAX as usize),
                deadline,
            },
            receiver: CallReceiver {
                writer,
                ended,
                reader,
                codec,
                deadline,
                header: None,
                trailers_seen: None,
                trailer: None,
                status: None,
            },
        }
    }

    /// Sends one message; see [`CallSender::send`].
    pub async fn send(&mut self, msg: C::Encode) -> Result<(), SendError> {
        self.sender.send(msg).await
    }

    /// Sends every message of `msgs`, batched; see [`CallSender::send_all`]. To receive
    /// while sending, [`Call::split`] first.
    pub async fn send_all<S>(&mut self, msgs: S) -> Result<(), SendError>
    where
        S: Stream<Item = C::Encode>,
    {
        self.sender.send_all(msgs).await
    }

    /// Half-closes: the server's `recv` then returns `Ok(None)`; see
    /// [`CallSender::close_send`].
    pub fn close_send(&mut self) -> Result<(), SendError> {
        self.sender.close_send()
    }

    /// Waits for the server's header metadata; see [`CallReceiver::header`].
    pub async fn header(&mut self) -> Option<&MetadataMap> {
        self.receiver.header().await
    }

    /// Receives the next message; see [`CallReceiver::recv`].
    pub async fn recv(&mut self) -> Result<Option<C::Decode>, Status> {
        self.receiver.recv().await
    }

    /// The trailer metadata, once the call has ended; see [`CallReceiver::trailer`].
    pub fn trailer(&self) -> Option<&MetadataMap> {
        self.receiver.trailer()
    }

    /// The final status, once the call has ended; see [`CallReceiver::status`].
    pub fn status(&self) -> Option<&Status> {
        self.receiver.status()
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.sender.deadline
    }

    /// Splits into an owned sender and receiver, for two tasks.
    pub fn split(self) -> (CallSender<C>, CallReceiver<C>) {
        (self.sender, self.receiver)
    }
}

impl<C: Codec> CallSender<C> {
    /// Sends one message (gRPC's SendMsg). Waits until flow control lets the message be
    /// queued on the stream, the call ends, or the stream breaks; it does not wait for the
    /// server to receive it.
    ///
    /// [`SendError::Ended`] means the call is over (e.g. the server already returned): the
    /// status comes from `recv`. [`SendError::Rejected`] refuses only this message: it is
    /// over the send limit (`ResourceExhausted`) or the codec failed.
    pub async fn send(&mut self, msg: C::Encode) -> Result<(), SendError> {
        if self.end.ended.load(Ordering::Acquire) {
            return Err(SendError::Ended);
        }
        let body =
            encode_message(&mut self.codec, msg, self.max_send).map_err(SendError::Rejected)?;
        let head = record_header(Kind::Message, body.len());
        self.write(&[&head, &body]).await
    }

    /// Sends every message of `msgs`, in order, then returns (it does not half-close: call
    /// [`CallSender::close_send`] after it). Messages the stream has ready together are
    /// encoded into one buffer of up to 32 KiB (with [`Codec::encode_into`]) and queued in
    /// one write, so a fast source costs far less per message than a `send` each; a message
    /// is never held back waiting for the next one. Waits as [`CallSender::send`] does, for
    /// flow control and for the source's next message, both within the call's deadline.
    ///
    /// Stops at the first message it can't send: [`SendError::Rejected`] for a message over
    /// the send limit or one the codec refused (the messages before it are sent, the call
    /// goes on, the rest of `msgs` is left unread), [`SendError::Ended`] when the call is
    /// over. It notices the call's end while it waits for `msgs` too (the deadline, the
    /// server finishing the call or resetting it, the session's end), so a source that
    /// never yields can't keep it waiting past the call; the status comes from `recv`.
    ///
    /// Not cancel-safe: dropping it while a batch waits for flow control leaves that batch
    /// half queued, and the call is then cancelled (as for a dropped [`CallSender::send`]);
    /// the messages it took from `msgs` are lost with it.
    ///
    /// ```no_run
    /// # async fn demo(client: braid::rpc::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use braid::rpc::MetadataMap;
    /// use bytes::Bytes;
    /// let (mut tx, mut rx) = client.call("/echo.Echo/Echo", MetadataMap::new()).await?.split();
    /// let msgs = futures::stream::iter((0..10_000).map(|i| Bytes::from(format!("msg {i}"))));
    /// let sender = tokio::spawn(async move {
    ///     tx.send_all(msgs).await?;
    ///     tx.close_send()
    /// });
    /// while let Some(echo) = rx.recv().await? { /* ... */ }
    /// sender.await??;
    /// # Ok(()) }
    /// ```
    pub async fn send_all<S>(&mut self, msgs: S) -> Result<(), SendError>
    where
        S: Stream<Item = C::Encode>,
    {
        let mut msgs = pin!(msgs);
        let mut buf = BytesMut::new();
        loop {
            if self.end.ended.load(Ordering::Acquire) {
                return Err(SendError::Ended);
            }
            batch::prepare(&mut buf);
            let (codec, max_send) = (&mut self.codec, self.max_send);
            let fill = batch::fill(msgs.as_mut(), &self.end.writer, &mut buf, |msg, buf| {
                batch::push_encoded(codec, msg, max_send, buf)
            });
            let filled = match self.deadline {
                None => fill.await,
                Some(deadline) => tokio::select! {
                    biased;
                    _ = tokio::time::sleep_until(deadline) => {
                        self.expire();
                        return Err(SendError::Ended);
                    }
                    filled = fill => filled,
                },
            };
            if !buf.is_empty() {
                self.write_batch(std::mem::take(&mut buf).freeze()).await?;
            }
            match filled {
                Filled::More => {}
                Filled::Done => return Ok(()),
                Filled::Failed(status) => return Err(SendError::Rejected(status)),
                Filled::Closed(e) => return self.check_written(Err(e)),
            }
        }
    }

    /// Queues one unit of whole records (`parts` back to back), within the deadline.
    async fn write(&self, parts: &[&[u8]]) -> Result<(), SendError> {
        let expired = self.deadline.is_some_and(|d| Instant::now() >= d);
        // After the deadline nothing is queued: the slow path resets the call at once.
        let queued = if expired {
            None
        } else {
            self.end.writer.try_write_now(parts)
        };
        let result = match queued {
            // Room in the send buffer: no timer, no future (the common case).
            Some(r) => r,
            None => self.within_deadline(self.end.writer.write(parts)).await?,
        };
        self.check_written(result)
    }

    /// Queues a batch of whole records without copying it, within the deadline.
    async fn write_batch(&self, records: Bytes) -> Result<(), SendError> {
        let result = self
            .within_deadline(self.end.writer.write_bytes(records))
            .await?;
        self.check_written(result)
    }

    /// Runs a write that may wait for room; once the deadline passes (or if it has), resets
    /// the call and returns [`SendError::Ended`]. Boxed, so the callers' futures stay small.
    async fn within_deadline(
        &self,
        write: impl Future<Output = Result<(), WriteError>>,
    ) -> Result<Result<(), WriteError>, SendError> {
        let deadline = self.deadline;
        let wait = Box::pin(async move {
            tokio::select! {
                biased;
                _ = sleep_until(deadline) => None,
                r = write => Some(r),
            }
        });
        match wait.await {
            Some(r) => Ok(r),
            None => {
                self.expire();
                Err(SendError::Ended)
            }
        }
    }

    /// A failed write ends the call for this sender; one abandoned midway (a dropped
    /// `send`) can't be completed, so the call is cancelled.
    fn check_written(&self, result: Result<(), WriteError>) -> Result<(), SendError> {
        result.map_err(|e| {
            if let WriteError::Busy = e {
                self.cancel_broken_framing();
            }
            SendError::Ended
        })
    }

    /// The deadline passed: reset the call (`recv` reports `DeadlineExceeded`).
    fn expire(&self) {
        let status = Status::deadline_exceeded("deadline exceeded");
        self.end
            .writer
            .reset(reset_code(Code::DeadlineExceeded), status);
    }

    /// Half-closes the call (gRPC's CloseSend): the server's `recv` returns `Ok(None)` after
    /// the messages sent so far. Idempotent. Fails with [`SendError::Ended`] if the call is
    /// over.
    pub fn close_send(&mut self) -> Result<(), SendError> {
        match self.end.writer.finish() {
            Ok(()) | Err(WriteError::Finished) => Ok(()),
            Err(WriteError::Busy) => {
                self.cancel_broken_framing();
                Err(SendError::Ended)
            }
            Err(_) => Err(SendError::Ended),
        }
    }

    /// An earlier `send` was dropped mid-message: the framing can't be completed.
    fn cancel_broken_framing(&self) {
        let status = Status::cancelled("an earlier send was cancelled in the middle of a message");
        self.end.writer.reset(ErrorCode::CANCEL, status);
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The same sending half with another codec, for sending messages of another type
    /// (a sending half only encodes, so the codec's `Decode` side does not matter here): the
    /// call, its state and its limits are unchanged. Typed layers use it to send one message
    /// type on a call whose codec decodes another.
    ///
    /// ```no_run
    /// # async fn demo(client: braid::rpc::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use braid::rpc::{Codec, MetadataMap, Status};
    /// use bytes::Bytes;
    ///
    /// /// Sends UTF-8 strings.
    /// #[derive(Debug, Clone, Copy)]
    /// struct Text;
    /// impl Codec for Text {
    ///     type Encode = String;
    ///     type Decode = Bytes;
    ///     fn encode(&mut self, item: String) -> Result<Bytes, Status> {
    ///         Ok(item.into())
    ///     }
    ///     fn decode(&mut self, bytes: Bytes) -> Result<Bytes, Status> {
    ///         Ok(bytes)
    ///     }
    /// }
    /// let (tx, mut rx) = client.call("/chat.Chat/Talk", MetadataMap::new()).await?.split();
    /// let mut tx = tx.with_codec(Text);
    /// tx.send("hello".to_owned()).await?;
    /// tx.close_send()?;
    /// while let Some(reply) = rx.recv().await? { /* Bytes, through BytesCodec */ }
    /// # Ok(()) }
    /// ```
    pub fn with_codec<D: Codec>(self, codec: D) -> CallSender<D> {
        CallSender {
            end: self.end,
            codec,
            max_send: self.max_send,
            deadline: self.deadline,
        }
    }
}

impl Drop for SendEnd {
    fn drop(&mut self) {
        if !self.writer.is_open() {
            return;
        }
        if self.ended.load(Ordering::Acquire) && self.writer.finish().is_ok() {
            return;
        }
        let status = Status::cancelled("call dropped before close_send");
        self.writer.reset(ErrorCode::CANCEL, status);
    }
}

impl<C: Codec> CallReceiver<C> {
    /// Receives the next message (gRPC's RecvMsg).
    ///
    /// * `Ok(Some(msg))`: a message.
    /// * `Ok(None)`: the server ended the call with status OK. Only then.
    /// * `Err(status)`: every other ending: the server's non-OK status, cancellation, the
    ///   deadline, a message over the receive limit (`ResourceExhausted`), a broken
    ///   connection (`Unavailable`), or a stream that ended without a status (`Internal`).
    ///
    /// After the end it keeps returning the same result; [`CallReceiver::trailer`] and
    /// [`CallReceiver::status`] are then available.
    pub async fn recv(&mut self) -> Result<Option<C::Decode>, Status> {
        loop {
            if let Some(status) = &self.status {
                return if status.is_ok() {
                    Ok(None)
                } else {
                    Err(status.clone())
                };
            }
            if let Some(body) = self.step().await {
                match self.codec.decode(body) {
                    Ok(msg) => return Ok(Some(msg)),
                    Err(status) => self.fail_local(status),
                }
            }
        }
    }

    /// The messages as a [`Stream`]: each [`CallReceiver::recv`] result, ending after
    /// `Ok(None)` (status OK) or after the first error, which is the call's status.
    ///
    /// ```no_run
    /// # async fn demo(mut rx: braid::rpc::CallReceiver) -> Result<(), braid::rpc::Status> {
    /// use futures::TryStreamExt;
    /// let all: Vec<bytes::Bytes> = rx.messages().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn messages(&mut self) -> impl Stream<Item = Result<C::Decode, Status>> + Send + '_ {
        batch::messages(self)
    }

    /// Waits for the server's header metadata. Returns `None` if the call ended without one
    /// (the status then comes from [`CallReceiver::recv`]). Messages are never consumed:
    /// the server sends its header before its first message.
    pub async fn header(&mut self) -> Option<&MetadataMap> {
        loop {
            if self.header.is_some() {
                return self.header.as_ref();
            }
            if self.status.is_some() {
                return None;
            }
            // Never a message here: one before HEADERS fails the call.
            let _ = self.step().await;
        }
    }

    /// The trailer metadata: `None` until `recv` has returned `Ok(None)` or an error, then
    /// the server's trailer (empty if the call ended without one). Stays readable after the
    /// stream has closed.
    pub fn trailer(&self) -> Option<&MetadataMap> {
        self.trailer.as_ref()
    }

    /// The final status: `None` until `recv` has returned `Ok(None)` or an error.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Reads and handles one record. Returns a MESSAGE body; everything else updates state.
    /// Cancel-safe: all progress lives in `self`.
    async fn step(&mut self) -> Option<Bytes> {
        let expired = self.deadline.is_some_and(|d| Instant::now() >= d);
        let rec = match self.reader.try_next() {
            // A record already buffered: no timer, no future (the common case).
            Some(rec) if !expired => rec,
            // Waiting for the server: boxed, so the common case's future stays small.
            _ => {
                let (reader, deadline) = (&mut self.reader, self.deadline);
                let wait = Box::pin(async move {
                    tokio::select! {
                        biased;
                        _ = sleep_until(deadline) => None,
                        r = reader.next() => Some(r),
                    }
                });
                match wait.await {
                    Some(rec) => rec,
                    None => {
                        match self.trailers_seen.take() {
                            Some((status, md)) => self.finish(status, md),
                            None => self.fail_local(Status::deadline_exceeded("deadline exceeded")),
                        }
                        return None;
                    }
                }
            }
        };
        if let Some((status, md)) = self.trailers_seen.take() {
            match rec {
                Ok(None) | Err(ReadError::Stream(_)) => self.finish(status, md),
                Ok(Some(_)) => {
                    self.fail_local(Status::internal("protocol: a record followed TRAILERS"))
                }
                Err(ReadError::Wire(e)) => self.fail_local(e.to_status()),
            }
            return None;
        }
        match rec {
            Ok(Some(Record { kind, body })) => match kind {
                Kind::Headers if self.header.is_some() => self.fail_local(Status::internal(
                    "protocol: a second HEADERS from the server",
                )),
                Kind::Headers => match decode_response_head(body) {
                    Ok(md) => self.header = Some(md),
                    Err(e) => self.fail_local(e.to_status()),
                },
                Kind::Message if self.header.is_none() => {
                    self.fail_local(Status::internal("protocol: MESSAGE before HEADERS"))
                }
                Kind::Message => return Some(body),
                Kind::Trailers => match decode_trailers(body) {
                    Ok(end) => self.trailers_seen = Some(end),
                    Err(e) => self.fail_local(e.to_status()),
                },
            },
            Ok(None) => self.fail_local(Status::internal(
                "the server closed the stream without sending a status",
            )),
            Err(ReadError::Wire(e)) => self.fail_local(e.to_status()),
            Err(ReadError::Stream(e)) => {
                let status = self
                    .writer
                    .local_reset()
                    .unwrap_or_else(|| status_from_error(&e, "server"));
                self.finish(status, MetadataMap::new());
            }
        }
        None
    }

    /// Ends the call because of something this side detected; tells the server with RESET.
    fn fail_local(&mut self, status: Status) {
        let code = reset_code(status.code());
        self.writer.reset(code, status.clone());
        self.reader.stop(code);
        self.finish(status, MetadataMap::new());
    }

    fn finish(&mut self, status: Status, trailer: MetadataMap) {
        self.status = Some(status);
        self.trailer = Some(trailer);
        self.ended.store(true, Ordering::Release);
        self.writer.close_after_end();
    }
}

impl<C: Codec> Drop for CallReceiver<C> {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.ended.store(true, Ordering::Release);
            let status = Status::cancelled("call dropped before it ended");
            self.writer.reset(ErrorCode::CANCEL, status);
        }
    }
}

impl<C: Codec> batch::Receive for CallReceiver<C> {
    type Msg = C::Decode;

    fn recv(&mut self) -> impl Future<Output = Result<Option<C::Decode>, Status>> + Send + '_ {
        CallReceiver::recv(self)
    }
}
