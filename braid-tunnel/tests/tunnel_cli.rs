//! braid-tunnel's command line: flag defaults are braid's `Config` defaults, sizes and
//! rules parse, and inconsistent limits are refused with braid's own message.

use braid_tunnel as tunnel;

use braid_tunnel::cli;

use std::time::Duration;

use braid::Config;
use clap::Parser;
use cli::{ByteSize, Cli, Command};
use tunnel::{backoff::Backoff, rules::Rule};

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("braid-tunnel").chain(args.iter().copied())).unwrap()
}

#[test]
fn default_limits_are_the_library_defaults() {
    let cli = parse(&["server", "--listen", "0.0.0.0:7000", "--token-file", "t"]);
    let Command::Server(args) = cli.command else {
        panic!("not a server")
    };
    assert_eq!(args.common.config().unwrap(), Config::default());
    assert_eq!(args.common.status_interval(), Some(Duration::from_secs(30)));
    assert!(!args.allow_reverse);
}

#[test]
fn limit_flags_reach_the_config() {
    let cli = parse(&[
        "client",
        "--server",
        "example.com:7000",
        "--token-file",
        "t",
        "--forward",
        "8080=10.0.0.5:80",
        "--forward",
        "127.0.0.2:5432=db:5432",
        "--max-streams",
        "100",
        "--stream-window",
        "8MiB",
        "--session-window",
        "128M",
        "--keepalive-secs",
        "0",
        "--status-secs",
        "0",
        "--max-frame-payload",
        "16KiB",
        "--stream-send-buffer",
        "1MiB",
        "--session-send-buffer",
        "32MiB",
        "--open-timeout-secs",
        "5",
        "--write-timeout-secs",
        "7",
    ]);
    let Command::Client(args) = cli.command else {
        panic!("not a client")
    };
    assert_eq!(
        args.forward,
        [
            Rule {
                listen: "127.0.0.1:8080".into(),
                target: "10.0.0.5:80".into()
            },
            Rule {
                listen: "127.0.0.2:5432".into(),
                target: "db:5432".into()
            },
        ]
    );
    let config = args.common.config().unwrap();
    assert_eq!(config.max_inbound_streams, 100);
    assert_eq!(config.max_outbound_streams, 100);
    assert_eq!(config.max_stream_window, 8 << 20);
    assert_eq!(config.session_window, 128 << 20);
    assert_eq!(config.keepalive_interval, None);
    assert_eq!(config.max_frame_payload, 16 << 10);
    assert_eq!(config.stream_send_buffer, 1 << 20);
    assert_eq!(config.session_send_buffer, 32 << 20);
    assert_eq!(config.open_timeout, Duration::from_secs(5));
    assert_eq!(config.write_timeout, Duration::from_secs(7));
    assert_eq!(args.common.status_interval(), None);
}

#[test]
fn inconsistent_limits_are_refused() {
    let cli = parse(&[
        "server",
        "--listen",
        "0.0.0.0:7000",
        "--token-file",
        "t",
        "--initial-stream-window",
        "8MiB",
    ]);
    let Command::Server(args) = cli.command else {
        panic!("not a server")
    };
    let err = args.common.config().unwrap_err();
    assert!(err.to_string().contains("session_window"), "{err}");
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &[
            "client",
            "--server",
            "h:1",
            "--token-file",
            "t",
            "--forward",
            "8080",
        ][..],
        &[
            "client",
            "--server",
            "h:1",
            "--token-file",
            "t",
            "--forward",
            "8080=nohost",
        ],
        &[
            "server",
            "--listen",
            "x:1",
            "--token-file",
            "t",
            "--tls-cert",
            "c",
        ],
        &[
            "server",
            "--listen",
            "x:1",
            "--token-file",
            "t",
            "--session-window",
            "3XB",
        ],
    ] {
        let full = std::iter::once("braid-tunnel").chain(args.iter().copied());
        assert!(Cli::try_parse_from(full).is_err(), "accepted {args:?}");
    }
}

#[test]
fn byte_sizes_parse_and_print() {
    for (text, value) in [
        ("65536", 65536),
        ("64KiB", 64 << 10),
        ("64k", 64 << 10),
        ("4MiB", 4 << 20),
        ("1GiB", 1 << 30),
    ] {
        assert_eq!(text.parse::<ByteSize>().unwrap(), ByteSize(value), "{text}");
    }
    assert!("8GiB".parse::<ByteSize>().is_err());
    assert!("99999999999999999999".parse::<ByteSize>().is_err());
    assert_eq!(ByteSize(4 << 20).to_string(), "4MiB");
    assert_eq!(ByteSize(1000).to_string(), "1000");
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap() {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
    for (i, d) in delays.iter().enumerate() {
        let base = Duration::from_millis(100 << i).min(Duration::from_secs(1));
        assert!(
            *d <= base && *d >= base * 3 / 4,
            "delay {i}: {d:?} vs {base:?}"
        );
    }
    backoff.reset();
    assert!(backoff.next_delay() <= Duration::from_millis(100));
}
