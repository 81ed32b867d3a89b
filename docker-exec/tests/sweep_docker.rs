//! Listing and removing a run's containers against a real Docker Engine.
//!
//! Each test makes its own run ids (ten random hex digits, as a real run's), so it only ever sees
//! and removes its own containers. Without Docker or a local image the tests are skipped with a
//! reason, unless `REQUIRE_DOCKER=1`.

use evals_docker_exec::{
    ContainerRef, Docker, RUN_ID_LABEL, args, remove_run_containers, run_containers,
};
use evals_test_support::{ContainerGuard, IMAGE, unique_hex};

/// The Docker client, or `None` (after saying why) when the tests cannot run here.
fn docker() -> Option<Docker> {
    evals_test_support::docker_ready(IMAGE).then(|| Docker::new("docker"))
}

/// The containers a test made, removed when it ends, even by a panic (some are gone already:
/// that is what the tests check).
struct Containers {
    docker: Docker,
    made: usize,
    guard: ContainerGuard,
}

impl Containers {
    fn new(docker: &Docker) -> Self {
        Self {
            docker: docker.clone(),
            made: 0,
            guard: ContainerGuard::default(),
        }
    }

    /// Makes container `<prefix><run id>-<n>` of `run_id`: running when `running`, else only
    /// created. Returns its name.
    fn add(&mut self, run_id: &str, running: bool) -> String {
        let name = format!("evals-opencode-{run_id}-{}", self.made);
        self.made += 1;
        self.guard.push(name.clone());
        let label = format!("{RUN_ID_LABEL}={run_id}");
        let mut argv = if running {
            args(["run", "-d"])
        } else {
            args(["create"])
        };
        argv.extend(args([
            "--pull",
            "never",
            "--network",
            "none",
            "--name",
            &name,
        ]));
        argv.extend(args(["--label", &label, "--entrypoint", "/bin/sh"]));
        argv.extend(args([IMAGE, "-c", "sleep 300"]));
        self.docker.output(&argv, &[]).unwrap();
        name
    }
}

fn refs(run_id: &str, names: &[&str]) -> Vec<ContainerRef> {
    names
        .iter()
        .map(|name| ContainerRef {
            name: (*name).into(),
            run_id: run_id.into(),
        })
        .collect()
}

#[tokio::test]
async fn running_and_stopped_containers_are_listed_by_run() {
    let Some(docker) = docker() else { return };
    let (run, other) = (unique_hex(10), unique_hex(10));
    let mut containers = Containers::new(&docker);
    let running = containers.add(&run, true);
    let created = containers.add(&run, false);
    let others = containers.add(&other, true);

    let listed = run_containers(&docker, Some(&run)).await.unwrap();
    assert_eq!(listed, refs(&run, &[&running, &created]));
    let all = run_containers(&docker, None).await.unwrap();
    for (run_id, name) in [(&run, &running), (&run, &created), (&other, &others)] {
        assert!(
            all.contains(&ContainerRef {
                name: name.clone(),
                run_id: run_id.clone()
            }),
            "{name} in {all:?}"
        );
    }
}

#[tokio::test]
async fn removing_a_runs_containers_leaves_every_other_run_alone() {
    let Some(docker) = docker() else { return };
    let (run, other) = (unique_hex(10), unique_hex(10));
    let mut containers = Containers::new(&docker);
    let running = containers.add(&run, true);
    let created = containers.add(&run, false);
    let others = containers.add(&other, true);

    let mut removed = remove_run_containers(&docker, &run).await.unwrap();
    removed.sort();
    assert_eq!(removed, [running, created]);
    assert_eq!(run_containers(&docker, Some(&run)).await.unwrap(), []);
    assert_eq!(
        run_containers(&docker, Some(&other)).await.unwrap(),
        refs(&other, &[&others])
    );
    assert_eq!(
        remove_run_containers(&docker, &run).await.unwrap(),
        Vec::<String>::new(),
        "a run without containers has nothing to remove"
    );
}
