//! Which host paths are bind-mounted into an OpenCode container, where, and how.
//!
//! Every container of the runner sees exactly three kinds of host path:
//!
//! | target in the container | source on the host | mode |
//! |---|---|---|
//! | [`WORKSPACE_TARGET`] | the session's workspace | read-write |
//! | [`DATA_TARGET`] | the session's private home, holding a copy of `auth.json` | read-write |
//! | [`CONFIG_DIR_TARGET`]`/<file name>` | the repository's `opencode.json` or `opencode.jsonc` | read-only |
//!
//! This crate decides those three things and checks them: where the host's `auth.json` lives
//! ([`auth_file`]), which configuration file applies ([`find_config`]), whether a
//! `--host-tmpdir` is usable ([`HostTmpdir::validate`]), and the final list of mounts ([`plan`]),
//! which refuses any source that Docker could misread. Creating the session directories and
//! copying files into them belongs to `evals-auth-isolation`; turning mounts into `docker run`
//! flags belongs to `evals-docker-exec`.
//!
//! ```
//! use std::path::Path;
//! use evals_mount_plan::{PlanInput, plan};
//!
//! let mounts = plan(&PlanInput {
//!     workspace: Path::new("/tmp/evals-opencode-1a2b"),
//!     data_home: Path::new("/tmp/evals-opencode-home-1a2b"),
//!     config: None,
//!     host_tmpdir: None,
//! })?;
//! assert_eq!(mounts[0].target, "/workspace");
//! assert!(!mounts[1].read_only);
//! # Ok::<(), evals_mount_plan::Error>(())
//! ```

mod config;
mod host_tmpdir;

use std::path::{Path, PathBuf};

use tracing::debug;

pub use config::{ConfigFile, ConfigKind, ConfigSearch, auth_file, config_from_path, find_config};
pub use host_tmpdir::HostTmpdir;

/// Where the session workspace is mounted, read-write; also the server's working directory.
pub const WORKSPACE_TARGET: &str = "/workspace";

/// OpenCode's data folder: `auth.json`, its SQLite database and its logs. Always writable.
pub const DATA_TARGET: &str = "/root/.local/share/opencode";

/// OpenCode's global configuration folder; the configuration file is mounted inside it.
pub const CONFIG_DIR_TARGET: &str = "/root/.config/opencode";

/// One bind mount: a host path, the path it appears at in the container, and its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// An absolute host path, checked to be safe for Docker's mount syntax.
    pub source: PathBuf,
    /// An absolute path inside the container.
    pub target: String,
    /// Whether the container may only read it.
    pub read_only: bool,
}

/// What [`plan`] needs to know about one container's session.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The session workspace, mounted at [`WORKSPACE_TARGET`].
    pub workspace: &'a Path,
    /// The session's private data home (with the `auth.json` copy), mounted at [`DATA_TARGET`].
    pub data_home: &'a Path,
    /// The configuration file to mount read-only, if any: the repository's own file, or its copy
    /// under the host temp dir when one is given.
    pub config: Option<&'a ConfigFile>,
    /// The validated `--host-tmpdir`, under which every source must then lie.
    pub host_tmpdir: Option<&'a HostTmpdir>,
}

/// Why a mount plan or one of its inputs was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A source path Docker cannot take as it is.
    #[error("cannot mount `{path}`: {reason}")]
    UnsafeSource {
        /// The refused path.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        reason: &'static str,
    },
    /// With `--host-tmpdir`, a source outside it would not exist where the daemon looks.
    #[error(
        "mount source `{path}` is outside `--host-tmpdir` `{host_tmpdir}`: the Docker daemon \
         resolves sources on the host, so everything mounted must live under that directory"
    )]
    OutsideHostTmpdir {
        /// The source outside the host temp dir.
        path: PathBuf,
        /// The host temp dir.
        host_tmpdir: PathBuf,
    },
    /// `--host-tmpdir` is not usable.
    #[error("`--host-tmpdir` `{path}` {reason}")]
    HostTmpdir {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration file given with `--opencode-config` cannot be used.
    #[error("configuration file `{path}` {reason}")]
    Config {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the repository root failed.
    #[error("cannot look for opencode.json in `{path}`")]
    ReadRepositoryRoot {
        /// The directory searched.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
}

/// The mounts of one container, in a fixed order: workspace, data home, configuration.
///
/// Pure: it checks paths as strings and touches no disk.
pub fn plan(input: &PlanInput<'_>) -> Result<Vec<Mount>, Error> {
    let mut mounts = vec![
        Mount {
            source: input.workspace.into(),
            target: WORKSPACE_TARGET.into(),
            read_only: false,
        },
        Mount {
            source: input.data_home.into(),
            target: DATA_TARGET.into(),
            read_only: false,
        },
    ];
    if let Some(config) = input.config {
        mounts.push(Mount {
            source: config.path.clone(),
            target: format!("{CONFIG_DIR_TARGET}/{}", config.kind.file_name()),
            read_only: true,
        });
    }
    for mount in &mounts {
        check_source(&mount.source)?;
        if let Some(host_tmpdir) = input.host_tmpdir {
            host_tmpdir.check_contains(&mount.source)?;
        }
        debug!(source = %mount.source.display(), target = mount.target, ro = mount.read_only, "mount");
    }
    Ok(mounts)
}

/// Refuses the sources that Docker's `--mount` syntax cannot carry faithfully.
///
/// Spaces, commas, colons, quotes and any non-ASCII text are fine: the argv builder quotes the
/// field. A relative path would be taken as a volume name, and a line break or a byte sequence
/// that is not UTF-8 cannot be written in the flag at all.
pub fn check_source(path: &Path) -> Result<(), Error> {
    let unsafe_source = |reason| {
        Err(Error::UnsafeSource {
            path: path.into(),
            reason,
        })
    };
    let Some(text) = path.to_str() else {
        return unsafe_source("the path is not valid UTF-8; use a temp root whose path is");
    };
    if !path.is_absolute() {
        return unsafe_source("the path is not absolute");
    }
    if text.contains(['\n', '\r', '\0']) {
        return unsafe_source("the path holds a line break or NUL; use another temp root");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(workspace: &'a str, data_home: &'a str) -> PlanInput<'a> {
        PlanInput {
            workspace: Path::new(workspace),
            data_home: Path::new(data_home),
            config: None,
            host_tmpdir: None,
        }
    }

    #[test]
    fn workspace_and_data_home_are_always_mounted_read_write() {
        let mounts = plan(&input("/t/ws", "/t/home")).unwrap();
        assert_eq!(
            mounts,
            [
                Mount {
                    source: "/t/ws".into(),
                    target: "/workspace".into(),
                    read_only: false
                },
                Mount {
                    source: "/t/home".into(),
                    target: "/root/.local/share/opencode".into(),
                    read_only: false
                },
            ]
        );
    }

    #[test]
    fn the_config_file_is_mounted_read_only_under_its_own_name() {
        let config = ConfigFile {
            path: "/repo/opencode.jsonc".into(),
            kind: ConfigKind::Jsonc,
        };
        let mounts = plan(&PlanInput {
            config: Some(&config),
            ..input("/t/ws", "/t/home")
        });
        let last = mounts.unwrap().pop().unwrap();
        assert_eq!(last.target, "/root/.config/opencode/opencode.jsonc");
        assert!(last.read_only);
    }

    #[test]
    fn awkward_but_representable_paths_are_accepted() {
        for path in [
            "/t/with space",
            "/t/com,ma",
            "/t/co:lon",
            "/t/ünïcødé",
            "/t/\"q\"",
        ] {
            assert!(check_source(Path::new(path)).is_ok(), "{path}");
        }
    }

    #[test]
    fn unrepresentable_paths_are_refused_with_the_reason() {
        for (path, reason) in [
            ("relative/ws", "not absolute"),
            ("/t/line\nbreak", "line break"),
            ("/t/nul\0byte", "NUL"),
        ] {
            let err = plan(&input(path, "/t/home")).unwrap_err().to_string();
            assert!(err.contains(reason), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/t/\xff"));
        assert!(
            check_source(path)
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
    }
}
