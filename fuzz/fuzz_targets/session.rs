//! The protocol core (`braid::proto::Core`, server role) driven like the runtime driver by an
//! arbitrary sequence of peer frames, raw wire bytes and application operations.
//! Operations and invariants: `fuzz/harness/session.rs`.
//!
//! Input layout: `[n: u16 LE][n bytes: Knobs and Vec<Op> via arbitrary][wire bytes...]`, so a
//! recorded client byte stream prefixed with `[0, 0]` is a seed (see the corpus recorder in
//! `tests/fuzz_regressions.rs`). `BRAID_FUZZ_PRINT=1` prints the decoded input (for turning
//! a crash into a regression test).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};

#[path = "../harness/session.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (ops_bytes, wire) = match data {
        [a, b, rest @ ..] => rest.split_at((u16::from_le_bytes([*a, *b]) as usize).min(rest.len())),
        _ => (&[][..], &[][..]),
    };
    let mut u = Unstructured::new(ops_bytes);
    let Ok(knobs) = harness::Knobs::arbitrary(&mut u) else {
        return;
    };
    let Ok(ops) = Vec::<harness::Op>::arbitrary_take_rest(u) else {
        return;
    };
    if std::env::var_os("BRAID_FUZZ_PRINT").is_some() {
        eprintln!("knobs: {knobs:?}\nops: {ops:?}\nwire: {wire:?}");
    }
    harness::run(knobs, &ops, wire);
});
