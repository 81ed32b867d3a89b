//! Per-container copies of the host's OpenCode `auth.json`, and the directories that hold them.
//!
//! Every model call gets its own pair of private directories under the temp root:
//!
//! - a workspace, `evals-opencode-<run id>-XXXX`, mounted at `/workspace`;
//! - a data home, `evals-opencode-home-<run id>-XXXX`, mounted at OpenCode's data folder and
//!   holding a *copy* of the host's `auth.json`, so concurrent containers never share, lock or
//!   overwrite the host file, which is never mounted.
//!
//! Both are created with mode `0700` and the copy with mode `0600`. Their names carry the run id,
//! so a later sweep can tell which run left them behind. [`SessionDirs`] owns them: dropping it
//! removes both, and [`SessionDirs::close`] does the same while reporting any failure. The
//! contents of `auth.json` are never logged.
//!
//! ```
//! use evals_auth_isolation::SessionDirs;
//!
//! let root = tempfile::tempdir()?;
//! let dirs = SessionDirs::create(root.path(), "0f3a9c", None)?;
//! assert!(dirs.workspace().file_name().unwrap().to_str().unwrap().starts_with("evals-opencode-0f3a9c-"));
//! assert!(!dirs.home().join("auth.json").exists());
//! dirs.close()?;
//! assert_eq!(std::fs::read_dir(root.path())?.count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use tracing::debug;

mod sweep;

pub use sweep::{
    LOCK_PREFIX, LOCK_SUFFIX, Leftover, LeftoverKind, RunLock, SweepError, is_run_id, leftovers,
    lock_path, parse_name, remove_leftover, remove_run_dirs, run_is_alive,
};

/// The name every session workspace starts with; the sweep looks for it.
pub const WORKSPACE_PREFIX: &str = "evals-opencode-";

/// The name every session data home starts with.
pub const HOME_PREFIX: &str = "evals-opencode-home-";

/// The name a staged copy of the configuration file's directory starts with.
pub const CONFIG_PREFIX: &str = "evals-opencode-config-";

/// The name of the credentials file inside OpenCode's data folder.
pub const AUTH_FILE_NAME: &str = "auth.json";

/// Why the session directories could not be made, filled or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The run id would make a directory name a sweep cannot parse.
    #[error("run id `{0}` must be non-empty lowercase letters and digits")]
    InvalidRunId(String),
    /// A session directory could not be created.
    #[error("cannot create a session directory under `{root}`")]
    Create {
        /// The temp root.
        root: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The host file to copy cannot be read.
    #[error("cannot read `{path}`: {reason}")]
    ReadSource {
        /// The host file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// The copy could not be written.
    #[error("cannot write the copy `{path}`")]
    WriteCopy {
        /// The copy's path.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A session directory could not be removed.
    #[error("cannot remove session directory `{path}`")]
    Remove {
        /// The directory left behind.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
}

/// The private directories of one model call, removed when dropped.
#[derive(Debug)]
pub struct SessionDirs {
    workspace: TempDir,
    home: TempDir,
    config: Option<TempDir>,
    root: PathBuf,
    run_id: String,
}

impl SessionDirs {
    /// Creates the workspace and the data home under `root`, copying `auth_file` into the home
    /// when given. On any failure nothing is left behind.
    pub fn create(root: &Path, run_id: &str, auth_file: Option<&Path>) -> Result<Self, Error> {
        if run_id.is_empty()
            || !run_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(Error::InvalidRunId(run_id.into()));
        }
        let dirs = Self {
            workspace: private_dir(root, WORKSPACE_PREFIX, run_id)?,
            home: private_dir(root, HOME_PREFIX, run_id)?,
            config: None,
            root: root.into(),
            run_id: run_id.into(),
        };
        if let Some(auth_file) = auth_file {
            copy_private(auth_file, &dirs.home().join(AUTH_FILE_NAME))?;
        }
        debug!(workspace = %dirs.workspace().display(), home = %dirs.home().display(), "session directories");
        Ok(dirs)
    }

    /// The session workspace, mounted at `/workspace`.
    pub fn workspace(&self) -> &Path {
        self.workspace.path()
    }

    /// The data home, mounted at OpenCode's data folder.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Copies a configuration file into a private directory of this session, as `file_name`, and
    /// returns the copy's path. Used when every mount source must live under the temp root.
    pub fn stage_config(&mut self, source: &Path, file_name: &str) -> Result<PathBuf, Error> {
        let dir = private_dir(&self.root, CONFIG_PREFIX, &self.run_id)?;
        let copy = dir.path().join(file_name);
        copy_private(source, &copy)?;
        fs::set_permissions(&copy, Permissions::from_mode(0o644)).map_err(|source| {
            Error::WriteCopy {
                path: copy.clone(),
                source,
            }
        })?;
        self.config = Some(dir);
        Ok(copy)
    }

    /// Every directory of the session, for a caller that must fix their permissions before
    /// [`SessionDirs::close`] can remove them.
    pub fn paths(&self) -> Vec<&Path> {
        let config = self.config.as_ref().map(TempDir::path);
        [Some(self.workspace()), Some(self.home()), config]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Removes every directory of the session, reporting the first failure.
    pub fn close(self) -> Result<(), Error> {
        let mut first_error = None;
        for dir in [Some(self.workspace), Some(self.home), self.config]
            .into_iter()
            .flatten()
        {
            let path = dir.path().to_path_buf();
            if let Err(source) = dir.close() {
                first_error.get_or_insert(Error::Remove { path, source });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A new directory `<prefix><run id>-XXXX` under `root`, readable by its owner only.
fn private_dir(root: &Path, prefix: &str, run_id: &str) -> Result<TempDir, Error> {
    let create_error = |source| Error::Create {
        root: root.into(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!("{prefix}{run_id}-"))
        .tempdir_in(root)
        .map_err(create_error)?;
    fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).map_err(create_error)?;
    Ok(dir)
}

/// Copies the contents of `source`, following symbolic links, into a new file of mode `0600`.
fn copy_private(source: &Path, destination: &Path) -> Result<(), Error> {
    let read_error = |reason: String| Error::ReadSource {
        path: source.into(),
        reason,
    };
    let mut input = File::open(source).map_err(|err| {
        read_error(format!(
            "{err}; check the file's permissions or pass another"
        ))
    })?;
    let meta = input
        .metadata()
        .map_err(|err| read_error(err.to_string()))?;
    if !meta.is_file() {
        return Err(read_error("it is not a regular file".into()));
    }
    let write_error = |source| Error::WriteCopy {
        path: destination.into(),
        source,
    };
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(destination)
        .map_err(write_error)?;
    io::copy(&mut input, &mut output).map_err(|err| match err.kind() {
        io::ErrorKind::IsADirectory => read_error("it is a directory".into()),
        _ => write_error(err),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn both_directories_are_private_and_carry_the_run_id() {
        let root = tempfile::tempdir().unwrap();
        let dirs = SessionDirs::create(root.path(), "run42", None).unwrap();
        for (dir, prefix) in [
            (dirs.workspace(), "evals-opencode-run42-"),
            (dirs.home(), "evals-opencode-home-run42-"),
        ] {
            assert!(
                dir.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(prefix)
            );
            assert_eq!(mode(dir), 0o700);
        }
    }

    #[test]
    fn the_auth_copy_has_the_contents_and_mode_0600() {
        let root = tempfile::tempdir().unwrap();
        let host = root.path().join("host-auth.json");
        fs::write(&host, r#"{"openai":{"type":"api","key":"sk-test"}}"#).unwrap();
        let dirs = SessionDirs::create(root.path(), "r1", Some(&host)).unwrap();
        let copy = dirs.home().join("auth.json");
        assert_eq!(fs::read(&copy).unwrap(), fs::read(&host).unwrap());
        assert_eq!(mode(&copy), 0o600);
        fs::write(&copy, "changed").unwrap();
        assert_ne!(
            fs::read(&host).unwrap(),
            b"changed",
            "the host file must be a separate file"
        );
    }

    #[test]
    fn a_symlinked_auth_file_is_followed() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real.json");
        fs::write(&real, "{}").unwrap();
        let link = root.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dirs = SessionDirs::create(root.path(), "r1", Some(&link)).unwrap();
        let copy = dirs.home().join("auth.json");
        assert!(
            !fs::symlink_metadata(&copy)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(copy).unwrap(), b"{}");
    }

    #[test]
    fn a_directory_or_a_missing_auth_file_is_a_clear_error_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let auth_dir = root.path().join("auth.json");
        fs::create_dir(&auth_dir).unwrap();
        for (path, reason) in [
            (auth_dir.clone(), "not a regular file"),
            (root.path().join("none"), "No such file"),
        ] {
            let err = SessionDirs::create(root.path(), "r1", Some(&path))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(reason) && err.contains(&format!("`{}`", path.display())),
                "{err}"
            );
        }
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "only the test's own auth.json dir"
        );
    }

    #[test]
    fn an_unreadable_auth_file_is_a_clear_error() {
        // A socket cannot be opened for reading by anyone, root included, so this holds in CI.
        let root = tempfile::tempdir().unwrap();
        let host = root.path().join("auth.json");
        let _listener = std::os::unix::net::UnixListener::bind(&host).unwrap();
        let err = SessionDirs::create(root.path(), "r1", Some(&host))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot read `{}`", host.display())),
            "{err}"
        );
        assert!(err.contains("check the file's permissions"), "{err}");
    }

    #[test]
    fn close_and_drop_remove_every_directory() {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("opencode.json");
        fs::write(&config, "{}").unwrap();
        let mut dirs = SessionDirs::create(root.path(), "r1", None).unwrap();
        let staged = dirs.stage_config(&config, "opencode.json").unwrap();
        assert!(staged.starts_with(root.path()) && staged.is_file());
        fs::create_dir_all(dirs.workspace().join("deep/tree")).unwrap();
        dirs.close().unwrap();
        drop(SessionDirs::create(root.path(), "r2", None).unwrap());
        let left: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["opencode.json"]);
    }

    #[test]
    fn run_ids_that_would_confuse_a_sweep_are_refused() {
        let root = tempfile::tempdir().unwrap();
        for run_id in ["", "Upper", "a-b", "../x"] {
            assert!(matches!(
                SessionDirs::create(root.path(), run_id, None),
                Err(Error::InvalidRunId(_))
            ));
        }
    }
}
