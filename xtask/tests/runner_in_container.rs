//! The runner in a container of its own, driving the host's Docker Engine through the mounted
//! socket: with `--host-tmpdir`, every bind mount of its OpenCode containers comes from that
//! folder (the engine resolves sources on the host), the run succeeds, and it leaves neither a
//! container nor a file behind.
//!
//! These tests need a Docker Engine and the OpenCode image (`cargo xtask image`). Without them
//! they print why and pass, unless `REQUIRE_DOCKER=1`, where they fail. Every container they
//! start, and every OpenCode container started from their host folder, is removed whatever
//! happens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use duct::cmd;
use evals_test_support::{ContainerGuard, copy_tree, docker_ready};
use evals_xtask::image::Outcome;
use evals_xtask::runner_image::{self, RunnerImageOptions};
use evals_xtask::{image, paths};
use serde_json::Value;
use tempfile::TempDir;

/// The label every container of a run carries, with the run's id.
const RUN_ID_LABEL: &str = "evals-runner.run-id";

/// The label this test puts on the runner's own container, so a person can tell it apart.
const TEST_LABEL: &str = "evals-xtask.test=runner-in-container";

/// The run's lock file, `evals-opencode-run-<run id>.lock`, under the temp root.
const LOCK_PREFIX: &str = "evals-opencode-run-";
const LOCK_SUFFIX: &str = ".lock";

/// Where the work folder is mounted in the runner's container.
const WORK_IN: &str = "/work-in";

/// How long a whole run may take on a slow, busy machine.
const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// The runner's image, built at most once per test binary.
fn runner_image() -> &'static Outcome {
    static IMAGE: OnceLock<Outcome> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let options = RunnerImageOptions::from_env().unwrap();
        runner_image::ensure(&paths::workspace_root(), &options).unwrap()
    })
}

/// The host folders of one run: the temp root shared with the runner's container, and the
/// folder it works in, holding a copy of the example evals under `evals/`.
struct Folders {
    host_tmp: TempDir,
    work: TempDir,
}

impl Folders {
    fn new() -> Self {
        // Under `/tmp` whatever `TMPDIR` says: the folder must be one the engine's host has.
        let host_tmp = tempfile::Builder::new()
            .prefix("evals-hosttmp-")
            .tempdir_in("/tmp")
            .unwrap();
        let work = tempfile::Builder::new()
            .prefix("evals-work-")
            .tempdir_in("/tmp")
            .unwrap();
        copy_tree(&examples(), &work.path().join("evals"));
        Self { host_tmp, work }
    }

    fn host_tmp(&self) -> &Path {
        self.host_tmp.path()
    }

    /// What the temp root holds, by name.
    fn host_tmp_entries(&self) -> Vec<String> {
        let entries = std::fs::read_dir(self.host_tmp()).unwrap();
        entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn read_json(&self, relative: &str) -> Value {
        let path = self.work.path().join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read `{}`: {err}", path.display()));
        serde_json::from_str(&text).unwrap()
    }
}

/// The repository's example evals.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/evals")
}

/// The ids of the example evals: the names of the folders holding a `requirements.yaml`.
fn example_ids() -> Vec<String> {
    fn walk(dir: &Path, ids: &mut Vec<String>) {
        if dir.join("requirements.yaml").is_file() {
            ids.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, ids);
            }
        }
    }
    let mut ids = Vec::new();
    walk(&examples(), &mut ids);
    ids.sort();
    ids
}

/// The host's Docker socket: the one `DOCKER_HOST` names, else the default.
fn docker_socket() -> String {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let path = host
        .strip_prefix("unix://")
        .unwrap_or("/var/run/docker.sock");
    path.to_owned()
}

/// The runner's container. Dropping it stops the runner (SIGTERM, so it removes its own
/// containers first), then removes it and any OpenCode container still mounting something from
/// the run's temp root.
struct Runner {
    id: String,
    host_tmp: PathBuf,
}

impl Runner {
    /// `docker run -d` of the runner's image with `args`, in the work folder, the way a CI
    /// runner living in a container would start it.
    fn start(folders: &Folders, args: &[&str]) -> Self {
        let host_tmp = folders.host_tmp().to_str().unwrap();
        let work = folders.work.path().to_str().unwrap();
        let socket = docker_socket();
        let mut argv = vec!["run", "-d", "--label", TEST_LABEL, "--network", "host"];
        let volume = format!("{socket}:/var/run/docker.sock");
        let tmp_mount = format!("type=bind,source={host_tmp},target={host_tmp}");
        let work_mount = format!("type=bind,source={work},target={WORK_IN}");
        argv.extend(["-v", &volume, "--mount", &tmp_mount, "--mount", &work_mount]);
        argv.extend(["-w", WORK_IN, runner_image::TAG]);
        argv.extend(args);
        argv.extend(["--host-tmpdir", host_tmp]);

        let id = cmd("docker", &argv).read().expect("`docker run` failed");
        Self {
            id: id.trim().to_owned(),
            host_tmp: folders.host_tmp().to_path_buf(),
        }
    }

    /// The exit code once the runner has exited, `None` while it runs.
    fn exit_code(&self) -> Option<i64> {
        let format = "{{.State.Running}} {{.State.ExitCode}}";
        let state = cmd!("docker", "inspect", "--format", format, &self.id)
            .read()
            .expect("`docker inspect` of the runner failed");
        match state.trim().split_once(' ') {
            Some(("false", code)) => Some(code.parse().unwrap()),
            _ => None,
        }
    }

    /// Waits for the runner to exit and returns its exit code.
    fn wait(&self) -> i64 {
        let started = Instant::now();
        loop {
            if let Some(code) = self.exit_code() {
                return code;
            }
            assert!(
                started.elapsed() < RUN_DEADLINE,
                "the runner still runs:\n{}",
                self.logs()
            );
            sleep(Duration::from_millis(250));
        }
    }

    fn logs(&self) -> String {
        cmd!("docker", "logs", &self.id)
            .stderr_to_stdout()
            .unchecked()
            .read()
            .unwrap_or_default()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        quietly(&["stop", "--time", "20", &self.id]);
        // Removes the runner and the containers found below when it goes out of scope.
        let mut removal = ContainerGuard::new([self.id.clone()]);
        for id in labelled_containers(RUN_ID_LABEL) {
            let mounts = mount_sources(&id).unwrap_or_default();
            if mounts
                .iter()
                .any(|source| source.starts_with(&self.host_tmp))
            {
                removal.push(id);
            }
        }
    }
}

fn quietly(args: &[&str]) {
    let _ = cmd("docker", args)
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
}

/// The ids of every container, running or not, with `label` (`NAME` or `NAME=VALUE`).
fn labelled_containers(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let ids = cmd!("docker", "ps", "-aq", "--no-trunc", "--filter", filter)
        .read()
        .unwrap_or_default();
    ids.lines().map(str::to_owned).collect()
}

/// The host paths container `id` mounts; `None` when it is already gone.
fn mount_sources(id: &str) -> Option<Vec<PathBuf>> {
    let output = cmd!("docker", "inspect", "--format", "{{json .Mounts}}", id)
        .stderr_null()
        .unchecked()
        .read()
        .ok()?;
    let mounts: Value = serde_json::from_str(output.trim()).ok()?;
    let sources = mounts.as_array()?.iter();
    Some(
        sources
            .filter_map(|m| m["Source"].as_str().map(PathBuf::from))
            .collect(),
    )
}

/// The run id, from the lock file the runner holds under the temp root, once it exists.
fn run_id_of(host_tmp: &Path) -> Option<String> {
    std::fs::read_dir(host_tmp).ok()?.find_map(|entry| {
        let name = entry.ok()?.file_name().to_string_lossy().into_owned();
        let id = name.strip_prefix(LOCK_PREFIX)?.strip_suffix(LOCK_SUFFIX)?;
        Some(id.to_owned())
    })
}

/// Watches the run while it lasts: its run id, and the mounts of every OpenCode container it
/// started, read while the container lives. Returns once the runner has exited.
fn watch(runner: &Runner) -> (Option<String>, BTreeMap<String, Vec<PathBuf>>) {
    let (mut run_id, mut mounts) = (None, BTreeMap::new());
    let started = Instant::now();
    while runner.exit_code().is_none() {
        assert!(
            started.elapsed() < RUN_DEADLINE,
            "the runner still runs:\n{}",
            runner.logs()
        );
        run_id = run_id.or_else(|| run_id_of(&runner.host_tmp));
        if let Some(run_id) = &run_id {
            inspect_new_containers(run_id, &mut mounts);
        }
        sleep(Duration::from_millis(100));
    }
    (run_id, mounts)
}

/// Adds the mounts of the containers of run `run_id` not seen before (unless already gone).
fn inspect_new_containers(run_id: &str, mounts: &mut BTreeMap<String, Vec<PathBuf>>) {
    for id in labelled_containers(&format!("{RUN_ID_LABEL}={run_id}")) {
        if !mounts.contains_key(&id)
            && let Some(sources) = mount_sources(&id)
        {
            mounts.insert(id, sources);
        }
    }
}

#[test]
fn a_runner_in_a_container_mounts_only_from_the_host_tmpdir_and_cleans_up() {
    if !docker_ready(image::TAG) {
        return;
    }
    runner_image();
    let folders = Folders::new();
    // The slow model keeps each OpenCode container alive for seconds, long enough to inspect.
    let args = [
        "run",
        "--model",
        "mock/slow-3000",
        "--output",
        "out",
        "--concurrency",
        "3",
    ];
    let runner = Runner::start(&folders, &args);

    let (run_id, mounts) = watch(&runner);

    let logs = runner.logs();
    let run_id = run_id.unwrap_or_else(|| panic!("no lock file seen under the temp root:\n{logs}"));
    assert_eq!(runner.wait(), 0, "the runner failed:\n{logs}");
    assert_eq!(
        mounts.len(),
        example_ids().len(),
        "one container per eval: {mounts:#?}"
    );
    for (id, sources) in &mounts {
        assert!(!sources.is_empty(), "container {id} mounts nothing");
        let outside: Vec<_> = sources
            .iter()
            .filter(|s| !s.starts_with(folders.host_tmp()))
            .collect();
        assert!(
            outside.is_empty(),
            "container {id} mounts {outside:?} from outside the temp root"
        );
    }

    let manifest = folders.read_json("out/manifest.json");
    let mut ids: Vec<_> = manifest["evals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["evalId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, example_ids());
    assert_eq!(manifest["evalsErrored"], 0);

    assert_eq!(
        labelled_containers(&format!("{RUN_ID_LABEL}={run_id}")),
        Vec::<String>::new()
    );
    assert_eq!(folders.host_tmp_entries(), Vec::<String>::new());
}

#[test]
fn a_runner_in_a_container_solves_and_judges_the_examples() {
    if !docker_ready(image::TAG) {
        return;
    }
    runner_image();
    let folders = Folders::new();

    let solve = ["run", "--model", "mock/echo", "--output", "generated/echo"];
    let solver = Runner::start(&folders, &solve);
    assert_eq!(solver.wait(), 0, "the solver failed:\n{}", solver.logs());
    drop(solver);
    let judge = [
        "judge",
        "--model",
        "mock/keyword-judge",
        "--input",
        "generated/echo",
    ];
    let judge = Runner::start(&folders, &judge);
    assert_eq!(judge.wait(), 0, "the judge failed:\n{}", judge.logs());

    let manifest = folders.read_json("generated/echo/manifest.json");
    let summary = folders.read_json("generated/summary.json");
    let count = example_ids().len();
    assert_eq!(
        (&manifest["evalCount"], &manifest["evalsErrored"]),
        (&count.into(), &0.into())
    );
    assert_eq!(
        (&summary["evalsProcessed"], &summary["evalsErrored"]),
        (&count.into(), &0.into())
    );
    assert_eq!(folders.host_tmp_entries(), Vec::<String>::new());
}
