//! Generates the typed rpc workloads' service from proto/bench.proto twice, from one protox
//! parse (no protoc): for braid (braid-build, into OUT_DIR/braid) and for tonic
//! (tonic-prost-build, into OUT_DIR/tonic). `bytes` fields are `bytes::Bytes` on both.

use std::{io, path::PathBuf};

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let fds = braid_build::protox::compile(["bench.proto"], ["proto"])
        .map_err(|e| io::Error::other(e.to_string()))?;
    for dir in ["braid", "tonic"] {
        std::fs::create_dir_all(out.join(dir))?;
    }
    let mut prost = braid_build::prost_build::Config::new();
    prost.bytes(["."]);
    braid_build::configure()
        .prost_config(prost)
        .out_dir(out.join("braid"))
        .emit_rerun_if_changed(false)
        .compile_fds(fds.clone())?;
    tonic_prost_build::configure()
        .bytes(".")
        .out_dir(out.join("tonic"))
        .emit_rerun_if_changed(false)
        .compile_fds(fds)
}
