//! Generates the route guide's messages, client and server from its .proto (no protoc).

fn main() -> std::io::Result<()> {
    braid_build::compile_protos("proto/route_guide.proto")
}
