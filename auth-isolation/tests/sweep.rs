//! The sweep finds exactly what `SessionDirs` and `RunLock` leave behind, by run.

use std::fs;
use std::path::{Path, PathBuf};

use evals_auth_isolation::{
    LeftoverKind, RunLock, SessionDirs, leftovers, parse_name, remove_run_dirs, run_is_alive,
};

const DEAD: &str = "0a1b2c3d4e";
const LIVE: &str = "f9e8d7c6b5";

/// A session of `run_id` under `root` with a staged configuration, left behind as a killed
/// run would leave it.
fn abandoned_session(root: &Path, run_id: &str) {
    let config = root.join("opencode.json");
    fs::write(&config, "{}").unwrap();
    let mut dirs = SessionDirs::create(root, run_id, None).unwrap();
    dirs.stage_config(&config, "opencode.json").unwrap();
    fs::create_dir_all(dirs.workspace().join("src/deep")).unwrap();
    fs::write(dirs.workspace().join("src/deep/main.rs"), "fn main() {}").unwrap();
    std::mem::forget(dirs);
    fs::remove_file(config).unwrap();
}

/// The kind and run id of each path's name.
fn parsed(paths: &[PathBuf]) -> Vec<(LeftoverKind, String)> {
    paths
        .iter()
        .map(|path| {
            let (kind, run_id) = parse_name(path.file_name().unwrap().to_str().unwrap()).unwrap();
            (kind, run_id.to_owned())
        })
        .collect()
}

#[test]
fn every_directory_a_session_makes_is_found_with_its_run_id() {
    let root = tempfile::tempdir().unwrap();
    abandoned_session(root.path(), DEAD);
    let lock = RunLock::acquire(root.path(), LIVE).unwrap();
    let found = leftovers(root.path()).unwrap();
    let summary: Vec<_> = found
        .iter()
        .map(|leftover| (leftover.run_id.as_str(), leftover.kind))
        .collect();
    assert_eq!(
        summary,
        [
            (DEAD, LeftoverKind::Workspace),
            (DEAD, LeftoverKind::Config),
            (DEAD, LeftoverKind::Home),
            (LIVE, LeftoverKind::Lock),
        ]
    );
    assert_eq!(found[3].path, lock.path());
}

#[test]
fn removing_a_dead_run_leaves_a_live_one_alone() {
    let root = tempfile::tempdir().unwrap();
    abandoned_session(root.path(), DEAD);
    // A run killed outright leaves its lock file behind, unlocked.
    drop(fs::File::create(root.path().join(format!("evals-opencode-run-{DEAD}.lock"))).unwrap());
    let lock = RunLock::acquire(root.path(), LIVE).unwrap();
    abandoned_session(root.path(), LIVE);
    assert!(!run_is_alive(root.path(), DEAD));
    assert!(run_is_alive(root.path(), LIVE));

    let removed = remove_run_dirs(root.path(), DEAD).unwrap();
    assert_eq!(
        parsed(&removed),
        [
            (LeftoverKind::Workspace, DEAD.to_owned()),
            (LeftoverKind::Config, DEAD.to_owned()),
            (LeftoverKind::Home, DEAD.to_owned()),
            (LeftoverKind::Lock, DEAD.to_owned()),
        ]
    );
    let left = leftovers(root.path()).unwrap();
    assert!(left.iter().all(|leftover| leftover.run_id == LIVE));
    assert_eq!(left.len(), 4);

    // A live run sweeping itself removes its directories but keeps its lock.
    assert_eq!(remove_run_dirs(root.path(), LIVE).unwrap().len(), 3);
    assert_eq!(
        fs::read_dir(root.path()).unwrap().count(),
        1,
        "only the lock file"
    );
    assert!(lock.path().exists());
    drop(lock);
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
}
