//! Spec §6.2 / §6.3, row by row: one table with an entry (or several variants) for every
//! (state × event) row of the send-half and receive-half tables. Each entry brings a stream
//! of the in-memory pair (`support::pair`) to the row's state, checks that
//! `Core::stream_state` reports that state, applies the event, and checks the next state and
//! the frames the end put on the wire in response — or, for rows whose action is a session
//! error, the error code and its GOAWAY. Frames a correct peer never sends (DATA before the
//! ACK, a repeated ACK, ...) are written onto the peer's side of the wire by hand
//! (`Pair::write_raw`).
//!
//! The last test parses the two tables out of `spec/PROTOCOL.md` and checks that the labels
//! here are exactly its rows: a row added to (or reworded in) the spec fails it until an
//! entry covers it.
//!
//! Conventions: the client opens every stream (odd id); "at" is the end whose state the row
//! is about. Cases of a row that cannot happen through the API, or that other rules of the
//! spec override, are noted in the entry's variant text.

mod support;

use std::{collections::BTreeSet, task::Poll};

use braid::proto::{HANDLE_RECV as RECV, HANDLE_SEND as SEND};
use braid::{
    frame::{Flags, Frame},
    proto::{RecvHalf, SendHalf, ACK_DELAY},
    Config, Error, ErrorCode, Side,
};
use support::pair::{waker, End, Event, Pair};
use support::raw::{data, data_frame, encode_all};

const C: End = End::Client;
const S: End = End::Server;

type State = Option<(SendHalf, RecvHalf)>;
type Setup = fn(&mut Pair) -> u32;
type Step = fn(&mut Pair, u32);

/// What a row's event leads to.
enum Expect {
    /// The session goes on; the stream is in `state` (`None`: no longer tracked) and the
    /// end sent `frames` in response (frames on the stream, and GOAWAY), in order.
    Next {
        state: State,
        frames: &'static [&'static str],
    },
    /// The end fails the session with this code and says so in a GOAWAY.
    SessionError(ErrorCode),
}

struct Row {
    /// The row as the spec writes it: "6.x: <State> × <Event>".
    label: &'static str,
    /// Which case of the row this entry drives (a row naming several states or events has
    /// one entry per case).
    variant: &'static str,
    at: End,
    /// Brings the stream to the row's state; returns its id.
    setup: Setup,
    /// The row's state, as `Core::stream_state` must report it before the event.
    before: State,
    event: Step,
    expect: Expect,
    /// Further checks of the row's action (buffers discarded, errors the application gets).
    check: Step,
}

fn no_check(_: &mut Pair, _: u32) {}

#[allow(clippy::too_many_arguments)]
fn row(
    label: &'static str,
    variant: &'static str,
    at: End,
    setup: Setup,
    before: State,
    event: Step,
    expect: Expect,
) -> Row {
    Row {
        label,
        variant,
        at,
        setup,
        before,
        event,
        expect,
        check: no_check,
    }
}

impl Row {
    fn check(mut self, check: Step) -> Row {
        self.check = check;
        self
    }
}

fn next(state: State, frames: &'static [&'static str]) -> Expect {
    Expect::Next { state, frames }
}

// ----- states -----

const fn st(send: SendHalf, recv: RecvHalf) -> State {
    Some((send, recv))
}
const S_IDLE: SendHalf = SendHalf::Idle;
const S_OPEN: SendHalf = SendHalf::Open { fin_pending: false };
const S_FIN_PENDING: SendHalf = SendHalf::Open { fin_pending: true };
const S_FINISHED: SendHalf = SendHalf::Finished;
const S_RESET: SendHalf = SendHalf::Reset;
const R_IDLE: RecvHalf = RecvHalf::Idle;
const R_OPENING: RecvHalf = RecvHalf::Opening;
const R_OPEN: RecvHalf = RecvHalf::Open;
const R_STOPPING_UNACKED: RecvHalf = RecvHalf::Stopping { acked: false };
const R_STOPPING: RecvHalf = RecvHalf::Stopping { acked: true };
const R_FINISHED: RecvHalf = RecvHalf::Finished;
const R_RESET_US: RecvHalf = RecvHalf::Reset { by: Side::Local };
const R_RESET_PEER: RecvHalf = RecvHalf::Reset { by: Side::Remote };

/// Both halves reset (a RESET either way moves both, §6.3).
const RESET_US: State = st(S_RESET, R_RESET_US);
const RESET_PEER: State = st(S_RESET, R_RESET_PEER);

// ----- the pair and its steps -----

fn config() -> Config {
    // No keepalive PINGs in the frame logs; everything else default.
    Config::default().with_keepalive_interval(None)
}

fn window() -> usize {
    config().initial_stream_window as usize
}

/// Delivers everything `from` has on the wire to its peer.
fn deliver(p: &mut Pair, from: End) {
    p.deliver(from, usize::MAX); // clamped to what is in flight
}

/// `from` transmits and the peer processes it all (one way only).
fn deliver_from(p: &mut Pair, from: End) {
    p.pump(from);
    deliver(p, from);
}

/// A row's event: what `from` has on the wire arrives and the peer processes it. At least
/// one frame of stream `id` (or a GOAWAY, which concerns them all) must be among it, or an
/// "ignored" row would pass having tested nothing.
fn arrive(p: &mut Pair, from: End, id: u32) {
    let before = p.events().len();
    deliver(p, from);
    let arrived = p.events()[before..].iter().any(|e| match e {
        Event::Received(end, f) if *end == from.peer() => {
            f.stream_id() == id || matches!(f, Frame::GoAway { .. })
        }
        _ => false,
    });
    assert!(arrived, "no frame of stream {id} arrived from {from:?}");
}

/// Puts `frames` on the wire as if `from` had sent them (a peer a correct core never is).
fn raw(p: &mut Pair, from: End, frames: &[Frame]) {
    p.pump(from);
    p.write_raw(from, &encode_all(frames));
}

fn wu(id: u32, increment: u32) -> Frame {
    Frame::WindowUpdate {
        stream: id,
        increment,
    }
}

fn write(p: &mut Pair, end: End, id: u32, bytes: &[u8]) {
    match p.core(end).poll_write(id, waker(), bytes) {
        Poll::Ready(Ok(n)) => assert_eq!(n, bytes.len(), "short write"),
        other => panic!("write on {id}: {other:?}"),
    }
}

fn finish(p: &mut Pair, end: End, id: u32) {
    p.core(end).finish(id).expect("finish");
}

fn accept(p: &mut Pair) -> u32 {
    p.accept(S)
}

/// The client opens a stream; its SYN is not on the wire yet.
fn open_unsent(p: &mut Pair) -> u32 {
    p.open(C)
}

/// The client opened a stream and the server has its SYN (in the accept backlog).
fn open_sent(p: &mut Pair) -> u32 {
    let id = open_unsent(p);
    p.pump(C);
    deliver(p, C);
    id
}

/// The server accepted the stream, wrote `bytes` (then FIN if `fin`) and the DATA+ACK is
/// on the wire, not yet delivered: the client is still Opening.
fn ack_on_wire(p: &mut Pair, id: u32, bytes: &[u8], fin: bool) {
    assert_eq!(accept(p), id);
    write(p, S, id, bytes);
    if fin {
        finish(p, S, id);
    }
    p.pump(S);
}

/// Opened, accepted and acknowledged: both halves Open at both ends, nothing in flight.
fn established(p: &mut Pair) -> u32 {
    let id = open_sent(p);
    assert_eq!(accept(p), id);
    p.advance(ACK_DELAY); // the held ACK goes out alone
    p.deliver_all();
    id
}

/// The client spent the stream's whole send credit (on the wire, undelivered) and has 100
/// more bytes buffered that wait for credit.
fn credit_spent(p: &mut Pair, id: u32) {
    let bytes = vec![7u8; window() + 100];
    let mut written = 0;
    while written < bytes.len() {
        match p.core(C).poll_write(id, waker(), &bytes[written..]) {
            Poll::Ready(Ok(n)) => written += n,
            other => panic!("write: {other:?}"),
        }
        p.pump(C);
    }
    assert_eq!(p.core_ref(C).stats().send_buffered, 100);
}

/// Established, then the client finished with 100 bytes still waiting for credit.
fn fin_pending(p: &mut Pair) -> u32 {
    let id = starved(p);
    finish(p, C, id);
    id
}

/// Established, and the client's FIN is on the wire (not yet delivered).
fn fin_on_wire(p: &mut Pair) -> u32 {
    let id = established(p);
    finish(p, C, id);
    p.pump(C);
    id
}

/// Established, and the server's STOP_SENDING is on the wire (not yet delivered).
fn stopped_by_server(p: &mut Pair) -> u32 {
    let id = established(p);
    stop(p, S, id);
    p.pump(S);
    id
}

/// The server has the client's SYN; the client stopped reading before the ACK, its
/// STOP_SENDING is on the wire.
fn stopped_before_ack(p: &mut Pair) -> u32 {
    let id = open_sent(p);
    stop(p, C, id);
    p.pump(C);
    id
}

/// Established, and the client spent the stream's credit with 100 bytes left waiting.
fn starved(p: &mut Pair) -> u32 {
    let id = established(p);
    credit_spent(p, id);
    id
}

/// Established, and the client's 4 bytes "more" are on the wire.
fn more_on_wire(p: &mut Pair) -> u32 {
    let id = established(p);
    write(p, C, id, b"more");
    p.pump(C);
    id
}

/// Established; the client wrote "bye" and finished, and the server has both, unread.
fn finished_unread(p: &mut Pair) -> u32 {
    let id = established(p);
    write(p, C, id, b"bye");
    finish(p, C, id);
    deliver_from(p, C);
    id
}

fn stop(p: &mut Pair, end: End, id: u32) {
    p.core(end).stop(id, ErrorCode::INTERNAL_ERROR);
}

fn reset(p: &mut Pair, end: End, id: u32) {
    p.core(end).reset(id, ErrorCode::INTERNAL_ERROR);
}

fn release(p: &mut Pair, end: End, id: u32, halves: u8) {
    let now = p.now();
    p.core(end).release(now, id, halves);
}

fn read_all(p: &mut Pair, end: End, id: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match p.core(end).poll_read(id, waker(), &mut buf) {
            Poll::Ready(Ok(0)) | Poll::Pending => return out,
            Poll::Ready(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Poll::Ready(Err(e)) => panic!("read: {e}"),
        }
    }
}

fn write_err(p: &mut Pair, end: End, id: u32) -> Error {
    match p.core(end).poll_write(id, waker(), b"late") {
        Poll::Ready(Err(e)) => e,
        other => panic!("write should fail, got {other:?}"),
    }
}

fn read_err(p: &mut Pair, end: End, id: u32) -> Error {
    let mut buf = [0u8; 16];
    match p.core(end).poll_read(id, waker(), &mut buf) {
        Poll::Ready(Err(e)) => e,
        other => panic!("read should fail, got {other:?}"),
    }
}

/// The writer learned of the peer's STOP_SENDING(INTERNAL_ERROR), the code `stop` uses.
fn assert_stopped(err: Error) {
    assert!(
        matches!(err, Error::StreamStopped { code } if code == ErrorCode::INTERNAL_ERROR),
        "{err:?}"
    );
}

/// The peer reset the stream with INTERNAL_ERROR, the code `reset` uses.
fn assert_reset_by_peer(err: Error) {
    assert!(
        matches!(err, Error::StreamReset { by: Side::Remote, code } if code == ErrorCode::INTERNAL_ERROR),
        "{err:?}"
    );
}

/// The session was closed by `by`.
fn assert_closed_by(err: Error, by: Side) {
    assert!(
        matches!(err, Error::SessionClosed { by: b, .. } if b == by),
        "{err:?}"
    );
}

fn describe(f: &Frame) -> String {
    match f {
        Frame::Data { flags, payload, .. } => {
            let mut s = String::from("DATA");
            for (flag, name) in [
                (Flags::SYN, "SYN"),
                (Flags::ACK, "ACK"),
                (Flags::FIN, "FIN"),
            ] {
                if flags.contains(flag) {
                    s += "+";
                    s += name;
                }
            }
            format!("{s}[{}]", payload.len())
        }
        Frame::WindowUpdate { .. } => "WINDOW_UPDATE".into(),
        Frame::Reset { code, .. } => format!("RESET({code})"),
        Frame::StopSending { code, .. } => format!("STOP_SENDING({code})"),
        Frame::GoAway { code, .. } => format!("GOAWAY({code})"),
        Frame::Ping { .. } => "PING".into(),
    }
}

// ----- the table -----

fn rows() -> Vec<Row> {
    use Expect::SessionError;
    let e = ErrorCode::PROTOCOL_ERROR;
    vec![
        // ===== §6.2 send half =====
        row(
            "6.2: Idle (opener) × application opens",
            "open and write: the SYN carries the data",
            C,
            |_| 1, // the client's first id; nothing tracked before the open
            None,
            |p, id| {
                assert_eq!(open_unsent(p), id);
                write(p, C, id, b"hi");
            },
            next(st(S_OPEN, R_OPENING), &["DATA+SYN[2]"]),
        ),
        row(
            "6.2: Idle (opener) × application opens",
            "open, write and finish: FIN on the SYN",
            C,
            |_| 1,
            None,
            |p, id| {
                assert_eq!(open_unsent(p), id);
                write(p, C, id, b"hi");
                finish(p, C, id);
            },
            next(st(S_FINISHED, R_OPENING), &["DATA+SYN+FIN[2]"]),
        ),
        row(
            "6.2: Idle (acceptor) × application accepts",
            "nothing written: the empty ACK after ACK_DELAY",
            S,
            open_sent,
            st(S_IDLE, R_OPEN),
            |p, id| {
                assert_eq!(accept(p), id);
                p.advance(ACK_DELAY);
            },
            next(st(S_OPEN, R_OPEN), &["DATA+ACK[0]"]),
        ),
        row(
            "6.2: Idle (acceptor) × application accepts",
            "reply and finish at once: one DATA+ACK+FIN",
            S,
            open_sent,
            st(S_IDLE, R_OPEN),
            |p, id| {
                assert_eq!(accept(p), id);
                write(p, S, id, b"yo");
                finish(p, S, id);
            },
            next(st(S_FINISHED, R_OPEN), &["DATA+ACK+FIN[2]"]),
        ),
        row(
            "6.2: Idle (acceptor) × application accepts",
            "a STOP_SENDING was recorded: the FIN rides on the ACK",
            S,
            |p| {
                let id = stopped_before_ack(p);
                deliver(p, C);
                id
            },
            st(S_IDLE, R_OPEN),
            |p, id| assert_eq!(accept(p), id),
            next(st(S_FINISHED, R_OPEN), &["DATA+ACK+FIN[0]"]),
        )
        .check(|p, id| assert_stopped(write_err(p, S, id))),
        row(
            "6.2: Idle (acceptor) × recv STOP_SENDING(c)",
            "recorded, nothing sent before the accept",
            S,
            stopped_before_ack,
            st(S_IDLE, R_OPEN),
            |p, id| arrive(p, C, id),
            next(st(S_IDLE, R_OPEN), &[]),
        ),
        row(
            "6.2: Idle / Open (FIN pending included) × recv WINDOW_UPDATE",
            "Idle (acceptor): credit added, nothing sent",
            S,
            |p| {
                let id = open_sent(p);
                raw(p, C, &[wu(id, 1000)]);
                id
            },
            st(S_IDLE, R_OPEN),
            |p, id| arrive(p, C, id),
            next(st(S_IDLE, R_OPEN), &[]),
        ),
        row(
            "6.2: Idle / Open (FIN pending included) × recv WINDOW_UPDATE",
            "Open: credit added, nothing sent",
            C,
            |p| {
                let id = established(p);
                raw(p, S, &[wu(id, 1000)]);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, S, id),
            next(st(S_OPEN, R_OPEN), &[]),
        ),
        row(
            "6.2: Idle / Open (FIN pending included) × recv WINDOW_UPDATE",
            "Open, FIN pending: the credit releases the data and the FIN (Finished once the \
             FIN is written, the 'application finishes' row)",
            C,
            |p| {
                let id = fin_pending(p);
                raw(p, S, &[wu(id, 1000)]);
                id
            },
            st(S_FIN_PENDING, R_OPEN),
            |p, id| arrive(p, S, id),
            next(st(S_FINISHED, R_OPEN), &["DATA+FIN[100]"]),
        ),
        row(
            "6.2: Idle / Open (FIN pending included) × recv WINDOW_UPDATE",
            "Open, FIN pending: credit above 2^31-1 is a session FLOW_CONTROL_ERROR",
            C,
            |p| {
                let id = fin_pending(p);
                raw(p, S, &[wu(id, 0x7fff_ffff), wu(id, 1)]);
                id
            },
            st(S_FIN_PENDING, R_OPEN),
            |p, id| arrive(p, S, id),
            SessionError(ErrorCode::FLOW_CONTROL_ERROR),
        ),
        row(
            "6.2: Idle / Open (FIN pending included) × recv WINDOW_UPDATE",
            "Idle (acceptor): credit above 2^31-1 is a session FLOW_CONTROL_ERROR",
            S,
            |p| {
                let id = open_sent(p);
                raw(p, C, &[wu(id, 0x7fff_ffff)]);
                id
            },
            st(S_IDLE, R_OPEN),
            |p, id| arrive(p, C, id),
            SessionError(ErrorCode::FLOW_CONTROL_ERROR),
        ),
        row(
            "6.2: Finished / Reset × recv WINDOW_UPDATE",
            "Finished: ignored, no overflow check",
            C,
            |p| {
                let id = fin_on_wire(p);
                raw(p, S, &[wu(id, 0x7fff_ffff), wu(id, 0x7fff_ffff)]);
                id
            },
            st(S_FINISHED, R_OPEN),
            |p, id| arrive(p, S, id),
            next(st(S_FINISHED, R_OPEN), &[]),
        ),
        row(
            "6.2: Finished / Reset × recv WINDOW_UPDATE",
            "Reset: ignored, no overflow check",
            C,
            |p| {
                let id = established(p);
                reset(p, C, id);
                p.pump(C);
                raw(p, S, &[wu(id, 0x7fff_ffff), wu(id, 0x7fff_ffff)]);
                id
            },
            RESET_US,
            |p, id| arrive(p, S, id),
            next(RESET_US, &[]),
        ),
        row(
            "6.2: Open × application writes",
            "within credit: sent at once",
            C,
            established,
            st(S_OPEN, R_OPEN),
            |p, id| write(p, C, id, b"hello"),
            next(st(S_OPEN, R_OPEN), &["DATA[5]"]),
        ),
        row(
            "6.2: Open × application writes",
            "no credit left: buffered, nothing sent",
            C,
            starved,
            st(S_OPEN, R_OPEN),
            |p, id| write(p, C, id, b"more"),
            next(st(S_OPEN, R_OPEN), &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().send_buffered, 104)),
        row(
            "6.2: Open × application writes",
            "beyond the stream's send buffer (§11 L8): the writer waits, nothing sent",
            C,
            starved,
            st(S_OPEN, R_OPEN),
            |p, id| {
                let cap = config().stream_send_buffer as usize;
                let room = cap - p.core_ref(C).stats().send_buffered;
                let took = p.core(C).poll_write(id, waker(), &vec![0u8; cap]);
                assert!(matches!(took, Poll::Ready(Ok(n)) if n == room), "{took:?}");
                assert!(p.core(C).poll_write(id, waker(), b"x").is_pending());
            },
            next(st(S_OPEN, R_OPEN), &[]),
        ),
        row(
            "6.2: Open × application finishes",
            "nothing buffered: empty DATA+FIN",
            C,
            established,
            st(S_OPEN, R_OPEN),
            |p, id| finish(p, C, id),
            next(st(S_FINISHED, R_OPEN), &["DATA+FIN[0]"]),
        ),
        row(
            "6.2: Open × application finishes",
            "data waits for credit: FIN pending, the half stays Open",
            C,
            starved,
            st(S_OPEN, R_OPEN),
            |p, id| finish(p, C, id),
            next(st(S_FIN_PENDING, R_OPEN), &[]),
        ),
        row(
            "6.2: Open × recv STOP_SENDING(c)",
            "empty DATA+FIN, the writer fails with stopped(c)",
            C,
            stopped_by_server,
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, S, id),
            next(st(S_FINISHED, R_OPEN), &["DATA+FIN[0]"]),
        )
        .check(|p, id| assert_stopped(write_err(p, C, id))),
        row(
            "6.2: Open × recv STOP_SENDING(c)",
            "FIN pending with unsent data: the data is discarded, empty DATA+FIN",
            C,
            |p| {
                let id = fin_pending(p);
                stop(p, S, id);
                raw(p, S, &[wu(id, 1000)]); // credit that would have let the data go
                id
            },
            st(S_FIN_PENDING, R_OPEN),
            |p, id| arrive(p, S, id),
            next(st(S_FINISHED, R_OPEN), &["DATA+FIN[0]"]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().send_buffered, 0)),
        row(
            "6.2: Finished × recv STOP_SENDING",
            "ignored",
            C,
            |p| {
                let id = established(p);
                finish(p, C, id);
                p.pump(C); // the FIN is on the wire, not yet at the server
                stop(p, S, id);
                p.pump(S);
                id
            },
            st(S_FINISHED, R_OPEN),
            |p, id| arrive(p, S, id),
            next(st(S_FINISHED, R_OPEN), &[]),
        ),
        row(
            "6.2: Idle / Open / Finished × application resets(c), or drops the handle unfinished",
            "Idle (opener, SYN not written): no RESET, the id never reached the wire \
             (a RESET would name a never-opened id, §5.2); the acceptor's Idle half has no \
             handle to reset",
            C,
            open_unsent,
            st(S_IDLE, R_IDLE),
            |p, id| reset(p, C, id),
            next(RESET_US, &[]),
        ),
        row(
            "6.2: Idle / Open / Finished × application resets(c), or drops the handle unfinished",
            "Open: RESET(c)",
            C,
            established,
            st(S_OPEN, R_OPEN),
            |p, id| reset(p, C, id),
            next(RESET_US, &["RESET(INTERNAL_ERROR)"]),
        ),
        row(
            "6.2: Idle / Open / Finished × application resets(c), or drops the handle unfinished",
            "Open: send handle dropped unfinished: RESET(CANCEL)",
            C,
            established,
            st(S_OPEN, R_OPEN),
            |p, id| release(p, C, id, SEND),
            next(RESET_US, &["RESET(CANCEL)"]),
        ),
        row(
            "6.2: Idle / Open / Finished × application resets(c), or drops the handle unfinished",
            "Open: both handles dropped: RESET(CANCEL), the stream is freed",
            C,
            established,
            st(S_OPEN, R_OPEN),
            |p, id| release(p, C, id, SEND | RECV),
            next(None, &["RESET(CANCEL)"]),
        ),
        row(
            "6.2: Idle / Open / Finished × application resets(c), or drops the handle unfinished",
            "Finished (receive half open): RESET(c)",
            C,
            fin_on_wire,
            st(S_FINISHED, R_OPEN),
            |p, id| reset(p, C, id),
            next(RESET_US, &["RESET(INTERNAL_ERROR)"]),
        ),
        row(
            "6.2: Idle / Open / Finished × recv RESET(c)",
            "Idle (acceptor, in the backlog): freed, its id a tombstone",
            S,
            |p| {
                let id = open_sent(p);
                reset(p, C, id);
                p.pump(C);
                id
            },
            st(S_IDLE, R_OPEN),
            |p, id| arrive(p, C, id),
            next(None, &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(S).stats().unaccepted_resets, 1)),
        row(
            "6.2: Idle / Open / Finished × recv RESET(c)",
            "Open: the writer fails with reset(c)",
            C,
            |p| {
                let id = established(p);
                reset(p, S, id);
                p.pump(S);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, S, id),
            next(RESET_PEER, &[]),
        )
        .check(|p, id| assert_reset_by_peer(write_err(p, C, id))),
        row(
            "6.2: Idle / Open / Finished × recv RESET(c)",
            "Open, FIN pending: unsent data discarded",
            C,
            |p| {
                let id = fin_pending(p);
                reset(p, S, id);
                p.pump(S);
                id
            },
            st(S_FIN_PENDING, R_OPEN),
            |p, id| arrive(p, S, id),
            next(RESET_PEER, &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().send_buffered, 0)),
        row(
            "6.2: Idle / Open / Finished × recv RESET(c)",
            "Finished",
            C,
            |p| {
                let id = fin_on_wire(p);
                reset(p, S, id);
                p.pump(S);
                id
            },
            st(S_FINISHED, R_OPEN),
            |p, id| arrive(p, S, id),
            next(RESET_PEER, &[]),
        ),
        row(
            "6.2: any × session closes (§8.3)",
            "Open, we close: GOAWAY, the writer fails with the session error",
            C,
            established,
            st(S_OPEN, R_OPEN),
            |p, _| p.core(C).close(),
            next(RESET_US, &["GOAWAY(CANCEL)"]),
        )
        .check(|p, id| assert_closed_by(write_err(p, C, id), Side::Local)),
        row(
            "6.2: any × session closes (§8.3)",
            "Open, the peer closes",
            C,
            |p| {
                let id = established(p);
                p.core(S).close();
                p.pump(S);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, S, id),
            next(RESET_PEER, &[]),
        )
        .check(|p, id| assert_closed_by(write_err(p, C, id), Side::Remote)),
        row(
            "6.2: any × session closes (§8.3)",
            "Finished: the core keeps the terminal Finished (the table says 'any ... Reset'; \
             Finished is terminal, and §6.3 keeps a Finished receive half Finished)",
            C,
            fin_on_wire,
            st(S_FINISHED, R_OPEN),
            |p, _| p.core(C).close(),
            next(st(S_FINISHED, R_RESET_US), &["GOAWAY(CANCEL)"]),
        )
        .check(|p, id| {
            let err = write_err(p, C, id);
            assert!(matches!(err, Error::Finished), "a later write fails as finished: {err:?}");
        }),
        row(
            "6.2: Reset × any frame",
            "reset by us: WINDOW_UPDATE, STOP_SENDING, RESET ignored",
            C,
            |p| {
                let id = established(p);
                reset(p, C, id);
                p.pump(C);
                let frames = [
                    wu(id, 0x7fff_ffff),
                    stop_frame(id),
                    reset_frame(id),
                ];
                raw(p, S, &frames);
                id
            },
            RESET_US,
            |p, id| arrive(p, S, id),
            next(RESET_US, &[]),
        ),
        row(
            "6.2: Reset × any frame",
            "our FIN written, then our RESET crossed the peer's: the peer's RESET is ignored, \
             the stream stays reset by us (the FIN and the peer's RESET leave no doubt \
             about who reset it)",
            C,
            |p| {
                let id = fin_on_wire(p);
                reset(p, C, id);
                p.pump(C);
                reset(p, S, id);
                p.pump(S);
                id
            },
            RESET_US,
            |p, id| arrive(p, S, id),
            next(RESET_US, &[]),
        ),
        row(
            "6.2: Reset × any frame",
            "reset by the peer: WINDOW_UPDATE, STOP_SENDING, RESET ignored",
            C,
            |p| {
                let id = established(p);
                reset(p, S, id);
                deliver_from(p, S);
                let frames = [
                    wu(id, 0x7fff_ffff),
                    stop_frame(id),
                    reset_frame(id),
                ];
                raw(p, S, &frames);
                id
            },
            RESET_PEER,
            |p, id| arrive(p, S, id),
            next(RESET_PEER, &[]),
        ),
        // ===== §6.3 receive half =====
        row(
            "6.3: Idle (opener) × SYN sent",
            "",
            C,
            open_unsent,
            st(S_IDLE, R_IDLE),
            |_, _| {}, // the harness's pump writes the SYN
            next(st(S_OPEN, R_OPENING), &["DATA+SYN[0]"]),
        ),
        row(
            "6.3: — (acceptor) × recv DATA+SYN passing §6.1",
            "payload buffered, stream in the backlog",
            S,
            |p| {
                let id = open_unsent(p);
                write(p, C, id, b"hi");
                p.pump(C);
                id
            },
            None,
            |p, id| arrive(p, C, id),
            next(st(S_IDLE, R_OPEN), &[]),
        )
        .check(|p, id| {
            assert_eq!(p.core_ref(S).stats().backlog, 1);
            assert_eq!(p.core_ref(S).stream_recv(id).unwrap().buffered, 2);
        }),
        row(
            "6.3: — (acceptor) × recv DATA+SYN passing §6.1",
            "with FIN",
            S,
            |p| {
                let id = open_unsent(p);
                write(p, C, id, b"hi");
                finish(p, C, id);
                p.pump(C);
                id
            },
            None,
            |p, id| arrive(p, C, id),
            next(st(S_IDLE, R_FINISHED), &[]),
        ),
        row(
            "6.3: Opening × recv DATA with ACK",
            "payload buffered",
            C,
            |p| {
                let id = open_sent(p);
                ack_on_wire(p, id, b"yo", false);
                id
            },
            st(S_OPEN, R_OPENING),
            |p, id| arrive(p, S, id),
            next(st(S_OPEN, R_OPEN), &[]),
        )
        .check(|p, id| {
            assert_eq!(read_all(p, C, id), b"yo");
            assert_eq!(p.core_ref(C).stats().unacked_opens, 0);
        }),
        row(
            "6.3: Opening × recv DATA with ACK",
            "with FIN",
            C,
            |p| {
                let id = open_sent(p);
                ack_on_wire(p, id, b"yo", true);
                id
            },
            st(S_OPEN, R_OPENING),
            |p, id| arrive(p, S, id),
            next(st(S_OPEN, R_FINISHED), &[]),
        ),
        row(
            "6.3: Opening × recv DATA without ACK, WINDOW_UPDATE, or STOP_SENDING",
            "DATA without ACK",
            C,
            |p| {
                let id = open_sent(p);
                raw(p, S, &[data(id, Flags::NONE, b"x")]);
                id
            },
            st(S_OPEN, R_OPENING),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Opening × recv DATA without ACK, WINDOW_UPDATE, or STOP_SENDING",
            "WINDOW_UPDATE",
            C,
            |p| {
                let id = open_sent(p);
                raw(p, S, &[wu(id, 1000)]);
                id
            },
            st(S_OPEN, R_OPENING),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Opening × recv DATA without ACK, WINDOW_UPDATE, or STOP_SENDING",
            "STOP_SENDING",
            C,
            |p| {
                let id = open_sent(p);
                raw(p, S, &[stop_frame(id)]);
                id
            },
            st(S_OPEN, R_OPENING),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Opening × open timeout",
            "RESET(TIMEOUT)",
            C,
            open_sent,
            st(S_OPEN, R_OPENING),
            |p, _| p.advance(config().open_timeout),
            next(RESET_US, &["RESET(TIMEOUT)"]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().unacked_opens, 0)),
        row(
            "6.3: Opening × application stops reading(c), or drops its read side",
            "stop(c)",
            C,
            open_sent,
            st(S_OPEN, R_OPENING),
            |p, id| stop(p, C, id),
            next(st(S_OPEN, R_STOPPING_UNACKED), &["STOP_SENDING(INTERNAL_ERROR)"]),
        ),
        row(
            "6.3: Opening × application stops reading(c), or drops its read side",
            "read side dropped: STOP_SENDING(CANCEL)",
            C,
            open_sent,
            st(S_OPEN, R_OPENING),
            |p, id| release(p, C, id, RECV),
            next(st(S_OPEN, R_STOPPING_UNACKED), &["STOP_SENDING(CANCEL)"]),
        ),
        row(
            "6.3: Stopping (ACK not yet received) × recv DATA with ACK",
            "open confirmed, payload discarded",
            C,
            |p| {
                let id = open_sent(p);
                ack_on_wire(p, id, b"yo", false);
                stop(p, C, id);
                p.pump(C);
                id
            },
            st(S_OPEN, R_STOPPING_UNACKED),
            |p, id| arrive(p, S, id),
            next(st(S_OPEN, R_STOPPING), &[]),
        )
        .check(|p, id| {
            assert_eq!(p.core_ref(C).stream_recv(id).unwrap().buffered, 0);
            assert_eq!(p.core_ref(C).stats().unacked_opens, 0);
        }),
        row(
            "6.3: Stopping (ACK not yet received) × recv DATA with ACK",
            "with FIN",
            C,
            |p| {
                let id = open_sent(p);
                ack_on_wire(p, id, b"yo", true);
                stop(p, C, id);
                p.pump(C);
                id
            },
            st(S_OPEN, R_STOPPING_UNACKED),
            |p, id| arrive(p, S, id),
            next(st(S_OPEN, R_FINISHED), &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().recv_buffered, 0)),
        row(
            "6.3: Stopping (ACK not yet received) × recv DATA without ACK, WINDOW_UPDATE, or STOP_SENDING",
            "DATA without ACK",
            C,
            |p| {
                let id = open_sent(p);
                stop(p, C, id);
                raw(p, S, &[data(id, Flags::NONE, b"x")]);
                id
            },
            st(S_OPEN, R_STOPPING_UNACKED),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Stopping (ACK not yet received) × recv DATA without ACK, WINDOW_UPDATE, or STOP_SENDING",
            "WINDOW_UPDATE",
            C,
            |p| {
                let id = open_sent(p);
                stop(p, C, id);
                raw(p, S, &[wu(id, 1000)]);
                id
            },
            st(S_OPEN, R_STOPPING_UNACKED),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Stopping (ACK not yet received) × recv DATA without ACK, WINDOW_UPDATE, or STOP_SENDING",
            "STOP_SENDING",
            C,
            |p| {
                let id = open_sent(p);
                stop(p, C, id);
                raw(p, S, &[stop_frame(id)]);
                id
            },
            st(S_OPEN, R_STOPPING_UNACKED),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Stopping (ACK not yet received) × open timeout",
            "RESET(TIMEOUT)",
            C,
            stopped_before_ack,
            st(S_OPEN, R_STOPPING_UNACKED),
            |p, _| p.advance(config().open_timeout),
            next(RESET_US, &["RESET(TIMEOUT)"]),
        ),
        row(
            "6.3: Open / Stopping (ACK received) × recv DATA with ACK (repeat ACK, or ACK on a peer-opened stream)",
            "Open: repeated ACK",
            C,
            |p| {
                let id = established(p);
                raw(p, S, &[data(id, Flags::ACK, b"x")]);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Open / Stopping (ACK received) × recv DATA with ACK (repeat ACK, or ACK on a peer-opened stream)",
            "Stopping (ACK received): repeated ACK",
            C,
            |p| {
                let id = established(p);
                stop(p, C, id);
                raw(p, S, &[data(id, Flags::ACK, b"x")]);
                id
            },
            st(S_OPEN, R_STOPPING),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Open / Stopping (ACK received) × recv DATA with ACK (repeat ACK, or ACK on a peer-opened stream)",
            "Open: ACK on a peer-opened stream",
            S,
            |p| {
                let id = established(p);
                raw(p, C, &[data(id, Flags::ACK, b"x")]);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, C, id),
            SessionError(e),
        ),
        row(
            "6.3: Open × recv DATA",
            "buffered",
            S,
            more_on_wire,
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, C, id),
            next(st(S_OPEN, R_OPEN), &[]),
        )
        .check(|p, id| assert_eq!(read_all(p, S, id), b"more")),
        row(
            "6.3: Open × recv DATA",
            "with FIN",
            S,
            |p| {
                let id = established(p);
                write(p, C, id, b"more");
                finish(p, C, id);
                p.pump(C);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, C, id),
            next(st(S_OPEN, R_FINISHED), &[]),
        ),
        row(
            "6.3: Open × recv DATA",
            "beyond the stream window: session FLOW_CONTROL_ERROR",
            S,
            |p| {
                let id = established(p);
                raw(p, C, &beyond_window(id));
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, C, id),
            SessionError(ErrorCode::FLOW_CONTROL_ERROR),
        ),
        row(
            "6.3: Open × application reads",
            "a small read: no update yet",
            S,
            |p| {
                let id = more_on_wire(p);
                deliver(p, C);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| assert_eq!(read_all(p, S, id), b"more"),
            next(st(S_OPEN, R_OPEN), &[]),
        ),
        row(
            "6.3: Open × application reads",
            "a quarter window read: its credit goes back (§7.3)",
            S,
            |p| {
                let id = established(p);
                write(p, C, id, &vec![1u8; window() / 4]);
                p.pump(C);
                deliver(p, C);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| assert_eq!(read_all(p, S, id).len(), window() / 4),
            next(st(S_OPEN, R_OPEN), &["WINDOW_UPDATE"]),
        ),
        row(
            "6.3: Open × application stops reading(c), or drops its read side",
            "acceptor, stop(c): buffered bytes discarded",
            S,
            |p| {
                let id = more_on_wire(p);
                deliver(p, C);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| stop(p, S, id),
            next(st(S_OPEN, R_STOPPING), &["STOP_SENDING(INTERNAL_ERROR)"]),
        )
        .check(|p, id| {
            assert_eq!(p.core_ref(S).stream_recv(id).unwrap().buffered, 0);
            assert_eq!(p.core_ref(S).stats().recv_buffered, 0);
        }),
        row(
            "6.3: Open × application stops reading(c), or drops its read side",
            "opener, read side dropped: STOP_SENDING(CANCEL)",
            C,
            established,
            st(S_OPEN, R_OPEN),
            |p, id| release(p, C, id, RECV),
            next(st(S_OPEN, R_STOPPING), &["STOP_SENDING(CANCEL)"]),
        ),
        row(
            "6.3: Stopping (ACK received, or acceptor) × recv DATA",
            "acceptor: discarded, consumed at once",
            S,
            |p| {
                let id = stopped_by_server(p);
                write(p, C, id, b"more");
                p.pump(C);
                id
            },
            st(S_OPEN, R_STOPPING),
            |p, id| arrive(p, C, id),
            next(st(S_OPEN, R_STOPPING), &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(S).stats().recv_buffered, 0)),
        row(
            "6.3: Stopping (ACK received, or acceptor) × recv DATA",
            "opener, ACK received: discarded",
            C,
            |p| {
                let id = established(p);
                stop(p, C, id);
                p.pump(C);
                write(p, S, id, b"more");
                p.pump(S);
                id
            },
            st(S_OPEN, R_STOPPING),
            |p, id| arrive(p, S, id),
            next(st(S_OPEN, R_STOPPING), &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().recv_buffered, 0)),
        row(
            "6.3: Stopping (ACK received, or acceptor) × recv DATA",
            "with FIN: Finished",
            S,
            |p| {
                let id = stopped_by_server(p);
                write(p, C, id, b"more");
                finish(p, C, id);
                p.pump(C);
                id
            },
            st(S_OPEN, R_STOPPING),
            |p, id| arrive(p, C, id),
            next(st(S_OPEN, R_FINISHED), &[]),
        ),
        row(
            "6.3: Stopping (ACK received, or acceptor) × recv DATA",
            "beyond the stream window: session FLOW_CONTROL_ERROR",
            S,
            |p| {
                let id = established(p);
                stop(p, S, id);
                raw(p, C, &beyond_window(id));
                id
            },
            st(S_OPEN, R_STOPPING),
            |p, id| arrive(p, C, id),
            SessionError(ErrorCode::FLOW_CONTROL_ERROR),
        ),
        row(
            "6.3: Finished × recv DATA",
            "STREAM_CLOSED",
            S,
            |p| {
                let id = established(p);
                finish(p, C, id);
                deliver_from(p, C);
                raw(p, C, &[data(id, Flags::NONE, b"x")]);
                id
            },
            st(S_OPEN, R_FINISHED),
            |p, id| arrive(p, C, id),
            SessionError(ErrorCode::STREAM_CLOSED),
        ),
        row(
            "6.3: Idle / Opening / Open / Stopping × recv RESET(c)",
            "Idle (SYN not written): the peer cannot know the id; §5.2 makes it PROTOCOL_ERROR",
            C,
            |p| {
                let id = open_unsent(p);
                raw(p, S, &[reset_frame(id)]);
                id
            },
            st(S_IDLE, R_IDLE),
            |p, id| arrive(p, S, id),
            SessionError(e),
        ),
        row(
            "6.3: Idle / Opening / Open / Stopping × recv RESET(c)",
            "Opening",
            C,
            |p| {
                let id = open_sent(p);
                raw(p, S, &[reset_frame(id)]);
                id
            },
            st(S_OPEN, R_OPENING),
            |p, id| arrive(p, S, id),
            next(RESET_PEER, &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().unacked_opens, 0)),
        row(
            "6.3: Idle / Opening / Open / Stopping × recv RESET(c)",
            "Opening, refused (BACKLOG_FULL)",
            C,
            |p| {
                let id = open_sent(p);
                let refusal = Frame::Reset {
                    stream: id,
                    code: ErrorCode::BACKLOG_FULL,
                };
                raw(p, S, &[refusal]);
                id
            },
            st(S_OPEN, R_OPENING),
            |p, id| arrive(p, S, id),
            next(RESET_PEER, &[]),
        ),
        row(
            "6.3: Idle / Opening / Open / Stopping × recv RESET(c)",
            "Open: unread data discarded, the reader fails with reset(c)",
            S,
            |p| {
                let id = established(p);
                write(p, C, id, b"more");
                reset(p, C, id);
                p.pump(C);
                id
            },
            st(S_OPEN, R_OPEN),
            |p, id| arrive(p, C, id),
            next(RESET_PEER, &[]),
        )
        .check(|p, id| {
            assert_eq!(p.core_ref(S).stats().recv_buffered, 0);
            assert_reset_by_peer(read_err(p, S, id));
        }),
        row(
            "6.3: Idle / Opening / Open / Stopping × recv RESET(c)",
            "Stopping",
            S,
            |p| {
                let id = stopped_by_server(p);
                reset(p, C, id);
                p.pump(C);
                id
            },
            st(S_OPEN, R_STOPPING),
            |p, id| arrive(p, C, id),
            next(RESET_PEER, &[]),
        ),
        row(
            "6.3: Finished (send half still open) × recv RESET(c)",
            "unread data discarded, reads fail with reset(c)",
            S,
            |p| {
                let id = finished_unread(p);
                reset(p, C, id);
                p.pump(C);
                id
            },
            st(S_OPEN, R_FINISHED),
            |p, id| arrive(p, C, id),
            next(RESET_PEER, &[]),
        )
        .check(|p, id| {
            assert_eq!(p.core_ref(S).stats().recv_buffered, 0);
            let err = read_err(p, S, id);
            assert!(matches!(err, Error::StreamReset { by: Side::Remote, .. }), "{err:?}");
        }),
        row(
            "6.3: Opening / Open / Stopping / Finished × application resets(c)",
            "Opening",
            C,
            open_sent,
            st(S_OPEN, R_OPENING),
            |p, id| reset(p, C, id),
            next(RESET_US, &["RESET(INTERNAL_ERROR)"]),
        )
        .check(|p, _| assert_eq!(p.core_ref(C).stats().unacked_opens, 0)),
        row(
            "6.3: Opening / Open / Stopping / Finished × application resets(c)",
            "Open",
            S,
            established,
            st(S_OPEN, R_OPEN),
            |p, id| reset(p, S, id),
            next(RESET_US, &["RESET(INTERNAL_ERROR)"]),
        ),
        row(
            "6.3: Opening / Open / Stopping / Finished × application resets(c)",
            "Stopping",
            S,
            stopped_by_server,
            st(S_OPEN, R_STOPPING),
            |p, id| reset(p, S, id),
            next(RESET_US, &["RESET(INTERNAL_ERROR)"]),
        ),
        row(
            "6.3: Opening / Open / Stopping / Finished × application resets(c)",
            "Finished (send half open)",
            S,
            finished_unread,
            st(S_OPEN, R_FINISHED),
            |p, id| reset(p, S, id),
            next(RESET_US, &["RESET(INTERNAL_ERROR)"]),
        )
        .check(|p, _| assert_eq!(p.core_ref(S).stats().recv_buffered, 0)),
        row(
            "6.3: Reset (by us) × recv DATA",
            "discarded, nothing buffered (counted as consumed at the session level)",
            S,
            |p| {
                let id = more_on_wire(p);
                reset(p, S, id);
                p.pump(S);
                id
            },
            RESET_US,
            |p, id| arrive(p, C, id),
            next(RESET_US, &[]),
        )
        .check(|p, _| assert_eq!(p.core_ref(S).stats().recv_buffered, 0)),
        row(
            "6.3: Reset (by peer) × recv DATA",
            "STREAM_CLOSED",
            S,
            |p| {
                let id = established(p);
                reset(p, C, id);
                deliver_from(p, C);
                raw(p, C, &[data(id, Flags::NONE, b"x")]);
                id
            },
            RESET_PEER,
            |p, id| arrive(p, C, id),
            SessionError(ErrorCode::STREAM_CLOSED),
        ),
        row(
            "6.3: any but Finished × session closes (§8.3)",
            "Open, we close: the reader fails with the session error",
            S,
            established,
            st(S_OPEN, R_OPEN),
            |p, _| p.core(S).close(),
            next(RESET_US, &["GOAWAY(CANCEL)"]),
        )
        .check(|p, id| assert_closed_by(read_err(p, S, id), Side::Local)),
        row(
            "6.3: any but Finished × session closes (§8.3)",
            "Opening, we close",
            C,
            open_sent,
            st(S_OPEN, R_OPENING),
            |p, _| p.core(C).close(),
            next(RESET_US, &["GOAWAY(CANCEL)"]),
        ),
        row(
            "6.3: any but Finished × session closes (§8.3)",
            "Stopping, the peer closes",
            S,
            |p| {
                let id = stopped_by_server(p);
                p.core(C).close();
                p.pump(C);
                id
            },
            st(S_OPEN, R_STOPPING),
            |p, id| arrive(p, C, id),
            next(RESET_PEER, &[]),
        )
        .check(|p, id| assert_closed_by(read_err(p, S, id), Side::Remote)),
        row(
            "6.3: Finished × session closes (§8.3)",
            "unread data stays readable, then end-of-stream",
            S,
            finished_unread,
            st(S_OPEN, R_FINISHED),
            |p, _| p.core(S).close(),
            next(st(S_RESET, R_FINISHED), &["GOAWAY(CANCEL)"]),
        )
        .check(|p, id| {
            assert_eq!(read_all(p, S, id), b"bye");
            let end = p.core(S).poll_read(id, waker(), &mut [0u8; 1]);
            assert!(matches!(end, Poll::Ready(Ok(0))), "{end:?}");
        }),
    ]
}

/// DATA frames (each within the frame size limit) carrying one byte more than the stream's
/// initial window.
fn beyond_window(id: u32) -> Vec<Frame> {
    let chunk = 16 * 1024;
    let mut left = window() + 1;
    let mut frames = Vec::new();
    while left > 0 {
        let n = left.min(chunk);
        frames.push(data_frame(id, Flags::NONE, vec![0u8; n].into()));
        left -= n;
    }
    frames
}

fn stop_frame(id: u32) -> Frame {
    Frame::StopSending {
        stream: id,
        code: ErrorCode::CANCEL,
    }
}

fn reset_frame(id: u32) -> Frame {
    Frame::Reset {
        stream: id,
        code: ErrorCode::CANCEL,
    }
}

/// Runs one entry; panics with the row's label on a mismatch.
fn run(r: &Row) {
    let what = format!("[{}] {}", r.label, r.variant);
    let mut p = Pair::connected(config());
    let id = (r.setup)(&mut p);
    assert!(
        p.core_ref(r.at).error().is_none(),
        "{what}: setup failed the session"
    );
    assert_eq!(
        p.core_ref(r.at).stream_state(id),
        r.before,
        "{what}: state before the event"
    );
    p.take_events();
    (r.event)(&mut p, id);
    p.pump(r.at);
    let sent: Vec<String> = p
        .take_events()
        .iter()
        .filter_map(|e| match e {
            Event::Sent(end, f) if *end == r.at => Some(f),
            _ => None,
        })
        .filter(|f| f.stream_id() == id || matches!(f, Frame::GoAway { .. }))
        .map(describe)
        .collect();
    let core = p.core_ref(r.at);
    match &r.expect {
        Expect::Next { state, frames } => {
            // Only the session-close rows end the session.
            assert!(
                core.error().is_none() || r.label.contains("session closes"),
                "{what}: unexpected session error {:?}",
                core.error()
            );
            assert_eq!(core.stream_state(id), *state, "{what}: next state");
            assert_eq!(sent, *frames, "{what}: frames sent");
        }
        Expect::SessionError(code) => {
            let err = core
                .error()
                .unwrap_or_else(|| panic!("{what}: no session error"));
            assert_eq!(err.code(), Some(*code), "{what}: session error {err:?}");
            let goaway = format!("GOAWAY({code})");
            assert!(sent.contains(&goaway), "{what}: sent {sent:?}, no {goaway}");
        }
    }
    (r.check)(&mut p, id);
}

#[test]
fn every_row_of_the_stream_state_tables() {
    // Every entry runs; the failures are reported together.
    let rows = rows();
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| std::panic::catch_unwind(|| run(r)).is_err())
        .map(|r| format!("[{}] {}", r.label, r.variant))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} entries failed (see the panics above):\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
}

/// The rows of spec §6.2 and §6.3 as "6.x: <State> × <Event>", read from the spec.
fn spec_rows() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/PROTOCOL.md");
    let spec = std::fs::read_to_string(path).expect("spec/PROTOCOL.md");
    let mut section = None;
    let mut out = Vec::new();
    for line in spec.lines() {
        if line.starts_with("### 6.2 ") {
            section = Some("6.2");
        } else if line.starts_with("### 6.3 ") {
            section = Some("6.3");
        } else if line.starts_with("### 6.4 ") {
            break;
        }
        let Some(sec) = section else { continue };
        if !line.starts_with('|') || line.starts_with("|---") || line.starts_with("| State ") {
            continue;
        }
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cols.len() >= 5, "unexpected table line in §{sec}: {line}");
        out.push(format!("{sec}: {} × {}", cols[1], cols[2]));
    }
    out
}

#[test]
fn the_table_covers_every_spec_row() {
    let spec = spec_rows();
    // Parsing sanity: both tables were found (13 and 22 rows when this was written).
    assert!(
        spec.iter().any(|r| r.starts_with("6.2: ")),
        "no §6.2 rows parsed"
    );
    assert!(
        spec.iter().any(|r| r.starts_with("6.3: ")),
        "no §6.3 rows parsed"
    );
    let covered: BTreeSet<String> = rows().iter().map(|r| r.label.to_string()).collect();
    let wanted: BTreeSet<String> = spec.iter().cloned().collect();
    let missing: Vec<_> = wanted.difference(&covered).collect();
    let unknown: Vec<_> = covered.difference(&wanted).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "spec rows without an entry: {missing:#?}\nentries naming no spec row: {unknown:#?}"
    );
    assert_eq!(
        covered.len(),
        spec.len(),
        "duplicate rows in the spec tables"
    );
}

/// A half's state lives in the stream, not in the session's bounded memory of closed ids
/// (§6.6, L18): a receive half we stopped, whose FIN then arrived, stays Finished (its reads
/// still failing with our stop) after that memory has forgotten the id, for as long as a
/// handle holds the stream.
#[test]
fn a_stopped_then_finished_half_outlives_the_closed_id_memory() {
    let mut p = Pair::connected(config().with_closed_stream_memory(1));
    let id = established(&mut p);
    stop(&mut p, S, id);
    deliver_from(&mut p, S); // STOP_SENDING reaches the client, which answers with its FIN
    deliver_from(&mut p, C);
    assert_eq!(p.core_ref(S).stream_state(id), st(S_OPEN, R_FINISHED));
    // Another stream ends at the server, and the one-entry memory forgets `id`.
    let other = established(&mut p);
    reset(&mut p, S, other);
    deliver_from(&mut p, S);
    assert_eq!(p.core_ref(S).stream_state(other), RESET_US);
    assert_eq!(p.core_ref(S).stream_state(id), st(S_OPEN, R_FINISHED));
    let err = read_err(&mut p, S, id);
    assert!(
        matches!(err, Error::StreamReset { by: Side::Local, code } if code == ErrorCode::INTERNAL_ERROR),
        "{err:?}"
    );
}

/// A stream the application resets before accepting it (its id is known, ids being
/// sequential) stays in the backlog: `poll_accept` still hands it out, reset, and it is not
/// taken for the tombstone of a stream the peer reset, so the backlog's count and the
/// rapid-reset count (§11 L17) stay right.
#[test]
fn a_stream_reset_before_its_accept_is_still_accepted_and_no_tombstone() {
    let mut p = Pair::connected(config());
    let first = open_sent(&mut p);
    let second = open_sent(&mut p);
    let third = open_sent(&mut p);
    reset(&mut p, S, first); // ours, before the accept
    reset(&mut p, C, third); // the peer's: a tombstone
    deliver_from(&mut p, C);
    assert_eq!(p.core_ref(S).stats().unaccepted_resets, 1);
    assert_eq!(p.core_ref(S).stats().backlog, 2);
    assert_eq!(accept(&mut p), first);
    assert_eq!(p.core_ref(S).stream_state(first), RESET_US);
    assert_eq!(accept(&mut p), second);
    let stats = p.core_ref(S).stats();
    assert_eq!((stats.backlog, stats.unaccepted_resets), (0, 1));
}

/// A failed session frees the streams still waiting in its accept backlog: nothing can
/// accept them any more, and their buffered bytes go with them.
#[test]
fn a_failed_session_frees_the_streams_nobody_accepted() {
    let mut p = Pair::connected(config());
    let id = open_unsent(&mut p);
    write(&mut p, C, id, b"abc");
    deliver_from(&mut p, C);
    assert_eq!(p.core_ref(S).stats().recv_buffered, 3);
    p.core(S).abandon(std::io::Error::other("gone"));
    let stats = p.core_ref(S).stats();
    assert_eq!((stats.tracked_streams, stats.recv_buffered), (0, 0));
    assert_eq!(p.core_ref(S).stream_state(id), None);
}
