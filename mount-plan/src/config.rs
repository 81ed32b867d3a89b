//! Finding the two host files a container may see: OpenCode's configuration and `auth.json`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use crate::Error;

/// The two names OpenCode reads its global configuration from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// `opencode.json`: plain JSON.
    Json,
    /// `opencode.jsonc`: JSON with comments.
    Jsonc,
}

impl ConfigKind {
    /// The file name OpenCode looks for, used as the name inside the container.
    pub fn file_name(self) -> &'static str {
        match self {
            ConfigKind::Json => "opencode.json",
            ConfigKind::Jsonc => "opencode.jsonc",
        }
    }
}

/// A configuration file on the host and how OpenCode should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Its absolute path on the host.
    pub path: PathBuf,
    /// Whether it is mounted as `opencode.json` or `opencode.jsonc`.
    pub kind: ConfigKind,
}

/// The outcome of looking for a configuration file in a repository root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigSearch {
    /// The file that applies, if any.
    pub chosen: Option<ConfigFile>,
    /// `opencode.jsonc` when `opencode.json` was found beside it and won.
    pub ignored: Option<PathBuf>,
}

/// Looks for `opencode.json` and `opencode.jsonc` in `root`; when both exist the first wins and
/// a warning names the ignored one.
pub fn find_config(root: &Path) -> Result<ConfigSearch, Error> {
    let json = existing_file(&root.join(ConfigKind::Json.file_name()))?;
    let jsonc = existing_file(&root.join(ConfigKind::Jsonc.file_name()))?;
    let search = match (json, jsonc) {
        (Some(json), jsonc) => ConfigSearch {
            chosen: Some(ConfigFile {
                path: json,
                kind: ConfigKind::Json,
            }),
            ignored: jsonc,
        },
        (None, Some(jsonc)) => ConfigSearch {
            chosen: Some(ConfigFile {
                path: jsonc,
                kind: ConfigKind::Jsonc,
            }),
            ignored: None,
        },
        (None, None) => ConfigSearch::default(),
    };
    if let Some(ignored) = &search.ignored {
        warn!(
            "both opencode.json and opencode.jsonc exist: using opencode.json, ignoring `{}`",
            ignored.display()
        );
    }
    debug!(chosen = ?search.chosen, "configuration file");
    Ok(search)
}

/// The file given with `--opencode-config`: it must exist and be a regular file. A name ending
/// in `.jsonc` is mounted as `opencode.jsonc`, any other as `opencode.json`.
pub fn config_from_path(path: &Path) -> Result<ConfigFile, Error> {
    let config_error = |reason: String| Error::Config {
        path: path.into(),
        reason,
    };
    let resolved = path
        .canonicalize()
        .map_err(|err| config_error(format!("cannot be read ({err}); check the path")))?;
    if !resolved.is_file() {
        return Err(config_error("is not a regular file".into()));
    }
    let kind = match resolved.extension() {
        Some(extension) if extension == "jsonc" => ConfigKind::Jsonc,
        _ => ConfigKind::Json,
    };
    Ok(ConfigFile {
        path: resolved,
        kind,
    })
}

/// Where the host keeps OpenCode's `auth.json`: the `--auth-file` flag when given, else
/// `$XDG_DATA_HOME/opencode/auth.json`, else `$HOME/.local/share/opencode/auth.json`.
///
/// Pure: it says where to look; whether the file exists is the caller's question. An empty or
/// relative `XDG_DATA_HOME` is ignored, as the XDG base directory rules say.
pub fn auth_file(
    flag: Option<&Path>,
    xdg_data_home: Option<&OsStr>,
    home: Option<&OsStr>,
) -> Option<PathBuf> {
    if let Some(flag) = flag {
        return Some(flag.into());
    }
    let data_home = absolute(xdg_data_home)
        .map(Path::to_path_buf)
        .or_else(|| absolute(home).map(|home| home.join(".local/share")))?;
    Some(data_home.join("opencode/auth.json"))
}

/// The variable's value as a path, when it is an absolute one.
fn absolute(value: Option<&OsStr>) -> Option<&Path> {
    value.map(Path::new).filter(|path| path.is_absolute())
}

/// `path` made absolute when it names a regular file, `None` when nothing is there.
fn existing_file(path: &Path) -> Result<Option<PathBuf>, Error> {
    match path.metadata() {
        Ok(meta) if meta.is_file() => Ok(Some(std::path::absolute(path).unwrap_or(path.into()))),
        Ok(_) => Err(Error::Config {
            path: path.into(),
            reason: "is not a regular file".into(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadRepositoryRoot {
            path: path.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for file in files {
            std::fs::write(root.path().join(file), "{}").unwrap();
        }
        root
    }

    #[test]
    fn no_config_file_means_no_mount() {
        assert_eq!(
            find_config(root_with(&[]).path()).unwrap(),
            ConfigSearch::default()
        );
    }

    #[test]
    fn either_file_alone_is_chosen_with_its_kind() {
        for (file, kind) in [
            ("opencode.json", ConfigKind::Json),
            ("opencode.jsonc", ConfigKind::Jsonc),
        ] {
            let root = root_with(&[file]);
            let search = find_config(root.path()).unwrap();
            assert_eq!(search.chosen.unwrap().kind, kind);
            assert_eq!(search.ignored, None);
        }
    }

    #[test]
    fn opencode_json_wins_over_jsonc_and_names_the_ignored_file() {
        let root = root_with(&["opencode.json", "opencode.jsonc"]);
        let search = find_config(root.path()).unwrap();
        assert_eq!(
            search.chosen.unwrap().path,
            root.path().join("opencode.json")
        );
        assert_eq!(search.ignored, Some(root.path().join("opencode.jsonc")));
    }

    #[test]
    fn a_directory_named_like_the_config_is_an_error() {
        let root = root_with(&[]);
        std::fs::create_dir(root.path().join("opencode.json")).unwrap();
        let err = find_config(root.path()).unwrap_err().to_string();
        assert!(err.contains("is not a regular file"), "{err}");
    }

    #[test]
    fn a_given_config_is_mounted_by_its_extension() {
        let root = root_with(&["team.jsonc", "team.json"]);
        assert_eq!(
            config_from_path(&root.path().join("team.jsonc"))
                .unwrap()
                .kind,
            ConfigKind::Jsonc
        );
        assert_eq!(
            config_from_path(&root.path().join("team.json"))
                .unwrap()
                .kind,
            ConfigKind::Json
        );
    }

    #[test]
    fn a_missing_given_config_is_an_error_naming_it() {
        let err = config_from_path(Path::new("/nonexistent/opencode.json")).unwrap_err();
        assert!(
            err.to_string().contains("`/nonexistent/opencode.json`"),
            "{err}"
        );
    }

    #[test]
    fn auth_file_prefers_the_flag_then_xdg_then_home() {
        let (flag, xdg, home) = (
            Path::new("/flag/auth.json"),
            OsStr::new("/xdg"),
            OsStr::new("/home/u"),
        );
        assert_eq!(
            auth_file(Some(flag), Some(xdg), Some(home)),
            Some(flag.into())
        );
        assert_eq!(
            auth_file(None, Some(xdg), Some(home)),
            Some("/xdg/opencode/auth.json".into())
        );
        assert_eq!(
            auth_file(None, None, Some(home)),
            Some("/home/u/.local/share/opencode/auth.json".into())
        );
        assert_eq!(auth_file(None, None, None), None);
    }

    #[test]
    fn empty_or_relative_xdg_data_home_is_ignored() {
        let home = Some(OsStr::new("/home/u"));
        let expected = Some(PathBuf::from("/home/u/.local/share/opencode/auth.json"));
        assert_eq!(auth_file(None, Some(OsStr::new("")), home), expected);
        assert_eq!(
            auth_file(None, Some(OsStr::new("rel/data")), home),
            expected
        );
    }
}
