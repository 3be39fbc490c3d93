//! Arbitrary bytes through `braid::frame::Decoder` in arbitrary chunks: never panics, memory
//! bounded by one frame, every decoded frame re-encodes to exactly its bytes.
//! Input layout and properties: `fuzz/harness/decode.rs`.
#![no_main]

#[path = "../harness/decode.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
