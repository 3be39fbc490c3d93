//! Forwarding rules as given on the command line: `LISTEN=TARGET`.

use std::{fmt, str::FromStr};

/// One `LISTEN=TARGET` rule. For `--forward`, the client listens and the server dials; for
/// `--reverse`, the server listens and the client dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Where to listen: `host:port`, or just `port` for 127.0.0.1.
    pub listen: String,
    /// What to dial: `host:port`, resolved by the dialing end.
    pub target: String,
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Rule, String> {
        let (listen, target) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected LISTEN=TARGET, e.g. 8080=10.0.0.5:80"))?;
        let listen = if !listen.is_empty() && listen.bytes().all(|b| b.is_ascii_digit()) {
            format!("127.0.0.1:{listen}")
        } else {
            listen.to_string()
        };
        for (what, addr) in [("LISTEN", &listen), ("TARGET", &target.to_string())] {
            let port = addr.rsplit_once(':').map(|(_, port)| port);
            if port.is_none_or(|p| p.parse::<u16>().is_err()) {
                return Err(format!("`{s}`: {what} `{addr}` must be host:port"));
            }
        }
        Ok(Rule {
            listen,
            target: target.to_string(),
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.listen, self.target)
    }
}
