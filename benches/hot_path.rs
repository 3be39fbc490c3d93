//! Micro-benchmarks of the hot path without sockets: frame header encode/decode, decoding a
//! buffer of mixed frames, and two protocol cores moving N streams × M messages in memory.
//! A regression here shows without network noise (`cargo bench --bench hot_path`).
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::{task::Waker, time::Instant};

use braid::{
    frame::{encode_frame, Decoder, Flags, Frame, FrameType, Header},
    proto::{Core, Input, Role, Transmit},
    Config, ErrorCode,
};
use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn header(c: &mut Criterion) {
    let h = Header {
        kind: FrameType::Data,
        flags: Flags::SYN,
        stream: 12345,
        len: 4096,
    };
    c.bench_function("header/encode", |b| {
        b.iter(|| black_box(black_box(&h).encode()))
    });
    let raw = h.encode();
    c.bench_function("header/decode", |b| {
        b.iter(|| Header::decode(black_box(&raw), 64 * 1024).unwrap())
    });
}

fn mixed_frames() -> BytesMut {
    let mut buf = BytesMut::new();
    for i in 0..1000u32 {
        let frame = match i % 5 {
            0 | 1 => Frame::Data {
                stream: 2 * i + 1,
                flags: Flags::NONE,
                payload: Bytes::from(vec![7u8; 64 + (i as usize % 4) * 1000]),
            },
            2 => Frame::WindowUpdate {
                stream: 2 * i + 1,
                increment: 65536,
            },
            3 => Frame::Ping {
                ack: i % 2 == 0,
                opaque: i as u64,
            },
            _ => Frame::Reset {
                stream: 2 * i + 1,
                code: ErrorCode::CANCEL,
            },
        };
        encode_frame(&frame, &mut buf);
    }
    buf
}

fn decode(c: &mut Criterion) {
    let wire = mixed_frames();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("1000_mixed_frames", |b| {
        b.iter(|| {
            let mut buf = wire.clone();
            let mut decoder = Decoder::new(64 * 1024);
            let mut n = 0;
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                black_box(f);
                n += 1;
            }
            assert_eq!(n, 1000);
        })
    });
    group.finish();
}

/// Moves every byte `from` has to send into `to` through its one input entry point, as the
/// runtime's driver would; what `to` does not take yet (while a PING reply it owes is unsent)
/// waits in `rx`.
fn pump(
    from: &mut Core,
    to: &mut Core,
    tx: &mut Transmit,
    (input, rx): &mut (Input, BytesMut),
    now: Instant,
) -> usize {
    from.poll_transmit(now, tx, usize::MAX);
    let bytes = tx.take_all();
    rx.extend_from_slice(&bytes);
    to.handle_input(now, input, rx, false);
    bytes.len()
}

/// Two cores, `streams` streams, `msgs` messages of `size` bytes each way per stream.
fn core_pair(streams: usize, msgs: usize, size: usize) {
    let now = Instant::now();
    let w = Waker::noop();
    let mut client = Core::new(Role::Client, Config::default(), now);
    let mut server = Core::new(Role::Server, Config::default(), now);
    let (mut tc, mut ts) = (Transmit::default(), Transmit::default());
    let mut to_client = (Input::new(client.config()), BytesMut::new());
    let mut to_server = (Input::new(server.config()), BytesMut::new());
    pump(&mut client, &mut server, &mut tc, &mut to_server, now);
    pump(&mut server, &mut client, &mut ts, &mut to_client, now);
    let ids: Vec<u32> = (0..streams)
        .map(|_| match client.poll_open(now, w) {
            std::task::Poll::Ready(Ok(id)) => id,
            other => panic!("open: {other:?}"),
        })
        .collect();
    let msg = vec![1u8; size];
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0usize;
    let total = streams * msgs * size;
    let mut sent = 0;
    while received < total {
        for &id in &ids {
            if sent < msgs {
                let _ = client.poll_write(id, w, &msg);
            }
        }
        sent += 1;
        pump(&mut client, &mut server, &mut tc, &mut to_server, now);
        while let std::task::Poll::Ready(Ok(_)) = server.poll_accept(now, w) {}
        for &id in &ids {
            while let std::task::Poll::Ready(Ok(n)) = server.poll_read(id, w, &mut buf) {
                if n == 0 {
                    break;
                }
                received += n;
            }
        }
        pump(&mut server, &mut client, &mut ts, &mut to_client, now);
    }
}

fn cores(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_pair");
    for (streams, msgs, size) in [(1, 10_000, 64), (100, 100, 64), (10, 100, 16 * 1024)] {
        group.throughput(Throughput::Bytes((streams * msgs * size) as u64));
        group.bench_function(format!("{streams}x{msgs}x{size}B"), |b| {
            b.iter(|| core_pair(streams, msgs, size))
        });
    }
    group.finish();
}

criterion_group!(benches, header, decode, cores);
criterion_main!(benches);
