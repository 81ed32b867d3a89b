//! Where things live: the workspace root, and xtask's cache outside the repository.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::vars;

/// The workspace root: the folder that holds the root `Cargo.toml` and `.ci/`.
pub fn workspace_root() -> PathBuf {
    // xtask sits one level below the root, so this holds wherever the checkout is.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Where cargo builds: `$CARGO_TARGET_DIR`, else `target/` in the workspace root.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os(vars::CARGO_TARGET_DIR)
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// xtask's cache: `$XDG_CACHE_HOME/evals-runner`, else `$HOME/.cache/evals-runner`.
///
/// Fails when neither variable is set to an absolute path.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    cache_dir_from(
        std::env::var_os(vars::XDG_CACHE_HOME),
        std::env::var_os(vars::HOME),
    )
    .context("no cache folder: set `XDG_CACHE_HOME` or `HOME` to an absolute path")
}

/// [`cache_dir`] on given values; relative values are ignored, as the XDG rules ask.
fn cache_dir_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |value: Option<OsString>| value.map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute(xdg_cache_home).or_else(|| absolute(home).map(|h| h.join(".cache")))?;
    Some(base.join("evals-runner"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(value: &str) -> Option<OsString> {
        Some(value.into())
    }

    #[test]
    fn the_cache_prefers_xdg_cache_home() {
        let dir = cache_dir_from(os("/xdg"), os("/home/me"));
        assert_eq!(dir, Some(PathBuf::from("/xdg/evals-runner")));
    }

    #[test]
    fn the_cache_falls_back_to_dot_cache_in_home() {
        let dir = cache_dir_from(None, os("/home/me"));
        assert_eq!(dir, Some(PathBuf::from("/home/me/.cache/evals-runner")));
    }

    #[test]
    fn a_relative_xdg_cache_home_is_ignored() {
        let dir = cache_dir_from(os("cache"), os("/home/me"));
        assert_eq!(dir, Some(PathBuf::from("/home/me/.cache/evals-runner")));
    }

    #[test]
    fn no_absolute_base_means_no_cache() {
        assert_eq!(cache_dir_from(None, os("relative")), None);
    }

    #[test]
    fn the_workspace_root_holds_the_ci_script() {
        assert!(workspace_root().join(".ci/docker-up").is_file());
    }
}
