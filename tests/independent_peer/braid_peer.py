#!/usr/bin/env python3
"""An independent braid peer, written from spec/PROTOCOL.md alone (standard library only).

It shares no code with the Rust crate: it exists to keep the spec honest. tests/independent_peer.rs
runs it against braid in both roles.

Usage:
    braid_peer.py client HOST:PORT   connect, run the client script below, end with our GOAWAY
    braid_peer.py server             listen on 127.0.0.1:0, print "PORT <n>" on stdout, serve
                                     until the peer's GOAWAY ends the session

Exit status 0 on success; 1 with a message on stderr on any mismatch or protocol violation by
the peer (after sending GOAWAY with the code, §8.3). Every wait has a deadline: the whole run
is bounded by DEADLINE_S seconds.

Per-stream command protocol (both implementations serve it on every stream they accept).
The opener's first bytes on a stream are one ASCII line; the acceptor reads it and acts:

    echo              send back every byte after the line until the opener's FIN, then FIN
    sink              read to FIN, then reply "<count> <crc32 as 8 hex digits>\n" and FIN
                      (count and zlib/IEEE CRC-32 of the bytes after the line)
    source N          read to FIN first (the opener half-closes at once), then send N bytes of
                      the pattern (byte i = i % 251) and FIN
    reset CODE        RESET the stream with CODE (decimal) right away
    flood CODE        send the pattern until the opener's STOP_SENDING; it must carry CODE;
                      the writer fails with stopped(CODE) and FIN goes out; then read to FIN
    stop CODE         send STOP_SENDING(CODE) at once; the opener (which keeps writing) must
                      answer with FIN; then send "stopped\n" and FIN
    expect-reset CODE send "ready\n", then read: the opener must RESET the stream with CODE
    ping              PING the peer (and check the ACK), read to FIN, send "pong\n" and FIN
    callback          open a new stream towards the opener: "echo\n" + 256 KiB, FIN, check the
                      echo; then read to FIN, send "ok\n" and FIN

Client script (role "client"): echo 1 MiB, sink 1 MiB and source 1 MiB concurrently; then reset,
flood, stop, expect-reset, ping (plus a PING of our own) and callback; then GOAWAY(NO_ERROR):
the peer must close the transport once no stream is left, and we must see EOF.
Server script (role "server"): serve until the peer's GOAWAY(NO_ERROR) and EOF; every command
above must have been served once.
"""

import os
import random
import socket
import struct
import sys
import threading
import time
import traceback
import zlib
import queue

DEADLINE_S = 20.0
DEADLINE = time.monotonic() + DEADLINE_S

# §4 frame types and flags
DATA, WINDOW_UPDATE, PING, GOAWAY, RESET, STOP_SENDING = range(6)
TYPE_NAMES = ["DATA", "WINDOW_UPDATE", "PING", "GOAWAY", "RESET", "STOP_SENDING"]
SYN, ACK, FIN = 0x1, 0x2, 0x4
DEFINED_FLAGS = {DATA: SYN | ACK | FIN, WINDOW_UPDATE: 0, PING: ACK, GOAWAY: 0, RESET: 0, STOP_SENDING: 0}

# §9 error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x4, 0x5, 0x6, 0x7
ENHANCE_YOUR_CALM, TIMEOUT, VERSION_MISMATCH, BACKLOG_FULL = 0x8, 0x9, 0xA, 0xB

MAGIC = b"\x8bBRAID\r\n"
MAX_CREDIT = 2**31 - 1

# Our preface (§2). A small stream window so that flow control cycles many times per MiB.
OWN_ISW = 64 * 1024
OWN_SESSION_WINDOW = 256 * 1024
OWN_MAX_CONCURRENT = 64
OWN_BACKLOG = 16
OWN_MFP = 16 * 1024

# Application codes our client script uses (§9: 0x100.. is the application range).
CODE_RESET = 0x0001_2301
CODE_FLOOD = 0x0001_2302
CODE_STOP = 0x0001_2303
CODE_EXPECT_RESET = 0x0001_2304

PATTERN = bytes(range(251)) * 300  # slice at offset % 251 for a continuous pattern
BULK = 1 << 20


def remaining():
    return DEADLINE - time.monotonic()


_fail_lock = threading.Lock()
_session = None


def fail(msg):
    """Print why, with a state dump, and exit 1 at once (from any thread)."""
    with _fail_lock:
        sys.stderr.write("braid_peer: FAIL: %s\n" % msg)
        if _session is not None:
            try:
                sys.stderr.write(_session.dump())
            except Exception:  # the dump is best effort
                pass
        sys.stderr.flush()
        os._exit(1)


def log(msg):
    sys.stderr.write("braid_peer: %s\n" % msg)
    sys.stderr.flush()


def pattern(offset, n):
    """n bytes of the pattern (byte i = i % 251) starting at stream offset `offset`."""
    start = offset % 251
    if start + n <= len(PATTERN):
        return PATTERN[start:start + n]
    return (bytes(range(251)) * ((start + n) // 251 + 1))[start:start + n]


class Violation(Exception):
    """The peer broke the spec: a session error with `code` (§8.3)."""

    def __init__(self, code, msg):
        Exception.__init__(self, msg)
        self.code = code


class StreamError(Exception):
    """What a read or write on a stream fails with: kind is reset / stopped / refused / session."""

    def __init__(self, kind, code, by=None):
        Exception.__init__(self, "%s(code=%#x, by=%s)" % (kind, code, by))
        self.kind, self.code, self.by = kind, code, by


class Stream:
    def __init__(self, sess, sid, local):
        self.s = sess
        self.id = sid
        self.local = local  # we are the opener
        self.send = "idle"  # idle / open / finished / reset (§6.2)
        self.recv = "opening" if local else "open"  # opening / open / stopping / finished / reset (§6.3)
        self.acked = not local  # opener: ACK received
        self.send_credit = sess.peer["isw"]  # §7.1
        self.recv_credit = OWN_ISW
        self.consumed = 0  # consumed since our last WINDOW_UPDATE for it (§7.3)
        self.buf = bytearray()  # received, unread
        self.pushback = b""  # application-level lookahead (line reading)
        self.error = None  # StreamError once reset / refused / session failed
        self.stopped = None  # code of a STOP_SENDING received
        self.reset_by = None  # "us" / "peer"

    def closed(self):
        return self.send in ("finished", "reset") and self.recv in ("finished", "reset")

    # --- application side (called from scenario threads) ---

    def read(self, maxn=65536):
        """Up to maxn bytes; b"" only after the peer's FIN; raises StreamError on reset."""
        if self.pushback:
            out, self.pushback = self.pushback[:maxn], self.pushback[maxn:]
            return out
        s = self.s
        with s.cv:
            s.wait_for(lambda: self.buf or self.recv in ("finished", "reset", "stopping") or self.error,
                       "data on stream %d" % self.id)
            if self.recv == "reset" or (self.error and not self.buf):
                raise self.error
            if self.recv == "stopping":
                raise StreamError("read-after-stop", 0)
            if self.buf:
                n = min(maxn, len(self.buf))
                out = bytes(self.buf[:n])
                del self.buf[:n]
                s.consume(self, n)
                return out
            return b""  # finished

    def read_line(self):
        line = b""
        while b"\n" not in line:
            chunk = self.read()
            if not chunk:
                raise StreamError("eof-before-line", 0)
            line += chunk
            if b"\n" not in line and len(line) > 4096:
                raise StreamError("line-too-long", 0)
        i = line.index(b"\n") + 1
        self.pushback = line[i:] + self.pushback
        return line[:i]

    def read_to_end(self):
        out = bytearray()
        while True:
            chunk = self.read()
            if not chunk:
                return bytes(out)
            out += chunk

    def write(self, data):
        s = self.s
        off = 0
        while off < len(data):
            with s.cv:
                def ready():
                    if self.error or self.stopped is not None or self.send != "open":
                        return True
                    # §7.4.1: no tiny frames; wait until credit covers a reasonable frame.
                    need = min(len(data) - off, s.peer["isw"] // 4, 4096)
                    return self.send_credit >= need and s.send_session_credit >= need
                s.wait_for(ready, "send credit on stream %d" % self.id)
                if self.error:
                    raise self.error
                if self.stopped is not None:
                    raise StreamError("stopped", self.stopped, "peer")
                if self.send != "open":
                    raise StreamError("write-after-" + self.send, 0)
                n = min(len(data) - off, self.send_credit, s.send_session_credit, s.peer["mfp"])
                s.send_frame(DATA, 0, self.id, bytes(data[off:off + n]))
                self.send_credit -= n
                s.send_session_credit -= n
                s.bytes_out += n
                off += n

    def finish(self):
        s = self.s
        with s.cv:
            if self.error:
                raise self.error
            if self.send == "open":
                s.send_frame(DATA, FIN, self.id, b"")
                self.send = "finished"
                s.state_changed()

    def stop(self, code):
        """STOP_SENDING(code): discard what arrives until the peer's FIN (§6.4)."""
        s = self.s
        with s.cv:
            if self.recv in ("opening", "open"):
                s.send_frame(STOP_SENDING, 0, self.id, struct.pack(">I", code))
                self.recv = "stopping"
                n = len(self.buf)
                self.buf.clear()
                s.consume_session(n)
                s.state_changed()

    def reset(self, code):
        s = self.s
        with s.cv:
            if not self.closed():
                s.send_frame(RESET, 0, self.id, struct.pack(">I", code))
                s.mark_reset(self, "us", code)

    def wait_recv_done(self):
        s = self.s
        with s.cv:
            s.wait_for(lambda: self.recv in ("finished", "reset"), "end of stream %d's receive half" % self.id)
            return self.recv


SHUTDOWN = object()


class Session:
    def __init__(self, sock, client):
        self.sock = sock
        self.client = client
        self.cv = threading.Condition()
        self.outq = queue.SimpleQueue()
        self.rbuf = bytearray()
        self.peer = None  # the peer's preface settings
        self.streams = {}
        self.backlog = []
        self.next_id = 1 if client else 2
        self.last_local_id = 0
        self.last_peer_id = 0
        self.send_session_credit = 0
        self.recv_session_credit = OWN_SESSION_WINDOW
        self.session_consumed = 0
        self.goaway_sent = None  # last_stream_id of our GOAWAY
        self.goaway_received = None  # smallest last_stream_id received
        self.goaway_code = None
        self.closing = False  # transport write side shut down (or about to be)
        self.write_closed = False
        self.write_error = None
        self.eof = False
        self.ended_cleanly = False
        self.ping_outstanding = None
        self.pending_ping_replies = 0
        self.pings_answered = 0
        self.pings_acked = 0
        self.empty_frames = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.frames_in = [0] * 6
        self.frames_out = [0] * 6
        self.served = {}

    # --- plumbing ---

    def wait_for(self, pred, what):
        """With self.cv held: wait until pred() holds, the session died, or the deadline."""
        while not pred():
            if self.eof and not pred():
                raise StreamError("session-ended", 0)
            left = remaining()
            if left <= 0:
                fail("timed out waiting for " + what)
            self.cv.wait(min(left, 1.0))

    def send_frame(self, ftype, flags, sid, payload, ping_reply=False):
        """Queue one frame (with self.cv held, so queue order matches state order)."""
        frame = struct.pack(">BBHII", ftype, flags, 0, sid, len(payload)) + payload
        self.frames_out[ftype] += 1
        self.outq.put((frame, ping_reply))

    def start(self):
        preface = MAGIC + struct.pack(">HHIIIII", 1, 0, OWN_ISW, OWN_SESSION_WINDOW,
                                      OWN_MAX_CONCURRENT, OWN_BACKLOG, OWN_MFP)
        self.outq.put((preface, False))  # §2: first, immediately, without waiting for the peer's
        threading.Thread(target=self.writer, daemon=True).start()
        threading.Thread(target=self.reader, daemon=True).start()
        with self.cv:
            self.wait_for(lambda: self.peer is not None, "the peer's preface")

    def writer(self):
        while True:
            item = self.outq.get()
            batch = [item]
            size = len(item[0]) if item is not SHUTDOWN else 0
            while size < 256 * 1024 and item is not SHUTDOWN:
                try:
                    item = self.outq.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                if item is not SHUTDOWN:
                    size += len(item[0])
            out = bytearray()
            replies = 0
            shutdown = False
            for it in batch:
                if it is SHUTDOWN:
                    shutdown = True
                    break
                out += it[0]
                replies += it[1]
            if out and not self.write_closed and self.write_error is None:
                try:
                    self.sock.sendall(out)
                except OSError as e:
                    with self.cv:
                        self.write_error = e
                        self.cv.notify_all()
            if shutdown and not self.write_closed:
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            with self.cv:
                self.pending_ping_replies -= replies
                if shutdown:
                    self.write_closed = True
                self.cv.notify_all()

    def recv_exact(self, n, eof_ok=False):
        while len(self.rbuf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.rbuf)))
            except OSError as e:
                fail("transport read error: %r (after %d bytes of a %d-byte unit)" % (e, len(self.rbuf), n))
            if not chunk:
                if eof_ok and not self.rbuf:
                    return None
                fail("transport EOF in the middle of a frame or preface (§10 V38)")
            self.rbuf += chunk
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def reader(self):
        try:
            self.read_preface()
            while True:
                hdr = self.recv_exact(12, eof_ok=True)
                if hdr is None:
                    self.on_eof()
                    return
                self.handle_frame(hdr)
        except Violation as v:
            self.session_error(v.code, str(v))
        except Exception:
            fail("reader crashed:\n" + traceback.format_exc())

    def session_error(self, code, msg):
        """§8.3: stop reading, GOAWAY(last_peer_id, code), shut down, fail."""
        with self.cv:
            self.send_frame(GOAWAY, 0, 0, struct.pack(">II", self.last_peer_id, code) + msg.encode()[:1024])
            self.outq.put(SHUTDOWN)
            self.closing = True
            end = time.monotonic() + 1.0
            while not self.write_closed and time.monotonic() < end:
                self.cv.wait(0.1)
        fail("peer violated the spec: %s (sent GOAWAY code %#x)" % (msg, code))

    # --- §2 preface ---

    def read_preface(self):
        head = self.recv_exact(10)
        if head[:8] != MAGIC:
            raise Violation(PROTOCOL_ERROR, "preface magic %r" % head[:8])
        (version,) = struct.unpack(">H", head[8:10])
        if version != 1:
            raise Violation(VERSION_MISMATCH, "preface version %d" % version)
        rest = self.recv_exact(22)
        _rsv, isw, sw, mcs, backlog, mfp = struct.unpack(">HIIIII", rest)
        if not 1024 <= isw <= MAX_CREDIT:
            raise Violation(PROTOCOL_ERROR, "initial_stream_window %d out of range" % isw)
        if not isw <= sw <= MAX_CREDIT:
            raise Violation(PROTOCOL_ERROR, "session_window %d out of range" % sw)
        if mcs < 1 or backlog < 1:
            raise Violation(PROTOCOL_ERROR, "max_concurrent_streams %d / accept_backlog %d" % (mcs, backlog))
        if not 1024 <= mfp <= 16 * 1024 * 1024:
            raise Violation(PROTOCOL_ERROR, "max_frame_payload %d out of range" % mfp)
        with self.cv:
            self.peer = dict(isw=isw, sw=sw, mcs=mcs, backlog=backlog, mfp=mfp)
            self.send_session_credit = sw
            self.cv.notify_all()

    # --- §3 header validation, §4 dispatch ---

    def local_parity(self, sid):
        return (sid % 2 == 1) == self.client

    def handle_frame(self, hdr):
        ftype, flags, rsv, sid, length = struct.unpack(">BBHII", hdr)
        if ftype > 5:
            raise Violation(PROTOCOL_ERROR, "unknown frame type %#x" % ftype)
        if flags & ~DEFINED_FLAGS[ftype]:
            raise Violation(PROTOCOL_ERROR, "flags %#x not defined for %s" % (flags, TYPE_NAMES[ftype]))
        if rsv:
            raise Violation(PROTOCOL_ERROR, "header reserved bits %#x" % rsv)
        if (ftype in (PING, GOAWAY)) != (sid == 0) and ftype != WINDOW_UPDATE:
            raise Violation(PROTOCOL_ERROR, "%s on stream id %d" % (TYPE_NAMES[ftype], sid))
        if ftype == DATA:
            ok = length <= OWN_MFP
        elif ftype == PING:
            ok = length == 8
        elif ftype == GOAWAY:
            ok = 8 <= length <= 1032
        else:
            ok = length == 4
        if not ok:
            raise Violation(FRAME_SIZE_ERROR, "%s with length %d" % (TYPE_NAMES[ftype], length))
        self.frames_in[ftype] += 1
        if ftype == DATA:
            with self.cv:
                action, st = self.data_header(sid, flags, length)
            payload = self.recv_exact(length)
            with self.cv:
                self.data_payload(action, st, flags, payload)
                self.cv.notify_all()
            return
        payload = self.recv_exact(length)
        with self.cv:
            if ftype == WINDOW_UPDATE:
                self.on_window_update(sid, struct.unpack(">I", payload)[0])
            elif ftype == PING:
                self.on_ping(flags, payload)
            elif ftype == GOAWAY:
                self.on_goaway(payload)
            elif ftype == RESET:
                self.on_reset(sid, struct.unpack(">I", payload)[0])
            else:
                self.on_stop_sending(sid, struct.unpack(">I", payload)[0])
            self.cv.notify_all()

    def lookup(self, sid, what):
        """§5.2 for a frame without SYN: the stream, or None for a forgotten / gap id."""
        st = self.streams.get(sid)
        if st is not None:
            return st
        if self.local_parity(sid):
            if sid > self.last_local_id:
                raise Violation(PROTOCOL_ERROR, "%s on local-parity id %d never opened" % (what, sid))
        elif sid > self.last_peer_id:
            raise Violation(PROTOCOL_ERROR, "%s on peer-parity id %d never opened" % (what, sid))
        return None

    def take_session_credit(self, length):
        if length > self.recv_session_credit:
            raise Violation(FLOW_CONTROL_ERROR, "DATA of %d beyond session credit %d (§10 V23)"
                            % (length, self.recv_session_credit))
        self.recv_session_credit -= length
        self.bytes_in += length

    def data_header(self, sid, flags, length):
        """§3 step 6 and §6.1: everything decided from the header. Returns (action, stream)."""
        if flags & SYN:
            if flags & ACK:
                raise Violation(PROTOCOL_ERROR, "SYN and ACK on one frame (V14)")
            if self.local_parity(sid):
                raise Violation(PROTOCOL_ERROR, "SYN on local-parity id %d (V12)" % sid)
            if sid <= self.last_peer_id:
                raise Violation(PROTOCOL_ERROR, "SYN on id %d <= last_peer_id %d (V13)" % (sid, self.last_peer_id))
            if length > OWN_ISW:
                raise Violation(FLOW_CONTROL_ERROR, "SYN carrying %d > initial window (V24)" % length)
            self.take_session_credit(length)
            self.last_peer_id = sid
            st = Stream(self, sid, local=False)
            st.recv_credit -= length
            self.streams[sid] = st
            live_inbound = sum(1 for x in self.streams.values() if not x.local and not x.closed()) - 1
            refuse = None
            if self.goaway_sent is not None and sid > self.goaway_sent:
                refuse = REFUSED_STREAM
            elif live_inbound >= OWN_MAX_CONCURRENT:
                refuse = REFUSED_STREAM
            elif len(self.backlog) >= OWN_BACKLOG:
                refuse = BACKLOG_FULL
            if refuse is not None:
                log("refusing stream %d with %#x" % (sid, refuse))
                self.send_frame(RESET, 0, sid, struct.pack(">I", refuse))
                self.mark_reset(st, "us", refuse)
                return "discard", st
            return "new", st
        st = self.lookup(sid, "DATA")
        if st is None or st.recv == "reset":
            if st is not None and st.reset_by == "peer":
                raise Violation(STREAM_CLOSED, "DATA on stream %d after the peer's RESET (V20)" % sid)
            self.take_session_credit(length)  # V21: discard, consumed at once
            return "discard", st
        if st.recv == "finished":
            raise Violation(STREAM_CLOSED, "DATA on stream %d after the peer's FIN (V19)" % sid)
        if flags & ACK:
            if not st.local or st.acked:
                raise Violation(PROTOCOL_ERROR, "ACK on peer-opened stream %d or a second ACK (V18)" % sid)
            st.acked = True
            if st.recv == "opening":
                st.recv = "open"
        elif st.local and not st.acked:
            raise Violation(PROTOCOL_ERROR, "acceptor's first DATA on stream %d without ACK (V17)" % sid)
        if st.recv == "stopping":
            self.take_session_credit(length)
            return "discard", st
        if length > st.recv_credit:
            raise Violation(FLOW_CONTROL_ERROR, "DATA of %d on stream %d beyond its credit %d (V22)"
                            % (length, sid, st.recv_credit))
        self.take_session_credit(length)
        st.recv_credit -= length
        return "buffer", st

    def data_payload(self, action, st, flags, payload):
        if action == "new":
            st.buf += payload
            if flags & FIN:
                st.recv = "finished"
            self.backlog.append(st)
        elif action == "buffer":
            if st.recv == "open":
                st.buf += payload
            else:  # the application stopped or reset it while we read the payload
                self.consume_session(len(payload))
            if flags & FIN and st.recv in ("open", "stopping"):
                st.recv = "finished"
        else:
            self.consume_session(len(payload))
            if st is not None and flags & FIN and st.recv == "stopping":
                st.recv = "finished"
        if not payload and not flags:
            self.empty_frames += 1  # V31
        self.state_changed()

    def on_window_update(self, sid, inc):
        if inc == 0:
            self.empty_frames += 1  # V30
        if sid == 0:
            if self.send_session_credit + inc > MAX_CREDIT:
                raise Violation(FLOW_CONTROL_ERROR, "session credit above 2^31-1 (V26)")
            self.send_session_credit += inc
            return
        st = self.lookup(sid, "WINDOW_UPDATE")
        if st is None or st.closed():
            return
        if st.local and not st.acked and st.send != "reset":
            raise Violation(PROTOCOL_ERROR, "WINDOW_UPDATE on stream %d before its ACK (V17)" % sid)
        if st.send in ("finished", "reset"):
            return
        if st.send_credit + inc > MAX_CREDIT:
            raise Violation(FLOW_CONTROL_ERROR, "stream %d credit above 2^31-1 (V25)" % sid)
        st.send_credit += inc

    def on_ping(self, flags, payload):
        if flags & ACK:
            if self.ping_outstanding is not None and payload == self.ping_outstanding:
                self.ping_outstanding = None
                self.pings_acked += 1
            else:
                self.empty_frames += 1  # V32
                log("PING ACK matching no outstanding PING: %s" % payload.hex())
            return
        # §8.1: at most one reply unwritten; stop reading until it is written.
        while self.pending_ping_replies >= 1 and not self.write_closed and self.write_error is None:
            if remaining() <= 0:
                fail("PING reply never written")
            self.cv.wait(0.5)
        if self.write_closed or self.write_error is not None:
            return  # replies are dropped once we can no longer write (V35)
        self.pending_ping_replies += 1
        self.pings_answered += 1
        self.send_frame(PING, ACK, 0, payload, ping_reply=True)

    def on_goaway(self, payload):
        last, code = struct.unpack(">II", payload[:8])
        text = payload[8:].decode("utf-8", errors="replace")
        log("received GOAWAY(last_stream_id=%d, code=%#x, %r)" % (last, code, text))
        if code != NO_ERROR:
            fail("peer sent GOAWAY with error code %#x: %r" % (code, text))
        if self.goaway_received is None or last < self.goaway_received:
            self.goaway_received = last
        self.goaway_code = code
        for st in self.streams.values():  # §8.2: our streams above last fail as refused
            if st.local and st.id > self.goaway_received and not st.closed():
                self.mark_reset(st, "us", REFUSED_STREAM, kind="refused")
        self.state_changed()

    def on_reset(self, sid, code):
        st = self.lookup(sid, "RESET")
        if st is None or st.closed():
            return  # V27
        self.mark_reset(st, "peer", code)
        if st in self.backlog:
            self.backlog.remove(st)

    def on_stop_sending(self, sid, code):
        st = self.lookup(sid, "STOP_SENDING")
        if st is None or st.closed():
            return
        if st.local and not st.acked and st.send != "reset":
            raise Violation(PROTOCOL_ERROR, "STOP_SENDING on stream %d before its ACK (V17)" % sid)
        if st.stopped is not None or st.send in ("finished", "reset"):
            return  # repeated, or nothing left to stop
        st.stopped = code
        if st.send == "open":  # §6.2: discard unsent (ours is all on the wire), FIN
            self.send_frame(DATA, FIN, sid, b"")
            st.send = "finished"
        # Idle (not yet accepted): the FIN rides on the ACK at accept.
        self.state_changed()

    def mark_reset(self, st, by, code, kind="reset"):
        st.send = st.recv = "reset"
        st.reset_by = by
        st.error = StreamError(kind, code, by)
        n = len(st.buf)
        st.buf.clear()
        self.consume_session(n)
        self.state_changed()

    def on_eof(self):
        with self.cv:
            self.eof = True
            live = [s.id for s in self.streams.values() if not s.closed()]
            graceful = (self.goaway_sent is not None or self.goaway_received is not None) and not live
            if not graceful:
                fail("transport EOF before a graceful end (GOAWAY sent %r, received %r, live streams %r)"
                     % (self.goaway_sent, self.goaway_received, live))
            self.ended_cleanly = True
            self.cv.notify_all()

    # --- §7.3 credit grants ---

    def consume(self, st, n):
        if st.recv == "open":
            st.consumed += n
            if st.consumed >= OWN_ISW // 4:
                self.send_frame(WINDOW_UPDATE, 0, st.id, struct.pack(">I", st.consumed))
                st.recv_credit += st.consumed
                st.consumed = 0
        self.consume_session(n)

    def consume_session(self, n):
        self.session_consumed += n
        c = self.session_consumed
        if c > 0 and (c >= OWN_SESSION_WINDOW // 4 or self.recv_session_credit < OWN_SESSION_WINDOW // 4):
            self.send_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", c))
            self.recv_session_credit += c
            self.session_consumed = 0

    # --- §8.2 closing ---

    def state_changed(self):
        self.cv.notify_all()
        if self.closing or (self.goaway_sent is None and self.goaway_received is None):
            return
        if any(not s.closed() for s in self.streams.values()):
            return
        self.closing = True  # flush, then shut down our write side; the peer closes, we read EOF
        self.outq.put(SHUTDOWN)

    # --- application API ---

    def open(self, payload=b"", fin=False):
        with self.cv:
            def ready():
                if self.goaway_sent is not None or self.goaway_received is not None:
                    return True
                mine = [s for s in self.streams.values() if s.local and not s.closed()]
                unacked = sum(1 for s in mine if not s.acked)
                return (unacked < self.peer["backlog"] and len(mine) < self.peer["mcs"]
                        and self.send_session_credit >= len(payload))
            self.wait_for(ready, "a slot to open a stream")
            if self.goaway_sent is not None or self.goaway_received is not None:
                raise StreamError("going-away", 0)
            sid = self.next_id
            self.next_id += 2
            self.last_local_id = sid
            st = Stream(self, sid, local=True)
            assert len(payload) <= min(st.send_credit, self.peer["mfp"])
            self.streams[sid] = st
            self.send_frame(DATA, SYN | (FIN if fin else 0), sid, payload)
            st.send = "finished" if fin else "open"
            st.send_credit -= len(payload)
            self.send_session_credit -= len(payload)
            self.bytes_out += len(payload)
            return st

    def accept(self):
        """The next peer-opened stream (DATA+ACK sent), or None once no more can come."""
        with self.cv:
            self.wait_for(lambda: self.backlog or self.goaway_sent is not None
                          or self.goaway_received is not None, "a stream to accept")
            if not self.backlog:
                return None
            st = self.backlog.pop(0)
            flags = ACK
            if st.stopped is not None:
                flags |= FIN
            self.send_frame(DATA, flags, st.id, b"")
            st.send = "finished" if st.stopped is not None else "open"
            self.state_changed()
            return st

    def ping(self):
        with self.cv:
            self.wait_for(lambda: self.ping_outstanding is None, "our previous PING's ACK")
            payload = os.urandom(8)
            self.ping_outstanding = payload
            t0 = time.monotonic()
            self.send_frame(PING, 0, 0, payload)
            self.wait_for(lambda: self.ping_outstanding is None, "the ACK of our PING")
            return time.monotonic() - t0

    def goaway(self, code=NO_ERROR, text=b"done"):
        with self.cv:
            self.goaway_sent = self.last_peer_id
            self.send_frame(GOAWAY, 0, 0, struct.pack(">II", self.last_peer_id, code) + text)
            self.state_changed()

    def wait_served(self, commands):
        """Wait until each command was served exactly once (a serve thread counts it last)."""
        with self.cv:
            done = lambda: all(self.served.get(c, 0) >= 1 for c in commands)
            while not done():
                if remaining() <= 0:
                    fail("commands not served: %r" % [c for c in commands if c not in self.served])
                self.cv.wait(min(remaining(), 1.0))
            extra = [c for c in commands if self.served[c] != 1]
            expect(not extra, "commands served more than once: %r" % extra)

    def wait_ended(self):
        with self.cv:
            self.wait_for(lambda: self.eof, "the end of the session (transport EOF)")

    def dump(self):
        out = ["session: client=%s peer=%s send_session_credit=%d recv_session_credit=%d "
               "goaway_sent=%r goaway_received=%r closing=%s write_closed=%s eof=%s\n"
               % (self.client, self.peer, self.send_session_credit, self.recv_session_credit,
                  self.goaway_sent, self.goaway_received, self.closing, self.write_closed, self.eof),
               "  frames in %r out %r, bytes in %d out %d, pings answered %d acked %d, empty %d, served %r\n"
               % (self.frames_in, self.frames_out, self.bytes_in, self.bytes_out, self.pings_answered,
                  self.pings_acked, self.empty_frames, self.served)]
        for st in self.streams.values():
            out.append("  stream %d local=%s send=%s recv=%s acked=%s send_credit=%d recv_credit=%d "
                       "buffered=%d stopped=%r error=%s\n"
                       % (st.id, st.local, st.send, st.recv, st.acked, st.send_credit, st.recv_credit,
                          len(st.buf), st.stopped, st.error))
        return "".join(out)


# --- the command protocol: acceptor side ---

def expect(cond, msg):
    if not cond:
        fail(msg)


def expect_stream_error(fn, kind, code, by, what):
    try:
        fn()
    except StreamError as e:
        expect((e.kind, e.code, e.by) == (kind, code, by),
               "%s: expected %s(%#x) by %s, got %s" % (what, kind, code, by, e))
        return
    fail("%s: expected %s(%#x), got success" % (what, kind, code))


def write_pattern_until_stopped(st, code, what):
    off = 0
    try:
        while True:
            st.write(pattern(off, 16 * 1024))
            off += 16 * 1024
    except StreamError as e:
        expect((e.kind, e.code) == ("stopped", code), "%s: expected stopped(%#x), got %s" % (what, code, e))
    expect(st.send == "finished", "%s: no FIN after STOP_SENDING (send half %s)" % (what, st.send))
    return off


def serve(sess, st):
    line = st.read_line().decode().split()
    cmd, args = line[0], [int(a) for a in line[1:]]
    what = "serving %r on stream %d" % (" ".join(line), st.id)
    if cmd == "echo":
        while True:
            chunk = st.read()
            if not chunk:
                break
            st.write(chunk)
        st.finish()
    elif cmd == "sink":
        data = st.read_to_end()
        st.write(b"%d %08x\n" % (len(data), zlib.crc32(data)))
        st.finish()
    elif cmd == "source":
        expect(st.read_to_end() == b"", what + ": opener sent bytes after the command")
        n = args[0]
        for off in range(0, n, 16 * 1024):
            st.write(pattern(off, min(16 * 1024, n - off)))
        st.finish()
    elif cmd == "reset":
        st.reset(args[0])
    elif cmd == "flood":
        write_pattern_until_stopped(st, args[0], what)
        expect(st.read_to_end() == b"", what + ": unexpected bytes")
    elif cmd == "stop":
        st.stop(args[0])
        expect(st.wait_recv_done() == "finished", what + ": peer did not answer STOP_SENDING with FIN")
        st.write(b"stopped\n")
        st.finish()
    elif cmd == "expect-reset":
        st.write(b"ready\n")
        expect_stream_error(lambda: st.read_to_end(), "reset", args[0], "peer", what)
    elif cmd == "ping":
        sess.ping()
        expect(st.read_to_end() == b"", what + ": unexpected bytes")
        st.write(b"pong\n")
        st.finish()
    elif cmd == "callback":
        data = random.Random(7).randbytes(256 * 1024)
        echo_check(sess, data, what + " (callback stream)")
        expect(st.read_to_end() == b"", what + ": unexpected bytes")
        st.write(b"ok\n")
        st.finish()
    else:
        fail("unknown command %r" % line)
    with sess.cv:
        sess.served[cmd] = sess.served.get(cmd, 0) + 1
        sess.cv.notify_all()


def serve_loop(sess):
    while True:
        st = sess.accept()
        if st is None:
            return
        spawn(lambda st=st: serve(sess, st))


def spawn(fn):
    def run():
        try:
            fn()
        except StreamError as e:
            fail("unexpected stream error: %s\n%s" % (e, traceback.format_exc()))
        except Exception:
            fail("crashed:\n" + traceback.format_exc())
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def join(threads, what):
    for t in threads:
        t.join(max(0.0, remaining()))
        if t.is_alive():
            fail("timed out in " + what)


# --- the client script: opener side ---

def echo_check(sess, data, what):
    st = sess.open(b"echo\n")
    rng = random.Random(len(data))

    def writer():
        off = 0
        while off < len(data):
            n = rng.randint(1, 40000)
            st.write(data[off:off + n])
            off += n
        st.finish()
    t = spawn(writer)
    got = st.read_to_end()
    join([t], what)
    expect(got == data, "%s: echo differs (%d bytes back of %d)" % (what, len(got), len(data)))


def scn_sink(sess):
    data = random.Random(2).randbytes(BULK)
    st = sess.open(b"sink\n")
    st.write(data)
    st.finish()
    reply = st.read_to_end()
    expected = b"%d %08x\n" % (len(data), zlib.crc32(data))
    expect(reply == expected, "sink: reply %r, expected %r" % (reply, expected))


def scn_source(sess):
    st = sess.open(b"source %d\n" % BULK, fin=True)  # SYN|FIN with the command: half-closed at once
    got = st.read_to_end()
    expect(len(got) == BULK, "source: %d bytes, expected %d" % (len(got), BULK))
    expect(all(got[i:i + 16384] == pattern(i, min(16384, BULK - i)) for i in range(0, BULK, 16384)),
           "source: pattern differs")


def scn_reset(sess):
    st = sess.open(b"reset %d\n" % CODE_RESET)
    expect_stream_error(lambda: st.read_to_end(), "reset", CODE_RESET, "peer", "reset")
    expect_stream_error(lambda: st.write(b"x"), "reset", CODE_RESET, "peer", "write after reset")


def scn_flood(sess):
    st = sess.open(b"flood %d\n" % CODE_FLOOD)
    got = bytearray()
    while len(got) < 200 * 1024:  # several windows' worth, so credit cycles before the stop
        chunk = st.read()
        expect(chunk != b"", "flood: early EOF")
        expect(chunk == pattern(len(got), len(chunk)), "flood: pattern differs at %d" % len(got))
        got += chunk
    st.stop(CODE_FLOOD)
    expect(st.wait_recv_done() == "finished", "flood: peer answered STOP_SENDING without FIN")
    st.finish()
    expect(st.closed(), "flood: stream not closed")


def scn_stop(sess):
    st = sess.open(b"stop %d\n" % CODE_STOP)
    write_pattern_until_stopped(st, CODE_STOP, "stop")
    reply = st.read_to_end()
    expect(reply == b"stopped\n", "stop: reply %r" % reply)


def scn_expect_reset(sess):
    st = sess.open(b"expect-reset %d\n" % CODE_EXPECT_RESET)
    expect(st.read_line() == b"ready\n", "expect-reset: no ready line")
    st.write(b"some bytes the peer may or may not read")
    st.reset(CODE_EXPECT_RESET)
    expect_stream_error(lambda: st.read(), "reset", CODE_EXPECT_RESET, "us", "read after own reset")


def scn_ping(sess):
    rtt = sess.ping()
    st = sess.open(b"ping\n", fin=True)
    reply = st.read_to_end()
    expect(reply == b"pong\n", "ping: reply %r" % reply)
    log("ping rtt %.3f ms" % (rtt * 1000))


def scn_callback(sess):
    st = sess.open(b"callback\n", fin=True)
    reply = st.read_to_end()
    expect(reply == b"ok\n", "callback: reply %r" % reply)


ALL_COMMANDS = ["echo", "sink", "source", "reset", "flood", "stop", "expect-reset", "ping", "callback"]


def client_script(sess):
    data = random.Random(1).randbytes(BULK)
    join([spawn(lambda: echo_check(sess, data, "echo 1 MiB")),
          spawn(lambda: scn_sink(sess)),
          spawn(lambda: scn_source(sess))], "the bulk phase")
    for scn in (scn_reset, scn_flood, scn_stop, scn_expect_reset, scn_ping, scn_callback):
        join([spawn(lambda scn=scn: scn(sess))], scn.__name__)
    sess.wait_served(["echo"])  # the peer's callback stream
    sess.goaway(NO_ERROR)
    sess.wait_ended()


def server_script(sess):
    sess.wait_ended()
    expect(sess.goaway_received is not None, "session ended without the peer's GOAWAY")
    # §4.4 / §8.2: its last_stream_id is the last of our streams it processed: our callback stream.
    expect(sess.goaway_received == sess.last_local_id,
           "GOAWAY last_stream_id %d, but our last stream was %d" % (sess.goaway_received, sess.last_local_id))
    sess.wait_served(ALL_COMMANDS)


def main():
    global _session
    if len(sys.argv) < 2 or sys.argv[1] not in ("client", "server"):
        sys.stderr.write(__doc__)
        return 2
    watchdog = threading.Timer(max(0.0, remaining()), lambda: fail("overall deadline of %.0f s exceeded" % DEADLINE_S))
    watchdog.daemon = True
    watchdog.start()
    client = sys.argv[1] == "client"
    if client:
        host, port = sys.argv[2].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=remaining())
    else:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        print("PORT %d" % ls.getsockname()[1], flush=True)
        ls.settimeout(remaining())
        sock, _ = ls.accept()
        ls.close()
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sess = Session(sock, client)
    _session = sess
    sess.start()
    spawn(lambda: serve_loop(sess))
    if client:
        client_script(sess)
    else:
        server_script(sess)
    with sess.cv:
        expect(sess.ended_cleanly, "session did not end cleanly")
        expect(sess.pings_answered >= 1, "the peer never sent a PING")
        expect(sess.pings_acked >= 1, "none of our PINGs was acknowledged")
        expect(sess.write_error is None, "transport write failed: %r" % sess.write_error)
        live = [s.id for s in sess.streams.values() if not s.closed()]
        expect(not live, "streams still live at the end: %r" % live)
        counts = lambda c: ", ".join("%s %d" % (TYPE_NAMES[t], n) for t, n in enumerate(c) if n)
        log("ok (%s) in %.2f s: served %r; frames in: %s; frames out: %s; DATA bytes in %d, out %d; "
            "%d PINGs answered, %d empty frames"
            % (sys.argv[1], DEADLINE_S - remaining(), sess.served, counts(sess.frames_in),
               counts(sess.frames_out), sess.bytes_in, sess.bytes_out, sess.pings_answered,
               sess.empty_frames))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
