//! Why a migration failed: the text `info migrate` shows as `error-desc`.

use std::io;

use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// Connecting, listening, writing or finishing the transfer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Writing or reading the machine-state stream (a truncated stream, a checksum or
    /// configuration mismatch, a write to a peer that went away).
    #[error(transparent)]
    Stream(#[from] savevm::Error),
    /// The configuration given for the stream does not describe this guest.
    #[error("the stream configuration says {config} bytes of RAM, the guest has {actual}")]
    RamSize { config: u64, actual: u64 },
    /// The VM thread dropped its end of the link.
    #[error("the virtual machine stopped answering the migration")]
    VmGone,
    #[error("migration cancelled")]
    Cancelled,
    #[error("cannot start a migration thread: {0}")]
    Thread(#[source] io::Error),
    /// The destination's VM thread could not load the device state.
    #[error("loading the device state failed: {0}")]
    Load(String),
}
