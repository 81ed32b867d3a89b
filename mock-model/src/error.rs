//! The crate's error type: what can go wrong starting, stopping or scripting the server.

use std::io;
use std::path::PathBuf;

/// Everything that can fail in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot listen on `127.0.0.1:{port}`")]
    Bind {
        /// The port asked for (0 means any).
        port: u16,
        /// Why the bind failed.
        #[source]
        source: io::Error,
    },
    /// The server loop stopped with an error.
    #[error("the mock model server stopped with an error")]
    Serve {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Waiting for Ctrl-C failed.
    #[error("cannot wait for ctrl-c")]
    Signal {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A script file or folder could not be read.
    #[error("cannot read the script `{}`", path.display())]
    ReadScript {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A script is not valid JSON of the script format.
    #[error("the script `{origin}` is not a valid script")]
    ParseScript {
        /// Where the script came from: a path, or `inline`.
        origin: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A script parsed but says something the server cannot do.
    #[error("the script `{origin}` is not valid: {reason}")]
    InvalidScript {
        /// Where the script came from: a path, a name, or `inline`.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}
