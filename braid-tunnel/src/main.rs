//! `braid-tunnel`: forwards many TCP connections over one multiplexed braid connection.
//!
//! ```text
//! braid-tunnel server --listen 0.0.0.0:7000 --token-file token
//! braid-tunnel client --server host:7000 --token-file token --forward 8080=10.0.0.5:80
//! ```
//!
//! Run `braid-tunnel help server` / `help client` for every flag; the README's "Tunnel"
//! section has the quick start and the security notes.

use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};

use braid_tunnel as tunnel;
use tunnel::cli::{Cli, ClientArgs, Command, ServerArgs};
use tunnel::{
    auth::load_token,
    client::{Client, ClientOptions},
    server::{Server, ServerOptions},
    tls::{ClientTls, ServerTls},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Server(args) => run_server(args).await,
        Command::Client(args) => run_client(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(args: ServerArgs) -> Result<(), BoxError> {
    let mut opts = ServerOptions::new(load_token(&args.token_file)?);
    opts.config = args.common.config()?;
    opts.status_interval = args.common.status_interval();
    opts.allow = args.allow;
    opts.allow_reverse = args.allow_reverse;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        opts.tls = Some(ServerTls::from_pem_files(cert, key)?);
    }
    let server = Server::bind(&args.listen, opts).await?;
    tokio::select! {
        result = server.run() => result?,
        _ = tokio::signal::ctrl_c() => info!("interrupted; shutting down"),
    }
    Ok(())
}

async fn run_client(args: ClientArgs) -> Result<(), BoxError> {
    if args.forward.is_empty() && args.reverse.is_empty() {
        return Err("nothing to do: give at least one --forward or --reverse".into());
    }
    let mut opts = ClientOptions::new(args.server, load_token(&args.token_file)?);
    opts.config = args.common.config()?;
    opts.status_interval = args.common.status_interval();
    opts.forwards = args.forward;
    opts.reverses = args.reverse;
    opts.wait_for_tunnel = std::time::Duration::from_secs(args.wait_secs);
    opts.backoff_max = std::time::Duration::from_secs(args.max_backoff_secs);
    if let Some(ca) = &args.tls_ca {
        opts.tls = Some(ClientTls::from_pem_file(
            ca,
            args.tls_server_name.as_deref(),
        )?);
    }
    let client = Client::bind(opts).await?;
    tokio::select! {
        result = client.run() => result?,
        _ = tokio::signal::ctrl_c() => info!("interrupted; shutting down"),
    }
    Ok(())
}
