//! `start`, `remove` and `open_permissions` against a real Docker Engine and the local image.
//!
//! Every container a test makes is removed when the test ends, even by a panic. Servers listen
//! on loopback only. Without Docker or the image the tests are skipped with a reason, unless
//! `REQUIRE_DOCKER=1`, under which they fail instead.

// `open_permissions` is checked by deleting as another user, which takes `runuser`.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use evals_auth_isolation::SessionDirs;
use evals_docker_exec::{
    CONFIG_CONTENT_VAR, ContainerSpec, Docker, DockerError, LogLevel, Network, RunningContainer,
    SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR, Secret, ServerLogging, StartError, args, mount_flag,
    open_permissions, overlay, remove, start,
};
use evals_mount_plan::{ConfigFile, ConfigKind, DATA_TARGET, Mount, PlanInput};
use evals_opencode_client::{Client, DEFAULT_USERNAME, Error as ClientError};
use evals_test_support::{ContainerGuard, IMAGE, unique_hex};

/// Generous: the two cores of a test machine may be busy with several starts at once.
const START_DEADLINE: Duration = Duration::from_secs(90);

/// The readiness probe's own deadline, as the runner uses it.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(200);

/// The label on every container these tests make, for a person cleaning up by hand.
const TEST_LABEL: &str = "evals-docker-exec.test";

/// Forwarded variables, with values a careless quoting would mangle.
const FORWARDED: [(&str, &str); 2] = [
    (
        "EVALS_TEST_FORWARDED_A",
        "sk-test-$HOME 'single' \"double\" ünï",
    ),
    (
        "EVALS_TEST_FORWARDED_B",
        "sk-test-0123 with spaces, and a comma",
    ),
];

/// The Docker client, or `None` (after saying why) when the tests cannot run here.
fn docker() -> Option<Docker> {
    evals_test_support::docker_ready(IMAGE).then(|| Docker::new("docker"))
}

/// Whether this process runs as root: `/proc/self` belongs to the process's user.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// A container name no parallel test or real run shares, removed when dropped, whatever the
/// test did.
struct Guard {
    docker: Docker,
    name: String,
    /// Removes the container; most are gone already, as removing them is what the code under
    /// test does.
    _removal: ContainerGuard,
}

impl Guard {
    fn new(docker: &Docker, case: &str) -> Self {
        let name = format!("evals-opencode-test{}-{case}", unique_hex(12));
        Self {
            docker: docker.clone(),
            _removal: ContainerGuard::new([name.clone()]),
            name,
        }
    }

    /// Whether no container of this name exists, running or not.
    fn is_gone(&self) -> bool {
        let filter = format!("name=^/{}$", self.name);
        let listed = self
            .docker
            .output(&args(["ps", "--all", "--quiet", "--filter", &filter]), &[]);
        listed.unwrap().is_empty()
    }

    /// `docker exec <name> /bin/sh -c <script>`.
    fn sh(&self, script: &str) -> Result<String, DockerError> {
        self.docker
            .output(&args(["exec", &self.name, "/bin/sh", "-c", script]), &[])
    }

    /// `docker inspect --format <format> <name>`, parsed as JSON.
    fn inspect(&self, format: &str) -> serde_json::Value {
        let text = self
            .docker
            .output(&args(["inspect", "--format", format, &self.name]), &[])
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// A temp dir whose contents the agent may leave owned by root: when this process is not root,
/// their permissions are opened from a root container before the directory is removed.
struct TempRoot {
    docker: Docker,
    dir: tempfile::TempDir,
}

impl TempRoot {
    fn new(docker: &Docker) -> Self {
        Self {
            docker: docker.clone(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        if is_root() {
            return;
        }
        // A thread of its own, so that this works from inside the test's runtime too.
        let (docker, dir) = (self.docker.clone(), self.dir.path().to_path_buf());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime
                .block_on(open_permissions(&docker, IMAGE, &dir))
                .ok();
        })
        .join()
        .ok();
    }
}

/// One call's session: private directories, a server password, and the spec's parts.
struct Session {
    dirs: SessionDirs,
    password: Secret,
}

impl Session {
    fn new(root: &TempRoot, auth_file: Option<&Path>) -> Self {
        let run_id = format!("enginetest{}", unique_hex(12));
        Self {
            dirs: SessionDirs::create(root.path(), &run_id, auth_file).unwrap(),
            password: Secret::new(format!("pw-{}", unique_hex(12))),
        }
    }

    /// The runner's three mounts, with `config` when given.
    fn mounts(&self, config: Option<&ConfigFile>) -> Vec<Mount> {
        evals_mount_plan::plan(&PlanInput {
            workspace: self.dirs.workspace(),
            data_home: self.dirs.home(),
            config,
            host_tmpdir: None,
        })
        .unwrap()
    }

    /// The spec of container `guard` with `mounts`, forwarding [`FORWARDED`].
    fn spec(&self, guard: &Guard, network: Network, mounts: Vec<Mount>) -> ContainerSpec {
        ContainerSpec {
            name: guard.name.clone(),
            labels: BTreeMap::from([(TEST_LABEL.to_owned(), "engine".to_owned())]),
            image: IMAGE.into(),
            network,
            mounts,
            runner_env: [CONFIG_CONTENT_VAR, SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR]
                .map(String::from)
                .to_vec(),
            forwarded_env: FORWARDED.map(|(name, _)| name.to_owned()).to_vec(),
            logging: ServerLogging {
                level: LogLevel::Info,
                print_logs: false,
            },
        }
    }

    /// The values of every variable the spec names, as the runner hands them over.
    fn env(&self) -> Vec<(String, Secret)> {
        let mut env = vec![
            (CONFIG_CONTENT_VAR.to_owned(), Secret::new(overlay(None))),
            (SERVER_PASSWORD_VAR.to_owned(), self.password.clone()),
            (
                SERVER_USERNAME_VAR.to_owned(),
                Secret::new(DEFAULT_USERNAME),
            ),
        ];
        env.extend(FORWARDED.map(|(name, value)| (name.to_owned(), Secret::new(value))));
        env
    }

    /// The runner's readiness probe: the server's health, with this session's password.
    fn probe(&self) -> impl Fn(u16) -> std::pin::Pin<Box<dyn Future<Output = bool>>> + use<> {
        let password = self.password.clone();
        move |port| {
            let client = client(port, &password);
            Box::pin(async move { client.health(HEALTH_TIMEOUT).await.is_ok() })
        }
    }

    /// Starts container `guard` on `network`, waiting for its server.
    async fn start(
        &self,
        docker: &Docker,
        guard: &Guard,
        network: Network,
        mounts: Vec<Mount>,
    ) -> Result<RunningContainer, StartError> {
        let spec = self.spec(guard, network, mounts);
        start(docker, spec, &self.env(), START_DEADLINE, self.probe()).await
    }
}

fn client(port: u16, password: &Secret) -> Client {
    Client::new(&format!("http://127.0.0.1:{port}"), password.expose()).unwrap()
}

const HOST: Network = Network::Host { port: 0 };

#[tokio::test]
async fn a_started_container_answers_with_its_password_only() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "answers");

    let running = session
        .start(&docker, &guard, HOST, session.mounts(None))
        .await
        .unwrap();
    assert_eq!(running.name(), guard.name);
    let health = client(running.port(), &session.password)
        .health(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(health.healthy);
    assert_eq!(health.version, "1.18.33");

    let stranger = client(running.port(), &Secret::new("not-the-password"));
    let refused = stranger.health(Duration::from_secs(10)).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::Status { status: 401, .. }),
        "{refused:?}"
    );
}

#[tokio::test]
async fn forwarded_values_reach_the_container_but_not_its_command_line() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "forwarded");

    let _running = session
        .start(&docker, &guard, HOST, session.mounts(None))
        .await
        .unwrap();
    for (name, value) in FORWARDED {
        let inside = guard.sh(&format!("printf %s \"${name}\"")).unwrap();
        assert_eq!(inside, value, "`{name}` inside the container");
    }

    // The values are in the container's environment, as expected: this also shows that the
    // command-line check below would see them if they were there.
    let config_env = guard.inspect("{{json .Config.Env}}");
    let config_env: Vec<&str> = config_env
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry.as_str().unwrap())
        .collect();
    let command_line = guard.inspect("[{{json .Path}}, {{json .Args}}]");
    let command_line = command_line.to_string();
    let secrets = FORWARDED
        .map(|(name, value)| (name, value.to_owned()))
        .into_iter()
        .chain([(SERVER_PASSWORD_VAR, session.password.expose().to_owned())]);
    for (name, value) in secrets {
        assert!(config_env.contains(&format!("{name}={value}").as_str()));
        let value_as_json = serde_json::to_string(&value).unwrap();
        let value_as_json = value_as_json.trim_matches('"');
        assert!(
            !command_line.contains(value_as_json),
            "the value of `{name}` is in the container's command line: {command_line}"
        );
    }
}

#[tokio::test]
async fn the_container_works_on_a_copy_of_auth_json() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let host_auth = root.path().join("auth.json");
    let contents = r#"{"anthropic":{"type":"api","key":"sk-ant-engine-test"}}"#;
    std::fs::write(&host_auth, contents).unwrap();
    let before = std::fs::metadata(&host_auth).unwrap().modified().unwrap();
    let session = Session::new(&root, Some(&host_auth));
    let guard = Guard::new(&docker, "auth");

    let _running = session
        .start(&docker, &guard, HOST, session.mounts(None))
        .await
        .unwrap();
    let auth_inside = format!("{DATA_TARGET}/auth.json");
    assert_eq!(guard.sh(&format!("cat {auth_inside}")).unwrap(), contents);
    guard
        .sh(&format!(
            "echo '{{\"written\":\"inside\"}}' > {auth_inside}"
        ))
        .unwrap();

    let copy = std::fs::read_to_string(session.dirs.home().join("auth.json")).unwrap();
    assert_eq!(
        copy.trim(),
        r#"{"written":"inside"}"#,
        "the copy is what is mounted"
    );
    assert_eq!(std::fs::read_to_string(&host_auth).unwrap(), contents);
    let after = std::fs::metadata(&host_auth).unwrap().modified().unwrap();
    assert_eq!(after, before, "the host file's modification time");
}

#[tokio::test]
async fn the_configuration_file_is_read_only_inside() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let repo = root.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let contents = r#"{"$schema":"https://opencode.ai/config.json","autoupdate":false}"#;
    let config = ConfigFile {
        path: repo.join("opencode.json"),
        kind: ConfigKind::Json,
    };
    std::fs::write(&config.path, contents).unwrap();
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "config");

    let mounts = session.mounts(Some(&config));
    let _running = session.start(&docker, &guard, HOST, mounts).await.unwrap();
    let inside = "/root/.config/opencode/opencode.json";
    assert_eq!(guard.sh(&format!("cat {inside}")).unwrap(), contents);
    let refused = guard.sh(&format!("echo x >> {inside}")).unwrap_err();
    assert!(
        refused.to_string().contains("Read-only file system"),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(&config.path).unwrap(), contents);
}

#[tokio::test]
async fn bridge_networking_publishes_on_loopback_only() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "bridge");

    let running = session
        .start(&docker, &guard, Network::Bridge, session.mounts(None))
        .await
        .unwrap();
    let published = docker.output(&args(["port", &guard.name]), &[]).unwrap();
    let expected = format!("4096/tcp -> 127.0.0.1:{}", running.port());
    assert_eq!(published.lines().collect::<Vec<_>>(), [expected.as_str()]);
    let health = client(running.port(), &session.password)
        .health(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(health.healthy);
}

#[tokio::test]
async fn a_missing_image_is_a_docker_error_with_a_hint_and_leaves_nothing() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "noimage");
    let mut spec = session.spec(&guard, HOST, session.mounts(None));
    spec.image = format!("evals-opencode:no-such-tag-{}", unique_hex(12));

    let err = start(
        &docker,
        spec,
        &session.env(),
        START_DEADLINE,
        session.probe(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StartError::Docker { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("cargo xtask image"), "{err:?}");
    assert!(guard.is_gone());
}

#[tokio::test]
async fn a_run_that_fails_after_creating_the_container_removes_it() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "badmount");
    // A file where the data folder should be: Docker creates the container, then cannot start
    // it, and leaves it behind in the `Created` state.
    let not_a_dir = root.path().join("not-a-directory");
    std::fs::write(&not_a_dir, "").unwrap();
    let mut mounts = session.mounts(None);
    mounts[1].source = not_a_dir;

    let err = session
        .start(&docker, &guard, HOST, mounts)
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Docker { .. }), "{err:?}");
    assert!(guard.is_gone(), "the created container is left");
}

#[tokio::test]
async fn a_server_that_dies_at_once_is_reported_with_its_log_and_removed() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "dies");
    // OpenCode creates folders in its data folder as it starts; read-only, it exits at once
    // with `EROFS`. Nothing else in a spec can make the server itself fail this reliably.
    let mut mounts = session.mounts(None);
    mounts[1].read_only = true;

    let started = std::time::Instant::now();
    let err = session
        .start(&docker, &guard, HOST, mounts)
        .await
        .unwrap_err();
    let StartError::Exited { name, logs } = &err else {
        panic!("expected `Exited`, got {err:?}");
    };
    assert_eq!(name, &guard.name);
    assert!(logs.contains("EROFS"), "{logs}");
    assert!(
        started.elapsed() < START_DEADLINE,
        "the exit is noticed before the deadline"
    );
    assert!(guard.is_gone());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_removed() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "timeout");
    let spec = session.spec(&guard, HOST, session.mounts(None));
    let never = |_port| async { false };

    let err = start(&docker, spec, &session.env(), Duration::from_secs(3), never)
        .await
        .unwrap_err();
    let StartError::TimedOut { name, seconds, .. } = &err else {
        panic!("expected `TimedOut`, got {err:?}");
    };
    assert_eq!((name, *seconds), (&guard.name, 3));
    assert!(guard.is_gone());
}

#[tokio::test]
async fn remove_takes_the_container_away() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    let session = Session::new(&root, None);
    let guard = Guard::new(&docker, "remove");

    let running = session
        .start(&docker, &guard, HOST, session.mounts(None))
        .await
        .unwrap();
    assert!(!guard.is_gone());
    running.remove().await.unwrap();
    assert!(guard.is_gone());
    remove(&docker, &guard.name)
        .await
        .expect("removing a container that is gone is not an error");
}

/// Runs `rm -rf path` as a user other than root: `nobody` when this process is root.
fn remove_as_non_root(path: &Path) -> bool {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "nobody", "--", "rm", "-rf"]);
        command
    } else {
        let mut command = Command::new("rm");
        command.arg("-rf");
        command
    };
    // The refusal expected before the permissions are opened is no news.
    let status = command
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    status.success() && !path.exists()
}

#[tokio::test]
async fn open_permissions_makes_a_tree_left_by_root_removable() {
    let Some(docker) = docker() else { return };
    let root = TempRoot::new(&docker);
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let tree: PathBuf = root.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let guard = Guard::new(&docker, "perms");
    let mount = mount_flag(&Mount {
        source: tree.clone(),
        target: "/tree".into(),
        read_only: false,
    });
    let script = "umask 077 && mkdir -p /tree/deep/er && echo x > /tree/deep/er/file";
    docker
        .output(
            &args([
                "run",
                "--rm",
                "--pull",
                "never",
                "--network",
                "none",
                "--name",
                &guard.name,
                "--entrypoint",
                "/bin/sh",
                "--mount",
                &mount,
                IMAGE,
                "-c",
                script,
            ]),
            &[],
        )
        .unwrap();
    let deep = tree.join("deep");
    assert!(!remove_as_non_root(&deep), "the tree is removable before");

    open_permissions(&docker, IMAGE, &tree).await.unwrap();
    assert!(remove_as_non_root(&deep), "the tree is still not removable");
}
