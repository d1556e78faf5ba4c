//! Migration addresses, spelled as QEMU spells them.
//!
//! ```text
//! tcp:HOST:PORT      tcp:127.0.0.1:4444, tcp:[::1]:4444, tcp:localhost:4444
//! unix:PATH          a stream socket in the file system
//! exec:COMMAND       run with `sh -c`; the stream goes to its stdin (outgoing)
//!                    or comes from its stdout (incoming)
//! fd:NAME            a descriptor handed over a monitor socket with `getfd NAME`
//! file:PATH          the snapshot file format, written or read as a file
//! ```

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    #[error("migration address `{0}` has no transport prefix (tcp:, unix:, exec:, fd:, file:)")]
    NoScheme(String),
    #[error("unknown migration transport `{0}:` (tcp:, unix:, exec:, fd:, file:)")]
    UnknownScheme(String),
    #[error("`{0}`: expected tcp:HOST:PORT")]
    BadTcp(String),
    #[error("`{0}`: the port must be a number from 0 to 65535")]
    BadPort(String),
    #[error("`{0}`: empty {1}")]
    Empty(String, &'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationUri {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
    Exec(String),
    Fd(String),
    File(PathBuf),
}

impl MigrationUri {
    pub fn parse(s: &str) -> Result<Self, UriError> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| UriError::NoScheme(s.to_string()))?;
        let nonempty = |what| {
            if rest.is_empty() {
                Err(UriError::Empty(s.to_string(), what))
            } else {
                Ok(rest)
            }
        };
        Ok(match scheme {
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| UriError::BadTcp(s.to_string()))?;
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                if host.is_empty() {
                    return Err(UriError::BadTcp(s.to_string()));
                }
                let port = port.parse().map_err(|_| UriError::BadPort(s.to_string()))?;
                MigrationUri::Tcp {
                    host: host.to_string(),
                    port,
                }
            }
            "unix" => MigrationUri::Unix(nonempty("path")?.into()),
            "exec" => MigrationUri::Exec(nonempty("command")?.to_string()),
            "fd" => MigrationUri::Fd(nonempty("descriptor name")?.to_string()),
            "file" => MigrationUri::File(nonempty("path")?.into()),
            other => return Err(UriError::UnknownScheme(other.to_string())),
        })
    }
}

impl fmt::Display for MigrationUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationUri::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp:[{host}]:{port}")
            }
            MigrationUri::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            MigrationUri::Unix(p) => write!(f, "unix:{}", p.display()),
            MigrationUri::Exec(c) => write!(f, "exec:{c}"),
            MigrationUri::Fd(n) => write!(f, "fd:{n}"),
            MigrationUri::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_transport_and_prints_it_back() {
        for s in [
            "tcp:127.0.0.1:4444",
            "tcp:[::1]:4444",
            "tcp:localhost:0",
            "unix:/tmp/m.sock",
            "exec:gzip -c > vm.gz",
            "exec:cat",
            "fd:mig",
            "file:/tmp/vm.state",
        ] {
            let u = MigrationUri::parse(s).unwrap();
            assert_eq!(u.to_string(), s);
        }
        assert_eq!(
            MigrationUri::parse("tcp:[::1]:5").unwrap(),
            MigrationUri::Tcp {
                host: "::1".into(),
                port: 5
            }
        );
        assert_eq!(
            MigrationUri::parse("exec:a:b").unwrap(),
            MigrationUri::Exec("a:b".into())
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        use UriError::*;
        type Check = fn(&UriError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("127.0.0.1:4444", |e| matches!(e, UnknownScheme(_))),
            ("nothing", |e| matches!(e, NoScheme(_))),
            ("udp:1.2.3.4:5", |e| matches!(e, UnknownScheme(_))),
            ("tcp:4444", |e| matches!(e, BadTcp(_))),
            ("tcp::4444", |e| matches!(e, BadTcp(_))),
            ("tcp:host:99999", |e| matches!(e, BadPort(_))),
            ("tcp:host:x", |e| matches!(e, BadPort(_))),
            ("unix:", |e| matches!(e, Empty(..))),
            ("exec:", |e| matches!(e, Empty(..))),
            ("fd:", |e| matches!(e, Empty(..))),
            ("file:", |e| matches!(e, Empty(..))),
        ];
        for (s, ok) in cases {
            let e = MigrationUri::parse(s).unwrap_err();
            assert!(ok(&e), "{s}: {e:?}");
            assert!(!e.to_string().is_empty());
        }
    }
}
