//! The server's view of one call: [`ServerStream`], handed to a handler, and the state it
//! shares with the task that supervises the call (header, trailer, how the call ended).

use std::{future::Future, mem, pin::pin, sync::Arc};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::{
    batch::{self, encode_message, Filled},
    codec::{BytesCodec, Codec},
    io::{reset_code, status_from_error, ReadError, RecordReader, RecordWriter, WriteError},
    metadata::MetadataMap,
    status::Status,
    wire::{encode_response_head, encode_trailers, record_header, Kind, Record, RequestHead},
};

/// What the handler and the supervising task share.
#[derive(Debug)]
pub(crate) struct CallState {
    pub(crate) writer: RecordWriter,
    max_send: usize,
    max_metadata: usize,
    meta: Mutex<Meta>,
}

#[derive(Debug, Default)]
struct Meta {
    header: MetadataMap,
    header_sent: bool,
    trailer: MetadataMap,
    /// Set once the call's end (trailers or reset) has begun.
    ended: Option<Status>,
}

fn ended_error(status: &Status) -> Status {
    if status.is_ok() {
        Status::failed_precondition("the call has already ended")
    } else {
        status.clone()
    }
}

/// A HEADERS record (header and body) for `md`.
fn header_record(md: &MetadataMap) -> (Bytes, Bytes) {
    let body = encode_response_head(md);
    (
        Bytes::copy_from_slice(&record_header(Kind::Headers, body.len())),
        body,
    )
}

impl CallState {
    pub(crate) fn new(writer: RecordWriter, max_send: usize, max_metadata: usize) -> CallState {
        CallState {
            writer,
            max_send: max_send.min(u32::MAX as usize),
            max_metadata,
            meta: Mutex::new(Meta::default()),
        }
    }

    /// The header record if it is still unsent (marking it sent), or the error if the call
    /// already ended.
    fn take_header(&self) -> Result<Option<(Bytes, Bytes)>, Status> {
        let mut m = self.meta.lock();
        if let Some(s) = &m.ended {
            return Err(ended_error(s));
        }
        if m.header_sent {
            return Ok(None);
        }
        m.header_sent = true;
        Ok(Some(header_record(&mem::take(&mut m.header))))
    }

    fn write_error(&self, err: WriteError) -> Status {
        match err {
            WriteError::Reset(s) => s,
            WriteError::Finished => match &self.meta.lock().ended {
                Some(s) => ended_error(s), // the status it ended with, unless that was OK
                None => Status::failed_precondition("the call has already ended"),
            },
            WriteError::Busy => {
                if let Some(s) = &self.meta.lock().ended {
                    return ended_error(s);
                }
                let s =
                    Status::internal("an earlier send was cancelled in the middle of a message");
                self.writer.reset(reset_code(s.code()), s.clone());
                s
            }
            WriteError::Stream(e) => status_from_error(&e, "client"),
        }
    }

    /// Ends the call with `status`: the header if still unsent, TRAILERS, then FIN. Does
    /// nothing if the call already ended. If a record is half written, resets instead.
    pub(crate) async fn end(&self, status: Status) {
        let (header, trailer) = {
            let mut m = self.meta.lock();
            if m.ended.is_some() {
                return;
            }
            m.ended = Some(status.clone());
            let header = (!m.header_sent).then(|| header_record(&mem::take(&mut m.header)));
            m.header_sent = true;
            (header, mem::take(&mut m.trailer))
        };
        let mut body = encode_trailers(&status, &trailer);
        if body.len() > self.max_metadata {
            let mut msg = status.message().to_owned();
            let mut cut = msg.len().min(512);
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
            msg.push_str(" (trailer over the metadata limit; dropped)");
            let short = Status::new(status.code(), msg);
            body = encode_trailers(&short, &MetadataMap::new());
        }
        let head = record_header(Kind::Trailers, body.len());
        let result = match &header {
            Some((hh, hb)) => self.writer.write(&[hh, hb, &head, &body]).await,
            None => self.writer.write(&[&head, &body]).await,
        };
        match result.and_then(|()| self.writer.finish()) {
            Ok(()) => {}
            Err(WriteError::Busy) => self.writer.reset(reset_code(status.code()), status),
            Err(_) => {} // already reset or broken: nothing left to tell the client
        }
    }

    /// The deadline passed: reset the stream; the handler's operations now fail with
    /// `DeadlineExceeded`.
    pub(crate) fn expire(&self) {
        let status = Status::deadline_exceeded("deadline exceeded");
        self.meta.lock().ended.get_or_insert_with(|| status.clone());
        self.writer.reset(reset_code(status.code()), status);
    }

    /// After the handler is done: if the end never completed (a cancelled write), reset.
    pub(crate) fn cleanup(&self) {
        if self.writer.is_open() {
            let status = self.meta.lock().ended.clone();
            let status = status.unwrap_or_else(|| Status::internal("call ended without a status"));
            self.writer.reset(reset_code(status.code()), status);
        }
    }
}

/// One call as a server handler sees it: the request head, the client's messages, and the
/// way to answer. Methods take `&mut self`: one task receives and sends; [`ServerStream::split`]
/// gives a [`ServerSender`] and a [`ServerReceiver`] for two tasks, or for
/// [`ServerSender::send_all`] fed by [`ServerReceiver::messages`].
///
/// The header is sent at the latest with the first message or the status. The handler's
/// return value becomes the status in the trailer.
///
/// ```no_run
/// use braid::rpc::{MetadataMap, Server, ServerStream};
/// let server = Server::new().route("/echo.Echo/Echo", |mut stream: ServerStream| async move {
///     stream.set_header(MetadataMap::new().with("server", "demo")?)?;
///     while let Some(msg) = stream.recv().await? {
///         stream.send(msg).await?;
///     }
///     Ok(())
/// });
/// ```
#[derive(Debug)]
pub struct ServerStream<C: Codec = BytesCodec> {
    sender: ServerSender<C>,
    receiver: ServerReceiver<C>,
    head: RequestHead,
}

/// The answering half of a [`ServerStream`] (from [`ServerStream::split`]): header,
/// messages and trailer.
#[derive(Debug)]
pub struct ServerSender<C: Codec = BytesCodec> {
    call: Arc<CallState>,
    codec: C,
    deadline: Option<Instant>,
}

/// The receiving half of a [`ServerStream`] (from [`ServerStream::split`]): the client's
/// messages.
#[derive(Debug)]
pub struct ServerReceiver<C: Codec = BytesCodec> {
    call: Arc<CallState>,
    reader: RecordReader,
    codec: C,
    deadline: Option<Instant>,
    recv_end: Option<Result<(), Status>>,
}

impl<C: Codec> ServerStream<C> {
    pub(crate) fn new(
        call: Arc<CallState>,
        reader: RecordReader,
        codec: C,
        head: RequestHead,
        deadline: Option<Instant>,
    ) -> ServerStream<C> {
        ServerStream {
            sender: ServerSender {
                call: call.clone(),
                codec: codec.clone(),
                deadline,
            },
            receiver: ServerReceiver {
                call,
                reader,
                codec,
                deadline,
                recv_end: None,
            },
            head,
        }
    }

    /// The method path the client called.
    pub fn method(&self) -> &str {
        &self.head.method
    }

    /// The client's header metadata.
    pub fn metadata(&self) -> &MetadataMap {
        &self.head.metadata
    }

    /// When the client's deadline passes (counted from when the request arrived), if it
    /// set one. Then the stream is reset and every operation fails with `DeadlineExceeded`.
    pub fn deadline(&self) -> Option<Instant> {
        self.sender.deadline
    }

    /// Adds header metadata to send later; see [`ServerSender::set_header`].
    pub fn set_header(&mut self, md: MetadataMap) -> Result<(), Status> {
        self.sender.set_header(md)
    }

    /// Sends the header now; see [`ServerSender::send_header`].
    pub async fn send_header(&mut self, md: MetadataMap) -> Result<(), Status> {
        self.sender.send_header(md).await
    }

    /// Adds trailer metadata; see [`ServerSender::set_trailer`].
    pub fn set_trailer(&mut self, md: MetadataMap) -> Result<(), Status> {
        self.sender.set_trailer(md)
    }

    /// Sends one message; see [`ServerSender::send`].
    pub async fn send(&mut self, msg: C::Encode) -> Result<(), Status> {
        self.sender.send(msg).await
    }

    /// Sends every message of a stream, batched; see [`ServerSender::send_all`].
    pub async fn send_all<S>(&mut self, msgs: S) -> Result<(), Status>
    where
        S: Stream<Item = Result<C::Encode, Status>>,
    {
        self.sender.send_all(msgs).await
    }

    /// The next message from the client; see [`ServerReceiver::recv`].
    pub async fn recv(&mut self) -> Result<Option<C::Decode>, Status> {
        self.receiver.recv().await
    }

    /// Splits into an answering and a receiving half, for two tasks or for feeding
    /// [`ServerSender::send_all`] from [`ServerReceiver::messages`]. Read the request head
    /// ([`ServerStream::metadata`]) first: the halves don't carry it. The call still ends
    /// when the handler returns: halves moved into other tasks then fail (the stream is
    /// finished or reset), so await those tasks before returning.
    ///
    /// ```no_run
    /// use braid::rpc::{Server, ServerStream};
    /// let server = Server::new().route("/echo.Echo/Echo", |stream: ServerStream| async move {
    ///     let (mut tx, mut rx) = stream.split();
    ///     tx.send_all(rx.messages()).await // every message back, batched
    /// });
    /// ```
    pub fn split(self) -> (ServerSender<C>, ServerReceiver<C>) {
        (self.sender, self.receiver)
    }
}

impl<C: Codec> ServerSender<C> {
    /// When the client's deadline passes, if it set one; see [`ServerStream::deadline`].
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The same answering half with another codec, for responses of another type than the
    /// route's codec encodes (a sending half only encodes, so the codec's `Decode` side does
    /// not matter here): the call, its header, trailer and limits are unchanged. As
    /// [`CallSender::with_codec`](super::CallSender::with_codec) on the client.
    pub fn with_codec<D: Codec>(self, codec: D) -> ServerSender<D> {
        ServerSender {
            call: self.call,
            codec,
            deadline: self.deadline,
        }
    }

    /// Adds header metadata to send later (merged with earlier calls). Fails once the
    /// header was sent, or if the header would exceed the metadata limit.
    pub fn set_header(&mut self, md: MetadataMap) -> Result<(), Status> {
        let mut m = self.call.meta.lock();
        if m.header_sent {
            return Err(Status::failed_precondition("the header was already sent"));
        }
        merge_limited(&mut m.header, md, self.call.max_metadata, "header")
    }

    /// Sends the header now, with `md` merged in. Only once; later it fails.
    pub async fn send_header(&mut self, md: MetadataMap) -> Result<(), Status> {
        self.set_header(md)?;
        let Some((hh, hb)) = self.call.take_header()? else {
            return Err(Status::failed_precondition("the header was already sent"));
        };
        self.write(&[&hh, &hb]).await
    }

    /// Adds trailer metadata, sent with the status when the handler returns (merged with
    /// earlier calls).
    pub fn set_trailer(&mut self, md: MetadataMap) -> Result<(), Status> {
        let mut m = self.call.meta.lock();
        if let Some(s) = &m.ended {
            return Err(ended_error(s));
        }
        // Leave room for the status code and lengths (7 bytes).
        let limit = self.call.max_metadata.saturating_sub(7);
        merge_limited(&mut m.trailer, md, limit, "trailer")
    }

    /// Sends one message (with the header first, if not sent yet). Waits only for flow
    /// control. A message over the send limit fails with `ResourceExhausted` and the call
    /// goes on; other errors mean the call is over (`Cancelled` if the client cancelled,
    /// `DeadlineExceeded`, `Unavailable`).
    pub async fn send(&mut self, msg: C::Encode) -> Result<(), Status> {
        let body = encode_message(&mut self.codec, msg, self.call.max_send)?;
        let head = record_header(Kind::Message, body.len());
        match self.call.take_header()? {
            None => self.write(&[&head, &body]).await,
            Some((hh, hb)) => self.write(&[&hh, &hb, &head, &body]).await,
        }
    }

    /// Sends every message of `msgs` in order (the header first, if not sent yet), then
    /// returns; the status goes out when the handler returns. Messages the stream has ready
    /// together are encoded into one buffer of up to 32 KiB (with [`Codec::encode_into`])
    /// and queued in one write (a message is never held back waiting for the next one), so a
    /// fast source costs far less per message than a `send` each.
    ///
    /// Stops at the first error and returns it (the messages before it are sent, the rest
    /// of `msgs` is left unread): an `Err` item of `msgs` (e.g. from
    /// [`ServerReceiver::messages`]), a message over the send limit (`ResourceExhausted`) or
    /// refused by the codec, or the call's end. Returning that error from the handler makes
    /// it the call's status. It notices the call's end while it waits for `msgs` too
    /// (`Cancelled` when the client cancels or stops reading, `DeadlineExceeded`,
    /// `Unavailable` when the session ends), so a source that never yields can't keep the
    /// handler alive past the call.
    ///
    /// Not cancel-safe: dropping it while a batch waits for flow control leaves that batch
    /// half queued, and the call is then reset; the messages it took from `msgs` are lost.
    pub async fn send_all<S>(&mut self, msgs: S) -> Result<(), Status>
    where
        S: Stream<Item = Result<C::Encode, Status>>,
    {
        let mut msgs = pin!(msgs);
        let mut buf = BytesMut::new();
        loop {
            batch::prepare(&mut buf);
            let (codec, max_send) = (&mut self.codec, self.call.max_send);
            let filled = batch::fill(msgs.as_mut(), &self.call.writer, &mut buf, |item, buf| {
                batch::push_encoded(codec, item?, max_send, buf)
            })
            .await;
            if !buf.is_empty() {
                if let Some((hh, hb)) = self.call.take_header()? {
                    self.write(&[&hh, &hb]).await?;
                }
                let records = mem::take(&mut buf).freeze();
                let call = &self.call;
                let written = Box::pin(call.writer.write_bytes(records)).await;
                written.map_err(|e| call.write_error(e))?;
            }
            match filled {
                Filled::More => {}
                Filled::Done => return Ok(()),
                Filled::Failed(status) => return Err(status),
                Filled::Closed(e) => return Err(self.call.write_error(e)),
            }
        }
    }

    /// Queues `parts` (whole records) as one unit.
    async fn write(&self, parts: &[&[u8]]) -> Result<(), Status> {
        let call = &self.call;
        let result = match call.writer.try_write_now(parts) {
            Some(done) => done, // room in the send buffer: no future (the common case)
            None => Box::pin(call.writer.write(parts)).await, // boxed: keeps this future small
        };
        result.map_err(|e| call.write_error(e))
    }
}

impl<C: Codec> ServerReceiver<C> {
    /// When the client's deadline passes, if it set one; see [`ServerStream::deadline`].
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The next message from the client; `Ok(None)` after its CloseSend. A message over the
    /// receive limit ends the call with `ResourceExhausted` (sent to the client at once);
    /// a cancelled call gives `Cancelled`, an expired one `DeadlineExceeded`.
    pub async fn recv(&mut self) -> Result<Option<C::Decode>, Status> {
        if let Some(end) = &self.recv_end {
            return end.clone().map(|()| None);
        }
        let rec = match self.reader.try_next() {
            Some(rec) => rec, // already buffered: no future (the common case)
            None => Box::pin(self.reader.next()).await, // boxed: keeps this future small
        };
        let status = match rec {
            Ok(Some(Record {
                kind: Kind::Message,
                body,
            })) => match self.codec.decode(body) {
                Ok(msg) => return Ok(Some(msg)),
                Err(status) => status,
            },
            Ok(Some(rec)) => Status::internal(format!(
                "protocol: unexpected {:?} record from the client",
                rec.kind
            )),
            Ok(None) => {
                self.recv_end = Some(Ok(()));
                return Ok(None);
            }
            Err(ReadError::Wire(e)) => e.to_status(),
            Err(ReadError::Stream(e)) => {
                let status = self
                    .call
                    .writer
                    .local_reset()
                    .unwrap_or_else(|| status_from_error(&e, "client"));
                self.recv_end = Some(Err(status.clone()));
                return Err(status);
            }
        };
        // The client's input is unusable: stop it and end the call with `status` now.
        self.recv_end = Some(Err(status.clone()));
        self.reader.stop(reset_code(status.code()));
        self.call.end(status.clone()).await;
        Err(status)
    }

    /// The client's messages as a [`Stream`]: each [`ServerReceiver::recv`] result, ending
    /// after the client's CloseSend or after the first error.
    pub fn messages(&mut self) -> impl Stream<Item = Result<C::Decode, Status>> + Send + '_ {
        batch::messages(self)
    }
}

fn merge_limited(
    into: &mut MetadataMap,
    md: MetadataMap,
    limit: usize,
    what: &str,
) -> Result<(), Status> {
    let mut merged = into.clone();
    merged
        .merge(md)
        .map_err(|e| Status::resource_exhausted(format!("{what}: {e}")))?;
    merged
        .check_size(limit)
        .map_err(|e| Status::resource_exhausted(format!("{what}: {e}")))?;
    *into = merged;
    Ok(())
}

impl<C: Codec> batch::Receive for ServerReceiver<C> {
    type Msg = C::Decode;

    fn recv(&mut self) -> impl Future<Output = Result<Option<C::Decode>, Status>> + Send + '_ {
        ServerReceiver::recv(self)
    }
}
