//! The host as the runner found it at start: its environment and working directory.
//!
//! This is the one place the runner reads process state. Everything else takes a [`Host`], so
//! tests can hand any environment to the same code. The variables the runner itself reads:
//!
//! | variable | effect |
//! |---|---|
//! | `OPENCODE_DOCKER_EXTRA_ENV_PREFIXES` | more prefixes of variables to forward, comma-separated |
//! | `OPENCODE_SERVER_LOG_LEVEL` | the server's log level without `--agent-logs` (default `INFO`) |
//! | `OPENCODE_SERVER_PRINT_LOGS` | `1` adds `--print-logs` without `--agent-logs` |
//! | `OPENCODE_STREAM_CONTAINER_LOGS` | `0` stops streaming container output |
//! | `XDG_DATA_HOME`, `HOME` | where the host's `auth.json` is looked for |
//! | `TMPDIR` | the temp root when `--host-tmpdir` is not given (default `/tmp`) |
//! | `RUST_LOG` | the detail of the runner's own diagnostics (default `warn`) |
//!
//! Provider and OpenCode variables are not read, only forwarded by name (`evals-env-filter`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use evals_env_filter::EnvMap;

pub use evals_env_filter::{
    EXTRA_PREFIXES_VAR, SERVER_LOG_LEVEL_VAR, SERVER_PRINT_LOGS_VAR, STREAM_CONTAINER_LOGS_VAR,
};

/// Where the host's `auth.json` is looked for first.
pub const XDG_DATA_HOME_VAR: &str = "XDG_DATA_HOME";
/// The user's home, for `~/.local/share/opencode/auth.json`.
pub const HOME_VAR: &str = "HOME";
/// The system temp directory.
pub const TMPDIR_VAR: &str = "TMPDIR";

/// A snapshot of the host environment and working directory.
#[derive(Debug, Clone)]
pub struct Host {
    /// Every variable, as the operating system gave it.
    pub env: EnvMap,
    /// The directory the runner was started in: the repository root for `opencode.json`, and
    /// the base of every relative path in the output files.
    pub cwd: PathBuf,
}

impl Host {
    /// Reads the current process's environment and working directory.
    pub fn capture() -> std::io::Result<Self> {
        Ok(Self {
            env: std::env::vars_os().collect(),
            cwd: std::env::current_dir()?,
        })
    }

    /// The value of `name`, if it is set.
    pub fn var_os(&self, name: &str) -> Option<&OsStr> {
        self.env
            .get(OsStr::new(name))
            .map(|value| value.as_os_str())
    }

    /// The value of `name`, if it is set and valid UTF-8.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.var_os(name).and_then(OsStr::to_str)
    }

    /// The system temp directory: `TMPDIR` when it is an absolute path, else `/tmp`.
    pub fn temp_dir(&self) -> PathBuf {
        self.var_os(TMPDIR_VAR)
            .map(Path::new)
            .filter(|path| path.is_absolute())
            .map_or_else(|| PathBuf::from("/tmp"), Path::to_path_buf)
    }

    /// `path` resolved against the start directory.
    pub fn absolute(&self, path: &Path) -> PathBuf {
        self.cwd.join(path)
    }
}
