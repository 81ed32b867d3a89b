//! `evals-runner clean` and a run's own sweep: dead runs lose their containers and temp
//! directories, live runs keep theirs.
//!
//! Most tests drive a stand-in docker client (a shell script that lists the containers it is
//! given and logs what it is asked to remove), so they run anywhere and can never touch a real
//! container. One test uses the real Docker Engine, limited to its own runs; it is skipped with
//! a reason when Docker or the local image is missing, unless `REQUIRE_DOCKER=1`.

// The lock-holder test kills a real process: it re-runs this test binary as a child that holds
// a run's lock, which the runner's own code would only ever do through `evals_docker_exec`.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use evals_auth_isolation::{RunLock, SessionDirs, lock_path, run_is_alive};
use evals_cli::clean::{CleanReport, clean, clean_runs, sweep_run};
use evals_cli::error::UserError;
use evals_docker_exec::{Docker, RUN_ID_LABEL, args, run_containers};
use evals_test_support::{ContainerGuard, IMAGE, unique_hex};

const LIVE: &str = "1111111111";
const DEAD: &str = "2222222222";
const ORPHAN: &str = "3333333333";

/// Writing an executable while another thread forks can make running it fail with "text file
/// busy", so the tests of this file take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A stand-in docker client in `dir`: `ps` prints the `<name>\t<run id>` lines of `containers`
/// (those of one run when filtered by run id), `rm` appends its arguments to `rm.log`.
fn fake_docker(dir: &Path, containers: &[(&str, &str)]) -> Docker {
    let listed: String = containers
        .iter()
        .map(|(name, run_id)| format!("{name}\t{run_id}\n"))
        .collect();
    fs::write(dir.join("containers.txt"), listed).unwrap();
    let script = format!(
        r#"#!/bin/sh
here=$(dirname "$0")
case "$1" in
ps)
    run=
    for arg; do
        case "$arg" in label={RUN_ID_LABEL}=*) run=${{arg#label={RUN_ID_LABEL}=}} ;; esac
    done
    if [ -n "$run" ]; then grep "	$run\$" "$here/containers.txt" || true
    else cat "$here/containers.txt"; fi ;;
rm) shift; echo "$*" >> "$here/rm.log" ;;
*) echo "unexpected: docker $*" >&2; exit 1 ;;
esac
"#
    );
    let path = dir.join("docker");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    Docker::new(path)
}

/// A leftover directory `<prefix><run id>-<suffix>` with a file in it.
fn leftover_dir(root: &Path, prefix: &str, run_id: &str, suffix: &str) -> PathBuf {
    let dir = root.join(format!("{prefix}{run_id}-{suffix}"));
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("sub/file"), "x").unwrap();
    dir
}

/// The names under `root`, sorted.
fn entries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn clean_removes_what_dead_runs_left_and_keeps_live_runs() {
    let _turn = SERIAL.lock().await;
    let (tools, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root_path = root.path();
    let _live = RunLock::acquire(root_path, LIVE).unwrap();
    leftover_dir(root_path, "evals-opencode-", LIVE, "aaaaaa");
    leftover_dir(root_path, "evals-opencode-home-", LIVE, "aaaaaa");
    for prefix in [
        "evals-opencode-",
        "evals-opencode-home-",
        "evals-opencode-config-",
    ] {
        leftover_dir(root_path, prefix, DEAD, "bbbbbb");
    }
    // A run killed outright leaves its lock file, unlocked.
    fs::write(lock_path(root_path, DEAD), "").unwrap();
    fs::create_dir(root_path.join("unrelated")).unwrap();
    let docker = fake_docker(
        tools.path(),
        &[
            ("evals-opencode-1111111111-1", LIVE),
            ("evals-opencode-2222222222-1", DEAD),
            ("evals-opencode-2222222222-2", DEAD),
            // Containers without any lock file: their run is gone.
            ("evals-opencode-3333333333-1", ORPHAN),
            ("someone-else", "NotHex"),
        ],
    );

    let mut out = Vec::new();
    let report = clean(&docker, &[root_path.to_path_buf()], &mut out)
        .await
        .unwrap();

    let out = String::from_utf8(out)
        .unwrap()
        .replace(&root_path.display().to_string(), "[ROOT]");
    assert_eq!(
        out,
        "kept live run 1111111111
removed container evals-opencode-2222222222-1
removed container evals-opencode-2222222222-2
removed directory [ROOT]/evals-opencode-2222222222-bbbbbb
removed directory [ROOT]/evals-opencode-config-2222222222-bbbbbb
removed directory [ROOT]/evals-opencode-home-2222222222-bbbbbb
removed lock file [ROOT]/evals-opencode-run-2222222222.lock
removed container evals-opencode-3333333333-1
skipped label value `NotHex`: not a run id
removed 3 containers and 3 directories of 2 dead runs; kept 1 live run
"
    );
    assert_eq!(report.dead_runs, [DEAD, ORPHAN]);
    assert_eq!(report.live_runs, [LIVE]);
    assert_eq!(
        fs::read_to_string(tools.path().join("rm.log")).unwrap(),
        "--force --volumes evals-opencode-2222222222-1 evals-opencode-2222222222-2\n\
         --force --volumes evals-opencode-3333333333-1\n"
    );
    assert_eq!(
        entries(root_path),
        [
            "evals-opencode-1111111111-aaaaaa",
            "evals-opencode-home-1111111111-aaaaaa",
            "evals-opencode-run-1111111111.lock",
            "unrelated",
        ]
    );
}

#[tokio::test]
async fn a_run_sweeping_itself_removes_everything_but_its_lock() {
    let _turn = SERIAL.lock().await;
    let (tools, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let lock = RunLock::acquire(root.path(), LIVE).unwrap();
    let workspace = leftover_dir(root.path(), "evals-opencode-", LIVE, "aaaaaa");
    let other_run = leftover_dir(root.path(), "evals-opencode-", DEAD, "bbbbbb");
    let docker = fake_docker(
        tools.path(),
        &[
            ("evals-opencode-1111111111-1", LIVE),
            ("evals-opencode-2222222222-1", DEAD),
        ],
    );

    let report = sweep_run(&docker, root.path(), LIVE).await.unwrap();

    assert_eq!(
        report,
        CleanReport {
            containers: vec!["evals-opencode-1111111111-1".into()],
            directories: vec![workspace],
            ..CleanReport::default()
        }
    );
    assert!(lock.path().exists() && other_run.exists());
    assert!(run_is_alive(root.path(), LIVE));
}

#[tokio::test]
async fn without_docker_clean_removes_nothing_and_says_what_to_do() {
    let _turn = SERIAL.lock().await;
    let root = tempfile::tempdir().unwrap();
    let dir = leftover_dir(root.path(), "evals-opencode-", DEAD, "bbbbbb");
    let docker = Docker::new(root.path().join("no-docker-here"));

    let err = clean(&docker, &[root.path().to_path_buf()], &mut Vec::new())
        .await
        .unwrap_err();

    let user = err.downcast_ref::<UserError>().unwrap();
    assert!(user.message.starts_with("cannot run `"), "{}", user.message);
    assert!(user.hint.as_deref().unwrap().contains("--docker PATH"));
    assert!(dir.exists());
}

/// The variable that turns this test binary into a process holding a run's lock.
const HOLD_LOCK_VAR: &str = "EVALS_TEST_HOLD_LOCK_IN";

/// What the lock holder prints once it holds the lock (libtest may print before it on the line).
const LOCKED: &str = "holding the run lock";

/// Not a test of its own: when re-run with [`HOLD_LOCK_VAR`] set to a temp root, it takes
/// [`DEAD`]'s lock there, says [`LOCKED`], and sleeps until killed.
#[test]
fn lock_holder() {
    let Some(root) = std::env::var_os(HOLD_LOCK_VAR) else {
        return;
    };
    let _lock = RunLock::acquire(Path::new(&root), DEAD).unwrap();
    println!("{LOCKED}");
    std::thread::sleep(std::time::Duration::from_secs(300));
}

/// A child process, killed when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts [`lock_holder`] in a child process and waits until it holds the lock.
fn spawn_lock_holder(root: &Path) -> Holder {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["lock_holder", "--exact", "--nocapture", "--test-threads=1"])
        .env(HOLD_LOCK_VAR, root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = Holder(child);
    let stdout = BufReader::new(holder.0.stdout.take().unwrap());
    let said = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(LOCKED));
    assert!(said, "the lock holder ended without taking the lock");
    holder
}

#[tokio::test]
async fn a_run_killed_with_sigkill_is_dead_and_swept() {
    let _turn = SERIAL.lock().await;
    let (tools, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = leftover_dir(root.path(), "evals-opencode-home-", DEAD, "bbbbbb");
    let docker = fake_docker(tools.path(), &[("evals-opencode-2222222222-1", DEAD)]);
    let roots = [root.path().to_path_buf()];

    let mut holder = spawn_lock_holder(root.path());
    assert!(run_is_alive(root.path(), DEAD));
    let report = clean(&docker, &roots, &mut Vec::new()).await.unwrap();
    assert_eq!(report.live_runs, [DEAD]);
    assert!(dir.exists());

    // SIGKILL: the process gets no chance to clean up, and its lock file stays behind.
    holder.0.kill().unwrap();
    holder.0.wait().unwrap();
    assert!(lock_path(root.path(), DEAD).exists());
    assert!(!run_is_alive(root.path(), DEAD));
    let report = clean(&docker, &roots, &mut Vec::new()).await.unwrap();
    assert_eq!(report.dead_runs, [DEAD]);
    assert_eq!(report.containers, ["evals-opencode-2222222222-1"]);
    assert_eq!(report.directories, [dir]);
    assert_eq!(entries(root.path()), Vec::<String>::new());
}

/// The real docker client, or `None` (after saying why) when Docker or the image is missing.
fn real_docker() -> Option<Docker> {
    evals_test_support::docker_ready(IMAGE).then(|| Docker::new("docker"))
}

/// Real containers a test made, removed when it ends, even by a panic.
struct Containers {
    docker: Docker,
    started: usize,
    guard: ContainerGuard,
}

impl Containers {
    /// Starts `evals-opencode-<run id>-<n>`, labelled with `run_id`, sleeping.
    fn start(&mut self, run_id: &str) -> String {
        let name = format!("evals-opencode-{run_id}-{}", self.started);
        self.started += 1;
        self.guard.push(name.clone());
        let label = format!("{RUN_ID_LABEL}={run_id}");
        let mut argv = args(["run", "-d", "--pull", "never", "--network", "none"]);
        argv.extend(args([
            "--name",
            &name,
            "--label",
            &label,
            "--entrypoint",
            "/bin/sh",
        ]));
        argv.extend(args([IMAGE, "-c", "sleep 300"]));
        self.docker.output(&argv, &[]).unwrap();
        name
    }
}

#[tokio::test]
async fn real_containers_of_a_dead_run_go_and_those_of_a_live_run_stay() {
    let Some(docker) = real_docker() else {
        return;
    };
    let _turn = SERIAL.lock().await;
    let root = tempfile::tempdir().unwrap();
    // Ten random hex digits, so that no other run, test or real, shares the id.
    let (live, dead) = (unique_hex(10), unique_hex(10));
    let mut containers = Containers {
        docker: docker.clone(),
        started: 0,
        guard: ContainerGuard::default(),
    };
    let live_containers = [containers.start(&live), containers.start(&live)];
    let dead_containers = [containers.start(&dead), containers.start(&dead)];
    let _lock = RunLock::acquire(root.path(), &live).unwrap();
    let live_dirs = SessionDirs::create(root.path(), &live, None).unwrap();
    let dead_dirs = SessionDirs::create(root.path(), &dead, None).unwrap();
    let dead_paths = [
        dead_dirs.workspace().to_owned(),
        dead_dirs.home().to_owned(),
    ];
    std::mem::forget(dead_dirs);

    // Other runs on this Docker Engine are none of this test's business.
    let mut out = Vec::new();
    let only = [live.as_str(), dead.as_str()];
    let report = clean_runs(&docker, &[root.path().to_path_buf()], Some(&only), &mut out)
        .await
        .unwrap();

    let out = String::from_utf8(out).unwrap();
    for name in &dead_containers {
        assert!(
            out.contains(&format!("removed container {name}\n")),
            "{out}"
        );
    }
    for path in &dead_paths {
        assert!(!path.exists());
        assert!(
            out.contains(&format!("removed directory {}\n", path.display())),
            "{out}"
        );
    }
    assert!(out.contains(&format!("kept live run {live}\n")), "{out}");
    assert!(
        out.ends_with("removed 2 containers and 2 directories of 1 dead run; kept 1 live run\n")
    );
    assert_eq!(report.dead_runs, [dead.as_str()]);
    assert_eq!(run_containers(&docker, Some(&dead)).await.unwrap(), []);
    let kept: Vec<_> = run_containers(&docker, Some(&live))
        .await
        .unwrap()
        .into_iter()
        .map(|container| container.name)
        .collect();
    assert_eq!(kept, live_containers);
    assert!(live_dirs.workspace().exists() && live_dirs.home().exists());
}
