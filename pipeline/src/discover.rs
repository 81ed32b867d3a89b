//! Finding evals on disk: every folder matched by the pattern that holds a `requirements.yaml`.

use std::path::{Component, Path, PathBuf};

use tracing::debug;

/// The pattern used when none is given.
pub const DEFAULT_PATTERN: &str = "evals/**/*";

/// The file that makes a folder an eval.
pub const REQUIREMENTS_FILE: &str = "requirements.yaml";

/// One eval found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalDir {
    /// The folder's name.
    pub id: String,
    /// The folder, relative to the directory discovery ran in.
    pub path: PathBuf,
}

impl EvalDir {
    /// The folder as a POSIX path relative to the start directory, as output files record it.
    pub fn eval_path(&self) -> String {
        posix(&self.path)
    }

    /// Where the eval's generated files go inside an output folder: its path relative to
    /// `./evals` when it lies under it, else relative to the start directory.
    pub fn generated_path(&self) -> String {
        posix(self.path.strip_prefix("evals").unwrap_or(&self.path))
    }
}

/// Why discovery found nothing to run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The pattern is not a valid glob.
    #[error("pattern `{pattern}` is not a valid glob: {message}")]
    BadPattern {
        /// The pattern given.
        pattern: String,
        /// What the glob parser said.
        message: String,
    },
    /// No folder matched by the pattern holds a `requirements.yaml`.
    #[error(
        "pattern `{pattern}` matches no eval folder (one holding `requirements.yaml`) under `{root}`"
    )]
    NoEvals {
        /// The pattern given.
        pattern: String,
        /// The directory searched from.
        root: PathBuf,
    },
}

/// The evals under `root` whose folders `pattern` matches, sorted by id (then path).
///
/// The pattern is relative to `root`. A match that is a folder holding `requirements.yaml` is an
/// eval; so is the folder of a matched `requirements.yaml` file, so `evals/**/requirements.yaml`
/// works too. Unreadable entries are skipped with a debug line.
pub fn discover(root: &Path, pattern: &str) -> Result<Vec<EvalDir>, DiscoverError> {
    let full = root.join(pattern);
    let bad_pattern = |message: String| DiscoverError::BadPattern {
        pattern: pattern.into(),
        message,
    };
    let full = full
        .to_str()
        .ok_or_else(|| bad_pattern("the path is not UTF-8".into()))?;
    let matches = glob::glob(full).map_err(|err| bad_pattern(err.to_string()))?;

    let mut evals: Vec<EvalDir> = matches
        .filter_map(|entry| {
            entry
                .map_err(|err| debug!(%err, "skipped while discovering"))
                .ok()
        })
        .filter_map(|path| eval_folder(&path))
        .filter_map(|folder| {
            let path = folder.strip_prefix(root).ok()?.to_path_buf();
            let id = path.file_name()?.to_str()?.to_owned();
            Some(EvalDir { id, path })
        })
        .collect();
    evals.sort_by(|a, b| (&a.id, &a.path).cmp(&(&b.id, &b.path)));
    evals.dedup();
    if evals.is_empty() {
        return Err(DiscoverError::NoEvals {
            pattern: pattern.into(),
            root: root.into(),
        });
    }
    debug!(count = evals.len(), pattern, "discovered evals");
    Ok(evals)
}

/// The eval folder a glob match stands for, if any.
fn eval_folder(path: &Path) -> Option<PathBuf> {
    if path.is_dir() && path.join(REQUIREMENTS_FILE).is_file() {
        return Some(path.to_path_buf());
    }
    let is_requirements = path
        .file_name()
        .is_some_and(|name| name == REQUIREMENTS_FILE);
    (is_requirements && path.is_file())
        .then(|| path.parent().map(Path::to_path_buf))
        .flatten()
}

/// `path` relative to `base` when it lies under it, as a POSIX path: how output files name
/// the files they point at.
pub fn relative_posix(path: &Path, base: &Path) -> String {
    posix(path.strip_prefix(base).unwrap_or(path))
}

/// `path` with `/` separators and without `.` segments.
pub fn posix(path: &Path) -> String {
    let parts: Vec<_> = path
        .components()
        .filter(|component| matches!(component, Component::Normal(_) | Component::ParentDir))
        .map(|component| component.as_os_str().to_string_lossy())
        .collect();
    let root = if path.has_root() { "/" } else { "" };
    format!("{root}{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(evals: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for eval in evals {
            let dir = root.path().join(eval);
            std::fs::create_dir_all(dir.join("app")).unwrap();
            std::fs::write(dir.join(REQUIREMENTS_FILE), "version: 1\n").unwrap();
        }
        std::fs::create_dir_all(root.path().join("evals/empty-category/not-an-eval")).unwrap();
        root
    }

    #[test]
    fn evals_are_found_at_any_depth_and_sorted_by_id() {
        let root = tree(&[
            "evals/b-cat/02-second",
            "evals/a-cat/03-third",
            "evals/z/01-first",
        ]);
        let ids: Vec<_> = discover(root.path(), DEFAULT_PATTERN)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["01-first", "02-second", "03-third"]);
    }

    #[test]
    fn paths_are_relative_and_generated_paths_drop_the_evals_folder() {
        let root = tree(&["evals/animation/01-scale", "other/02-x"]);
        let evals = discover(root.path(), "**/*").unwrap();
        assert_eq!(evals[0].eval_path(), "evals/animation/01-scale");
        assert_eq!(evals[0].generated_path(), "animation/01-scale");
        assert_eq!(evals[1].generated_path(), "other/02-x");
    }

    #[test]
    fn a_pattern_naming_requirements_files_works_too() {
        let root = tree(&["evals/a/01-x"]);
        let evals = discover(root.path(), "evals/**/requirements.yaml").unwrap();
        assert_eq!(evals[0].path, Path::new("evals/a/01-x"));
    }

    #[test]
    fn output_paths_are_relative_to_their_base_when_under_it() {
        assert_eq!(
            relative_posix(Path::new("/r/out/a/b.json"), Path::new("/r")),
            "out/a/b.json"
        );
        assert_eq!(
            relative_posix(Path::new("/elsewhere/x"), Path::new("/r")),
            "/elsewhere/x"
        );
    }

    #[test]
    fn a_pattern_matching_nothing_is_an_error_naming_it() {
        let root = tree(&["evals/a/01-x"]);
        let err = discover(root.path(), "nope/*").unwrap_err().to_string();
        assert!(
            err.starts_with("pattern `nope/*` matches no eval folder"),
            "{err}"
        );
        let err = discover(root.path(), "evals/[").unwrap_err().to_string();
        assert!(
            err.starts_with("pattern `evals/[` is not a valid glob"),
            "{err}"
        );
    }
}
