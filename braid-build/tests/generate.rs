//! What braid-build writes for a .proto: parsed with protox, formatted by prost-build (so a
//! successful run is valid Rust syntax); the route-guide crate compiles and runs the output.

use std::{fs, io, path::PathBuf};

/// A fresh directory under cargo's per-test temp dir with `proto` written into it.
fn setup(name: &str, proto: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("out")).unwrap();
    let file = dir.join("svc.proto");
    fs::write(&file, proto).unwrap();
    (dir, file)
}

const ECHO: &str = r#"
syntax = "proto3";
package demo.v1;
import "google/protobuf/empty.proto";
message Msg { string text = 1; }
// Echoes.
service Echo {
  // Says it back.
  rpc Say(Msg) returns (Msg);
  rpc Listen(Msg) returns (stream Msg);
  rpc Collect(stream Msg) returns (Msg);
  rpc Chat(stream Msg) returns (stream Msg);
  rpc Type(google.protobuf.Empty) returns (google.protobuf.Empty);
}
"#;

fn generate(
    name: &str,
    proto: &str,
    configure: fn(braid_build::Builder) -> braid_build::Builder,
) -> io::Result<String> {
    let (dir, file) = setup(name, proto);
    configure(
        braid_build::configure()
            .out_dir(dir.join("out"))
            .emit_rerun_if_changed(false),
    )
    .compile_protos(&[&file], &[&dir])?;
    let mut names: Vec<_> = fs::read_dir(dir.join("out"))?
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 1, "{names:?}");
    fs::read_to_string(dir.join("out").join(&names[0]))
}

#[test]
fn every_call_kind_has_a_client_method_and_a_trait_method() {
    let code = generate("kinds", ECHO, |b| b).unwrap();
    for needle in [
        "pub mod echo_client",
        "pub struct EchoClient",
        "pub async fn say(",
        "pub async fn say_full(",
        "::braid_prost::IntoRequest<super::Msg>",
        "pub async fn listen(",
        "::braid_prost::Streaming<super::Msg>",
        "pub async fn collect(",
        "IntoStreamingRequest<Message = super::Msg>",
        "pub async fn collect_full(",
        "pub async fn chat(",
        "::braid_prost::Sender<super::Msg, super::Msg>",
        "\"/demo.v1.Echo/Say\"",
        "\"/demo.v1.Echo/Chat\"",
        "pub mod echo_server",
        "pub trait Echo: Send + Sync + 'static",
        "type ListenStream:",
        "type ChatStream:",
        "pub struct EchoServer<T>",
        "const NAME: &'static str = \"demo.v1.Echo\"",
        "::braid_prost::server::unary(",
        "::braid_prost::server::server_streaming(",
        "::braid_prost::server::client_streaming(",
        "::braid_prost::server::streaming(",
        // a keyword method stays a raw identifier; its `_full` twin needs none
        "pub async fn r#type(",
        "pub async fn type_full(",
        // google.protobuf.Empty is prost's `()`, not `super::()`
        "::braid_prost::IntoRequest<()>",
        "/// Says it back.",
    ] {
        assert!(code.contains(needle), "missing {needle:?} in:\n{code}");
    }
    assert!(!code.contains("super::()"), "{code}");
}

#[test]
fn client_or_server_only_and_another_runtime_path() {
    let client = generate("client_only", ECHO, |b| b.build_server(false)).unwrap();
    assert!(client.contains("pub mod echo_client") && !client.contains("pub mod echo_server"));
    let server = generate("server_only", ECHO, |b| {
        b.build_client(false).runtime_crate("crate::rt")
    })
    .unwrap();
    assert!(!server.contains("pub mod echo_client") && server.contains("pub mod echo_server"));
    assert!(server.contains("crate::rt::Request<super::Msg>") && !server.contains("braid_prost"));
}

#[test]
fn a_service_without_a_package() {
    let proto = "syntax = \"proto3\";\nmessage M {}\nservice Bare { rpc Go(M) returns (M); }\n";
    let code = generate("bare", proto, |b| b).unwrap();
    assert!(code.contains("\"/Bare/Go\""), "{code}");
    assert!(code.contains("pub struct BareClient"), "{code}");
}

#[test]
fn a_broken_proto_is_an_error_with_its_location() {
    let proto = "syntax = \"proto3\";\nmessage M { int32 a = 1 }\n";
    let err = generate("broken", proto, |b| b).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let unknown = "syntax = \"proto3\";\nservice S { rpc Go(Nope) returns (Nope); }\n";
    let err = generate("unknown_type", unknown, |b| b).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("Nope"), "{err}");
}

#[test]
fn out_dir_defaults_to_cargo_out_dir() {
    // Integration tests have no OUT_DIR at run time: a clear error, not a panic.
    let (dir, file) = setup("no_out_dir", ECHO);
    if std::env::var_os("OUT_DIR").is_none() {
        let err = braid_build::configure()
            .emit_rerun_if_changed(false)
            .compile_protos(&[&file], &[&dir])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
