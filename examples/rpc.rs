//! A chat-style bidirectional call with `braid::rpc`, server and client in one process over
//! loopback TCP. The client sends lines from one task while another prints the replies; the
//! server greets, answers each line, and ends with a trailer. Messages are UTF-8 strings
//! through a small custom [`Codec`].
//!
//! ```text
//! cargo run --example rpc
//! ```

use std::time::Duration;

use braid::rpc::{CallOptions, Client, Codec, MetadataMap, Server, ServerStream, Status};
use braid::{Config, Session};
use bytes::Bytes;

/// UTF-8 strings as messages.
#[derive(Debug, Clone, Copy, Default)]
struct Text;

impl Codec for Text {
    type Encode = String;
    type Decode = String;

    fn encode(&mut self, item: String) -> Result<Bytes, Status> {
        Ok(Bytes::from(item))
    }

    fn decode(&mut self, bytes: Bytes) -> Result<String, Status> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Status::invalid_argument("message is not UTF-8"))
    }
}

/// The server's side of one chat.
async fn talk(mut stream: ServerStream<Text>) -> Result<(), Status> {
    let user = stream
        .metadata()
        .get("user")
        .unwrap_or("stranger")
        .to_owned();
    stream
        .send_header(MetadataMap::new().with("room", "lobby")?)
        .await?;
    stream.send(format!("welcome, {user}")).await?;
    let mut lines = 0;
    while let Some(line) = stream.recv().await? {
        lines += 1;
        if line.is_empty() {
            return Err(Status::invalid_argument("empty line"));
        }
        stream
            .send(format!("{user} said {line:?} ({} bytes)", line.len()))
            .await?;
    }
    stream.set_trailer(MetadataMap::new().with("lines", &lines.to_string())?)?;
    stream.send(format!("bye, {user}")).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        let session = Session::server(tcp, Config::default()).expect("config");
        let server = Server::new().route_with_codec("/chat.Room/Talk", Text, talk);
        if let Err(e) = server.serve(session).await {
            eprintln!("server: {e}");
        }
    });

    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let client = Client::new(Session::client(tcp, Config::default())?).with_codec(Text);

    let options = CallOptions {
        timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let metadata = MetadataMap::new().with("user", "ann")?;
    let mut call = client
        .call_with("/chat.Room/Talk", metadata, options)
        .await?;
    let room = call
        .header()
        .await
        .and_then(|h| h.get("room"))
        .unwrap_or("?")
        .to_owned();
    println!("joined room {room}");

    let (mut tx, mut rx) = call.split();
    let sender = tokio::spawn(async move {
        for line in ["hello", "how is everyone?", "gotta go"] {
            if tx.send(line.to_owned()).await.is_err() {
                break; // the call ended; the receiver reports why
            }
            println!("> {line}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = tx.close_send();
    });
    while let Some(reply) = rx.recv().await? {
        println!("< {reply}");
    }
    sender.await?;
    let lines = rx.trailer().and_then(|t| t.get("lines")).unwrap_or("?");
    println!(
        "call ended with {}; the server counted {lines} lines",
        rx.status().expect("ended")
    );

    // An unknown method ends with a status, never a silent success.
    let mut call = client.call("/chat.Room/Nope", MetadataMap::new()).await?;
    match call.recv().await {
        Err(status) => println!("unknown method: {status}"),
        Ok(reply) => return Err(format!("unexpected reply {reply:?}").into()),
    }
    Ok(())
}
