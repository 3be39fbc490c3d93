//! Operations on `braid::proto::{Credit, RecvWindow}` checked against a u64 model.
//! Operations and properties: `fuzz/harness/flow.rs`.
#![no_main]

#[path = "../harness/flow.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|ops: Vec<harness::Op>| harness::run(&ops));
