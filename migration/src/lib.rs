//! Live migration: moving a running guest's state stream from one tern process to another.
//!
//! This crate knows nothing of the PC board or the CPU (DESIGN.md, "Crates"): it moves the
//! `savevm` stream between processes and decides when to stop copying.
//!
//! - [`uri`]: the addresses a user names (`tcp:`, `unix:`, `exec:`, `fd:`, `file:`);
//! - [`transport`]: turning an address into a byte stream, outgoing or incoming;
//! - [`rate`]: the token-bucket rate limiter and the bandwidth estimate that decide how fast
//!   RAM is sent and when the remaining pages fit the downtime limit.

pub mod rate;
pub mod transport;
pub mod uri;

pub use rate::{BandwidthEstimate, RateLimiter};
pub use transport::{Incoming, TransportError};
pub use uri::{MigrationUri, UriError};
