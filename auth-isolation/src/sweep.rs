//! What a run leaves under its temp root, and the lock that tells a live run from a dead one.
//!
//! A run holds a [`RunLock`] for as long as it lives: an exclusive advisory lock on
//! `<temp root>/evals-opencode-run-<run id>.lock`. The operating system drops the lock when the
//! process ends, however it ends (SIGKILL included), so a lock file that can be locked again
//! belongs to a dead run, and a run with no lock file at all is dead too. [`leftovers`] names
//! every entry of a temp root the runner made, with its run id; [`remove_run_dirs`] removes
//! those of one run. Deciding *whether* to remove them is the caller's job: this module never
//! removes the lock file of a live run, but it does remove a live run's directories when asked,
//! since a run sweeps its own on the way out.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::{CONFIG_PREFIX, HOME_PREFIX, WORKSPACE_PREFIX};

/// The name of a run's lock file: this, the run id, then [`LOCK_SUFFIX`].
pub const LOCK_PREFIX: &str = "evals-opencode-run-";

/// The end of a run's lock file name.
pub const LOCK_SUFFIX: &str = ".lock";

/// How often [`RunLock::acquire`] starts over when a sweep deletes the file it has just locked.
const LOCK_ATTEMPTS: usize = 5;

/// Why a run's lock or leftovers could not be handled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// The run id is not one the runner makes, so no name of the runner can carry it.
    #[error("run id `{0}` must be non-empty lowercase hex digits")]
    InvalidRunId(String),
    /// The lock file could not be created or locked.
    #[error("cannot lock `{path}`")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The temp root could not be listed.
    #[error("cannot list the temp root `{root}`")]
    List {
        /// The temp root.
        root: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A leftover could not be removed.
    #[error("cannot remove `{path}`")]
    Remove {
        /// The leftover.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A leftover directory holds an entry of another user, which this user cannot delete.
    #[error(
        "cannot remove `{dir}`: `{entry}` in it belongs to uid {owner}, not to the directory's \
         owner; a container probably created it as root"
    )]
    ForeignEntry {
        /// The leftover directory.
        dir: PathBuf,
        /// The first entry found that belongs to someone else.
        entry: PathBuf,
        /// The entry's owner.
        owner: u32,
        /// The failure of the removal.
        #[source]
        source: io::Error,
    },
}

/// Whether `id` is a run id the runner makes: non-empty lowercase hex digits. Hex keeps the
/// names unambiguous: no id can be `home`, `config` or `run`.
pub fn is_run_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The path of run `run_id`'s lock file under `temp_root`.
pub fn lock_path(temp_root: &Path, run_id: &str) -> PathBuf {
    temp_root.join(format!("{LOCK_PREFIX}{run_id}{LOCK_SUFFIX}"))
}

/// The proof that a run is alive: an exclusive lock on its lock file, held while this value
/// lives. Dropping it deletes the file and releases the lock.
///
/// ```
/// use evals_auth_isolation::{RunLock, run_is_alive};
///
/// let root = tempfile::tempdir()?;
/// let lock = RunLock::acquire(root.path(), "0f3a9c1b2d")?;
/// assert!(run_is_alive(root.path(), "0f3a9c1b2d"));
/// drop(lock);
/// assert!(!run_is_alive(root.path(), "0f3a9c1b2d"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RunLock {
    // Held for its lock; closing it releases the lock.
    _file: File,
    path: PathBuf,
    run_id: String,
}

impl RunLock {
    /// Creates `<temp_root>/evals-opencode-run-<run id>.lock` and locks it, waiting while a
    /// sweep briefly holds it.
    pub fn acquire(temp_root: &Path, run_id: &str) -> Result<Self, SweepError> {
        if !is_run_id(run_id) {
            return Err(SweepError::InvalidRunId(run_id.into()));
        }
        let path = lock_path(temp_root, run_id);
        let lock_error = |source| SweepError::Lock {
            path: path.clone(),
            source,
        };
        for _ in 0..LOCK_ATTEMPTS {
            let file = create_locked(&path).map_err(lock_error)?;
            // A sweep that locked the file first may have judged the run dead and deleted it:
            // a lock on a deleted file proves nothing, so start over with a new file.
            if is_same_file(&file, &path).map_err(lock_error)? {
                debug!(path = %path.display(), "run lock held");
                return Ok(Self {
                    _file: file,
                    path,
                    run_id: run_id.into(),
                });
            }
        }
        Err(lock_error(io::Error::other(
            "the lock file was deleted each time it was locked",
        )))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Deleted while still locked, so no sweep can lock it in between and take the ending
        // run for a crashed one.
        if let Err(err) = fs::remove_file(&self.path) {
            debug!(path = %self.path.display(), %err, "cannot delete the run lock");
        }
    }
}

/// Opens (creating it, readable by all so any user's sweep can check it) and locks `path`.
fn create_locked(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)?;
    file.lock()?;
    Ok(file)
}

/// Whether `path` still names the open `file`.
fn is_same_file(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// What a look at a lock file found.
enum Probe {
    /// There is no lock file.
    Missing,
    /// A live process holds the lock.
    Held,
    /// Nobody held it; this process now does, until the file is dropped.
    Free(File),
    /// The file could not be checked.
    Unknown,
}

/// Opens the lock file anew (locks belong to an open file, so even a check from the process
/// holding it sees it held) and tries to lock it.
fn probe(path: &Path) -> Probe {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Probe::Missing,
        Err(err) => {
            debug!(path = %path.display(), %err, "cannot open a run lock");
            return Probe::Unknown;
        }
    };
    match file.try_lock() {
        Ok(()) => Probe::Free(file),
        Err(TryLockError::WouldBlock) => Probe::Held,
        Err(TryLockError::Error(err)) => {
            debug!(path = %path.display(), %err, "cannot check a run lock");
            Probe::Unknown
        }
    }
}

/// Whether run `run_id` may still be alive: `false` only when it is proven dead, that is when
/// its lock file under `temp_root` is missing or nobody holds it. A file that cannot be checked,
/// or an id that is not a run id, counts as alive: a sweep must never touch a live run.
pub fn run_is_alive(temp_root: &Path, run_id: &str) -> bool {
    if !is_run_id(run_id) {
        return true;
    }
    let alive = !matches!(
        probe(&lock_path(temp_root, run_id)),
        Probe::Missing | Probe::Free(_)
    );
    debug!(run_id, alive, "run liveness");
    alive
}

/// What a leftover of the runner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftoverKind {
    /// A session workspace, `evals-opencode-<run id>-XXXXXX`.
    Workspace,
    /// A session data home, `evals-opencode-home-<run id>-XXXXXX`.
    Home,
    /// A staged configuration, `evals-opencode-config-<run id>-XXXXXX`.
    Config,
    /// A run's lock file, `evals-opencode-run-<run id>.lock`.
    Lock,
}

/// An entry of a temp root that the runner made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The run that made it.
    pub run_id: String,
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: LeftoverKind,
}

/// The kind and run id an entry name of the runner carries, or `None` for any other name.
pub fn parse_name(name: &str) -> Option<(LeftoverKind, &str)> {
    if let Some(rest) = name.strip_prefix(LOCK_PREFIX) {
        let run_id = rest.strip_suffix(LOCK_SUFFIX)?;
        return is_run_id(run_id).then_some((LeftoverKind::Lock, run_id));
    }
    // Longest prefix first, though hex ids could not be `home` or `config` anyway.
    [
        (LeftoverKind::Home, HOME_PREFIX),
        (LeftoverKind::Config, CONFIG_PREFIX),
        (LeftoverKind::Workspace, WORKSPACE_PREFIX),
    ]
    .into_iter()
    .find_map(|(kind, prefix)| Some((kind, session_run_id(name.strip_prefix(prefix)?)?)))
}

/// The run id of `<run id>-<random suffix>`, the rest of a session directory's name.
fn session_run_id(rest: &str) -> Option<&str> {
    let (run_id, suffix) = rest.rsplit_once('-')?;
    let random = !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    (random && is_run_id(run_id)).then_some(run_id)
}

/// Every entry of `temp_root` the runner made: directories with a session name and regular
/// files with a lock name (a symbolic link is never the runner's), lock files last.
pub fn leftovers(temp_root: &Path) -> Result<Vec<Leftover>, SweepError> {
    let list_error = |source| SweepError::List {
        root: temp_root.into(),
        source,
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(temp_root).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let name = entry.file_name();
        let Some((kind, run_id)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        // `DirEntry::file_type` does not follow symbolic links.
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let expected = match kind {
            LeftoverKind::Lock => file_type.is_file(),
            _ => file_type.is_dir(),
        };
        if expected {
            found.push(Leftover {
                run_id: run_id.into(),
                path: entry.path(),
                kind,
            });
        }
    }
    found.sort_by(|a, b| {
        (a.kind == LeftoverKind::Lock, &a.path).cmp(&(b.kind == LeftoverKind::Lock, &b.path))
    });
    Ok(found)
}

/// Removes one leftover: a directory with everything in it, or a lock file that nobody holds.
/// Returns whether this call removed it (`false` for a live run's lock file, or one already
/// gone).
pub fn remove_leftover(leftover: &Leftover) -> Result<bool, SweepError> {
    match leftover.kind {
        LeftoverKind::Lock => remove_stale_lock(&leftover.path),
        _ => remove_dir(&leftover.path).map(|()| true),
    }
}

/// Removes every leftover of run `run_id` under `temp_root` but the lock file of a live run,
/// and returns their paths. Every one is tried; the first failure is returned.
pub fn remove_run_dirs(temp_root: &Path, run_id: &str) -> Result<Vec<PathBuf>, SweepError> {
    if !is_run_id(run_id) {
        return Err(SweepError::InvalidRunId(run_id.into()));
    }
    let mut removed = Vec::new();
    let mut first_error = None;
    for leftover in leftovers(temp_root)?
        .into_iter()
        .filter(|l| l.run_id == run_id)
    {
        match remove_leftover(&leftover) {
            Ok(true) => removed.push(leftover.path),
            Ok(false) => {}
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    first_error.map_or(Ok(removed), Err)
}

/// Deletes the lock file at `path` if nobody holds it, while holding it.
fn remove_stale_lock(path: &Path) -> Result<bool, SweepError> {
    let Probe::Free(_held) = probe(path) else {
        return Ok(false);
    };
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(SweepError::Remove {
            path: path.into(),
            source,
        }),
    }
}

/// Removes `dir` and its contents; on failure, names the entry that most likely stopped it.
fn remove_dir(dir: &Path) -> Result<(), SweepError> {
    // `remove_dir_all` never follows a symbolic link, even one a container swaps in midway.
    let source = match fs::remove_dir_all(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound && !dir.exists() => return Ok(()),
        Err(err) => err,
    };
    debug!(dir = %dir.display(), %source, "cannot remove a leftover directory");
    Err(match foreign_entry(dir) {
        Some((entry, owner)) => SweepError::ForeignEntry {
            dir: dir.into(),
            entry,
            owner,
            source,
        },
        None => SweepError::Remove {
            path: dir.into(),
            source,
        },
    })
}

/// The first entry under `dir`, breadth first, whose owner is not `dir`'s owner: what a
/// container running as root leaves, and a user other than root cannot delete.
fn foreign_entry(dir: &Path) -> Option<(PathBuf, u32)> {
    let owner = fs::symlink_metadata(dir).ok()?.uid();
    let mut queue = VecDeque::from([dir.to_path_buf()]);
    while let Some(next) = queue.pop_front() {
        let Ok(entries) = fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            // `DirEntry::metadata` does not follow symbolic links.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.uid() != owner {
                return Some((entry.path(), meta.uid()));
            }
            if meta.is_dir() {
                queue.push_back(entry.path());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const ID: &str = "0123456789";

    #[test]
    fn session_and_lock_names_parse_to_their_run_id() {
        for (name, kind) in [
            ("evals-opencode-0123456789-AbC123", LeftoverKind::Workspace),
            ("evals-opencode-home-0123456789-xYz789", LeftoverKind::Home),
            (
                "evals-opencode-config-0123456789-q1w2e3",
                LeftoverKind::Config,
            ),
            ("evals-opencode-run-0123456789.lock", LeftoverKind::Lock),
        ] {
            assert_eq!(parse_name(name), Some((kind, ID)), "{name}");
        }
    }

    #[test]
    fn the_words_in_prefixes_never_parse_as_run_ids() {
        // Each of these would yield `home`, `config` or `run` to a parser that tried the
        // workspace prefix alone.
        for name in [
            "evals-opencode-home-AbC123",
            "evals-opencode-config-AbC123",
            "evals-opencode-run-AbC123",
            "evals-opencode-home-0123456789",
            "evals-opencode-run-.lock",
        ] {
            assert_eq!(parse_name(name), None, "{name}");
        }
    }

    #[test]
    fn other_names_are_not_the_runners() {
        for name in [
            "evals-opencode-",
            "evals-opencode-0123456789",
            "evals-opencode-0123456789-",
            "evals-opencode-0123456789-a.b",
            "evals-opencode-ABCDEF-AbC123",
            "evals-opencode-run42-AbC123",
            "evals-opencode-run-0123456789.lock.bak",
            "evals-opencode-run-0123456789",
            "other-0123456789-AbC123",
        ] {
            assert_eq!(parse_name(name), None, "{name}");
        }
    }

    #[test]
    fn a_lock_held_by_this_process_is_alive_and_gone_after_drop() {
        let root = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(root.path(), ID).unwrap();
        assert_eq!(
            lock.path(),
            root.path().join("evals-opencode-run-0123456789.lock")
        );
        assert_eq!(lock.run_id(), ID);
        assert!(run_is_alive(root.path(), ID));
        assert!(
            !run_is_alive(root.path(), "abcdef"),
            "another run has no lock"
        );
        drop(lock);
        assert!(
            !root
                .path()
                .join("evals-opencode-run-0123456789.lock")
                .exists()
        );
        assert!(!run_is_alive(root.path(), ID));
    }

    #[test]
    fn a_stale_lock_file_nobody_holds_is_dead_and_removable() {
        let root = tempfile::tempdir().unwrap();
        let path = lock_path(root.path(), ID);
        fs::write(&path, "").unwrap();
        assert!(!run_is_alive(root.path(), ID));
        assert_eq!(remove_run_dirs(root.path(), ID).unwrap(), [path.as_path()]);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_runs_lock_file_is_never_removed() {
        let root = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(root.path(), ID).unwrap();
        assert_eq!(
            remove_run_dirs(root.path(), ID).unwrap(),
            Vec::<PathBuf>::new()
        );
        assert!(lock.path().exists());
        assert!(run_is_alive(root.path(), ID));
    }

    #[test]
    fn a_second_lock_on_the_same_run_waits_for_the_first() {
        let root = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(root.path(), ID).unwrap();
        let path = root.path().to_path_buf();
        let second = std::thread::spawn(move || RunLock::acquire(&path, ID).map(drop));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!second.is_finished(), "the second lock must wait");
        drop(first);
        second.join().unwrap().unwrap();
    }

    #[test]
    fn invalid_run_ids_are_refused_and_never_proven_dead() {
        let root = tempfile::tempdir().unwrap();
        for run_id in ["", "home", "ABC", "../x", "0f-1"] {
            assert!(matches!(
                RunLock::acquire(root.path(), run_id),
                Err(SweepError::InvalidRunId(_))
            ));
            assert!(run_is_alive(root.path(), run_id), "{run_id}");
        }
    }

    #[test]
    fn leftovers_skip_foreign_names_symlinks_and_files_with_session_names() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("evals-opencode-0123456789-AbC123");
        fs::create_dir(&dir).unwrap();
        fs::create_dir(root.path().join("unrelated")).unwrap();
        fs::write(
            root.path().join("evals-opencode-home-0123456789-aaaaaa"),
            "",
        )
        .unwrap();
        std::os::unix::fs::symlink(&dir, root.path().join("evals-opencode-abcdef-AbC123")).unwrap();
        let lock = RunLock::acquire(root.path(), "abcdef").unwrap();
        let found = leftovers(root.path()).unwrap();
        assert_eq!(
            found,
            [
                Leftover {
                    run_id: ID.into(),
                    path: dir,
                    kind: LeftoverKind::Workspace
                },
                Leftover {
                    run_id: "abcdef".into(),
                    path: lock.path().into(),
                    kind: LeftoverKind::Lock
                },
            ]
        );
    }

    #[test]
    fn a_missing_temp_root_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("missing");
        let err = leftovers(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot list the temp root `{}`", missing.display())
        );
    }

    #[test]
    fn directories_the_owner_cannot_write_are_still_removed_or_named() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("evals-opencode-0123456789-AbC123");
        fs::create_dir_all(dir.join("locked")).unwrap();
        fs::write(dir.join("locked/file"), "x").unwrap();
        fs::set_permissions(dir.join("locked"), fs::Permissions::from_mode(0o500)).unwrap();
        match remove_run_dirs(root.path(), ID) {
            // Root ignores the mode.
            Ok(removed) => assert_eq!(removed, [dir]),
            Err(err) => {
                assert!(
                    err.to_string()
                        .starts_with(&format!("cannot remove `{}`", dir.display())),
                    "{err}"
                );
                fs::set_permissions(dir.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
            }
        }
    }

    #[test]
    fn an_entry_of_another_user_is_named_in_the_error() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("evals-opencode-0123456789-AbC123");
        fs::create_dir_all(dir.join("a/node_modules")).unwrap();
        let owner = fs::metadata(&dir).unwrap().uid();
        assert_eq!(foreign_entry(&dir), None);
        // Only root may give a file away; elsewhere the error's wording is all there is to pin.
        if std::os::unix::fs::chown(dir.join("a/node_modules"), Some(owner + 1), None).is_ok() {
            assert_eq!(
                foreign_entry(&dir),
                Some((dir.join("a/node_modules"), owner + 1))
            );
        }
        let err = SweepError::ForeignEntry {
            dir: dir.clone(),
            entry: dir.join("a/node_modules"),
            owner: 0,
            source: io::ErrorKind::PermissionDenied.into(),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "cannot remove `{0}`: `{0}/a/node_modules` in it belongs to uid 0, not to the \
                 directory's owner; a container probably created it as root",
                dir.display()
            )
        );
    }
}
