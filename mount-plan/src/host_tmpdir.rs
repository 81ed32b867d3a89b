//! `--host-tmpdir`: the temp root shared with the host when the runner itself runs in a container.

use std::path::{Path, PathBuf};

use crate::Error;

/// A validated `--host-tmpdir`: absolute, an existing directory, and writable by this process.
///
/// The Docker daemon resolves bind-mount sources on the host, so when the runner lives in a
/// container this directory must be mounted into it at the same path, and every source the
/// runner mounts must lie under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTmpdir {
    path: PathBuf,
}

impl HostTmpdir {
    /// Checks `path` and resolves symbolic links in it, so the containment check that follows
    /// compares real paths.
    pub fn validate(path: &Path) -> Result<Self, Error> {
        let refuse = |reason: String| Error::HostTmpdir {
            path: path.into(),
            reason,
        };
        if !path.is_absolute() {
            return Err(refuse("must be an absolute path".into()));
        }
        let meta = path.metadata().map_err(|err| {
            refuse(format!(
                "cannot be used ({err}); create it on the host first"
            ))
        })?;
        if !meta.is_dir() {
            return Err(refuse("is not a directory".into()));
        }
        tempfile::Builder::new()
            .prefix(".evals-runner-write-check-")
            .tempfile_in(path)
            .map_err(|err| refuse(format!("is not writable ({err})")))?;
        let path = path
            .canonicalize()
            .map_err(|err| refuse(format!("cannot be resolved ({err})")))?;
        Ok(Self { path })
    }

    /// The resolved directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a mount source that does not lie under this directory.
    pub fn check_contains(&self, source: &Path) -> Result<(), Error> {
        if source.starts_with(&self.path) {
            Ok(())
        } else {
            Err(Error::OutsideHostTmpdir {
                path: source.into(),
                host_tmpdir: self.path.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PlanInput, plan};

    #[test]
    fn a_writable_absolute_directory_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostTmpdir::validate(dir.path()).unwrap();
        assert_eq!(host.path(), dir.path().canonicalize().unwrap());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "write check left a file"
        );
    }

    #[test]
    fn unusable_directories_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        for (path, reason) in [
            (PathBuf::from("relative/tmp"), "must be an absolute path"),
            (dir.path().join("missing"), "create it on the host first"),
            (file, "is not a directory"),
        ] {
            let err = HostTmpdir::validate(&path).unwrap_err().to_string();
            assert!(
                err.contains(reason) && err.contains("--host-tmpdir"),
                "{err}"
            );
        }
    }

    #[test]
    fn every_mount_source_must_lie_under_the_host_tmpdir() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostTmpdir::validate(dir.path()).unwrap();
        let inside = host.path().join("evals-opencode-1");
        let input = PlanInput {
            workspace: &inside,
            data_home: Path::new("/elsewhere/evals-opencode-home-1"),
            config: None,
            host_tmpdir: Some(&host),
        };
        let err = plan(&input).unwrap_err().to_string();
        assert!(
            err.contains("`/elsewhere/evals-opencode-home-1` is outside"),
            "{err}"
        );
        assert!(
            plan(&PlanInput {
                data_home: &inside,
                ..input
            })
            .is_ok()
        );
    }
}
