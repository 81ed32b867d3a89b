//! `start` against a recording stand-in for the docker client: the exact argv it hands over, the
//! values it puts in the client's environment only, and the calls it makes around a start.
//!
//! The stand-in is a shell script that writes down how it was called and answers like docker
//! would, so these tests need no Docker Engine.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evals_docker_exec::{
    CONFIG_CONTENT_VAR, ContainerSpec, Docker, LogLevel, Network, PORT_ATTEMPTS, RUN_ID_LABEL,
    SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR, Secret, ServerLogging, StartError, overlay, start,
};
use evals_mount_plan::{ConfigFile, ConfigKind, PlanInput};

/// The container id the stand-in prints for `run`.
const FAKE_ID: &str = "4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e";

/// Docker's answer to `run` with an image it does not have.
const NO_SUCH_IMAGE: &str = "docker: Error response from daemon: No such image: x:1.";

/// Docker's answer to `run` with the name of a container that exists.
const NAME_IN_USE: &str = "docker: Error response from daemon: Conflict. The container name \
    \"/evals-opencode-standin-1\" is already in use by container \"0b1c\".";

/// The host port the stand-in's `port` answers with.
const PUBLISHED_PORT: u16 = 49153;

/// Variables that must never reach an argv, with values that a careless quoting would mangle.
const FORWARDED: [(&str, &str); 2] = [
    ("ANTHROPIC_API_KEY", "sk-ant-$HOME 'single' \"double\" ünï"),
    ("OPENAI_API_KEY", "sk-test-0123 with spaces, and a comma"),
];

/// How the stand-in's container behaves.
#[derive(Clone, Copy)]
enum Container {
    /// Keeps running until `rm`: `wait` blocks until then.
    Runs,
    /// Dies at once, with a log saying its port was taken.
    DiesPortTaken,
    /// `run` fails, saying this on its standard error.
    RunFails(&'static str),
}

/// A docker client stand-in in a temp dir, and what it recorded.
struct StandIn {
    dir: tempfile::TempDir,
}

impl StandIn {
    /// Writes the script. `run` records its argv (one per line, the program first) and the
    /// values of `names` in its environment, and prints a container id.
    fn new(names: &[&str], container: Container) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let record_env: String = names
            .iter()
            .map(|name| format!("printf '%s=%s\\n' {name} \"${{{name}-<unset>}}\"\n"))
            .collect();
        let wait = match container {
            // Polls so that `rm` ends it whether it started before or after, and so does the
            // temp dir's removal when a test fails first: a `wait` left blocking would hold
            // the test's runtime open.
            Container::Runs => {
                "while [ -d \"$dir\" ] && [ ! -e \"$dir/removed\" ]; do sleep 0.05; done; echo 137"
            }
            Container::DiesPortTaken | Container::RunFails(_) => "echo 1",
        };
        let run_fails = match container {
            Container::RunFails(stderr) => format!("echo '{stderr}' >&2; exit 125"),
            _ => ":".into(),
        };
        let script = format!(
            r#"#!/bin/sh
dir='{dir}'
echo "$1" >> "$dir/calls"
case "$1" in
run)
    n=$(grep -c '^run$' "$dir/calls")
    for arg in "$0" "$@"; do printf '%s\n' "$arg"; done > "$dir/run-$n.argv"
    {{
    :
{record_env}    }} > "$dir/run-$n.env"
    rm -f "$dir/removed"
    {run_fails}
    echo {FAKE_ID}
    ;;
wait) {wait} ;;
rm) touch "$dir/removed"; echo "$4" ;;
port) echo 127.0.0.1:{PUBLISHED_PORT} ;;
logs) echo 'Error: listen EADDRINUSE: address already in use 127.0.0.1:4096' >&2 ;;
*) echo "stand-in: unexpected docker $*" >&2; exit 1 ;;
esac
"#,
            dir = dir.path().display(),
        );
        let program = dir.path().join("docker");
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn docker(&self) -> Docker {
        Docker::new(self.dir.path().join("docker"))
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
    }

    /// The subcommands called so far, in order, without `wait`: whether its process has started
    /// by the time `start` returns is up to the blocking pool.
    fn calls(&self) -> Vec<String> {
        self.read("calls")
            .lines()
            .filter(|call| *call != "wait")
            .map(String::from)
            .collect()
    }
}

/// A spec like the runner's, with mounts under `temp` (never touched: planning is pure).
fn spec(temp: &Path, network: Network) -> ContainerSpec {
    let config = ConfigFile {
        path: temp.join("repo/opencode.json"),
        kind: ConfigKind::Json,
    };
    let mounts = evals_mount_plan::plan(&PlanInput {
        workspace: &temp.join("evals-opencode-standin-ab12"),
        data_home: &temp.join("evals-opencode-home-standin-cd34"),
        config: Some(&config),
        host_tmpdir: None,
    })
    .unwrap();
    ContainerSpec {
        name: "evals-opencode-standin-1".into(),
        labels: BTreeMap::from([(RUN_ID_LABEL.to_owned(), "standin".to_owned())]),
        image: "evals-opencode:1.18.33".into(),
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

/// The values of every variable the spec names, as `start` takes them.
fn env() -> Vec<(String, Secret)> {
    let runner = [
        (CONFIG_CONTENT_VAR, overlay(None)),
        (SERVER_PASSWORD_VAR, "pw-3f9c0e7a1b2d4c6e".to_owned()),
        (SERVER_USERNAME_VAR, "opencode".to_owned()),
    ];
    let forwarded = FORWARDED.map(|(name, value)| (name, value.to_owned()));
    runner
        .into_iter()
        .chain(forwarded)
        .map(|(name, value)| (name.to_owned(), Secret::new(value)))
        .collect()
}

fn names() -> Vec<&'static str> {
    let mut names = vec![CONFIG_CONTENT_VAR, SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR];
    names.extend(FORWARDED.map(|(name, _)| name));
    names
}

/// A probe that records the ports it was asked about and answers `answer`.
fn recording_probe(
    answer: bool,
) -> (
    Arc<Mutex<Vec<u16>>>,
    impl Fn(u16) -> std::future::Ready<bool>,
) {
    let ports = Arc::new(Mutex::new(Vec::new()));
    let seen = ports.clone();
    let probe = move |port| {
        seen.lock().unwrap().push(port);
        std::future::ready(answer)
    };
    (ports, probe)
}

/// The value after `flag` in a recorded argv.
fn flag_value<'a>(argv: &'a str, flag: &str) -> &'a str {
    let mut lines = argv.lines();
    lines.find(|line| *line == flag).unwrap();
    lines.next().unwrap()
}

fn temp_root(stand_in: &StandIn) -> PathBuf {
    stand_in.dir.path().to_path_buf()
}

#[tokio::test]
async fn the_argv_names_variables_and_their_values_travel_in_the_environment() {
    let stand_in = StandIn::new(&names(), Container::Runs);
    let temp = temp_root(&stand_in);
    let (ports, probe) = recording_probe(true);

    let running = start(
        &stand_in.docker(),
        spec(&temp, Network::Host { port: 0 }),
        &env(),
        Duration::from_secs(10),
        probe,
    )
    .await
    .unwrap();
    let argv = stand_in.read("run-1.argv");
    let port = flag_value(&argv, "--port").parse::<u16>().unwrap();
    assert_ne!(port, 0, "a free port is chosen for host networking");
    assert_eq!(
        (running.port(), running.name()),
        (port, "evals-opencode-standin-1")
    );
    assert_eq!(*ports.lock().unwrap(), [port]);
    running.remove().await.unwrap();

    let temp = temp.display().to_string();
    insta::with_settings!({filters => vec![
        (temp.as_str(), "[TEMP]"),
        (r"(?m)^--port\n\d+$", "--port\n[PORT]"),
    ]}, {
        insta::assert_snapshot!("host_network_run_argv", argv);
    });
    let recorded_env: Vec<String> = stand_in
        .read("run-1.env")
        .lines()
        .map(String::from)
        .collect();
    let expected_env: Vec<String> = env()
        .iter()
        .map(|(name, value)| format!("{name}={}", value.expose()))
        .collect();
    assert_eq!(recorded_env, expected_env);
    for (name, value) in env() {
        // The user name, `opencode`, is no secret and occurs in the image's name.
        assert!(
            name == SERVER_USERNAME_VAR || !argv.contains(value.expose()),
            "the value of `{name}` is in the argv:\n{argv}"
        );
        assert!(
            argv.lines().any(|line| line == name),
            "`--env {name}` is missing"
        );
    }
    assert_eq!(
        stand_in.calls(),
        ["run", "rm"],
        "no `docker port` with host networking"
    );
}

#[tokio::test]
async fn bridge_networking_probes_the_published_loopback_port() {
    let stand_in = StandIn::new(&[], Container::Runs);
    let temp = temp_root(&stand_in);
    let (ports, probe) = recording_probe(true);

    let running = start(
        &stand_in.docker(),
        spec(&temp, Network::Bridge),
        &env(),
        Duration::from_secs(10),
        probe,
    )
    .await
    .unwrap();
    assert_eq!(running.port(), PUBLISHED_PORT);
    assert_eq!(*ports.lock().unwrap(), [PUBLISHED_PORT]);
    running.remove().await.unwrap();

    let argv = stand_in.read("run-1.argv");
    assert_eq!(flag_value(&argv, "--publish"), "127.0.0.1::4096");
    assert_eq!(flag_value(&argv, "--hostname"), "0.0.0.0");
    assert_eq!(stand_in.calls(), ["run", "port", "rm"]);
}

#[tokio::test]
async fn a_taken_port_is_tried_again_with_another_and_each_container_is_removed() {
    let stand_in = StandIn::new(&[], Container::DiesPortTaken);
    let temp = temp_root(&stand_in);
    let (ports, probe) = recording_probe(false);

    let err = start(
        &stand_in.docker(),
        spec(&temp, Network::Host { port: 0 }),
        &env(),
        Duration::from_secs(10),
        probe,
    )
    .await
    .unwrap_err();
    let StartError::Exited { name, logs } = &err else {
        panic!("expected `Exited`, got {err:?}");
    };
    assert_eq!(name, "evals-opencode-standin-1");
    assert!(logs.contains("EADDRINUSE"), "{logs}");

    let run_then_remove = ["run", "logs", "rm"];
    assert_eq!(stand_in.calls(), run_then_remove.repeat(PORT_ATTEMPTS));
    let tried: Vec<u16> = (1..=PORT_ATTEMPTS)
        .map(|n| stand_in.read(&format!("run-{n}.argv")))
        .map(|argv| flag_value(&argv, "--port").parse().unwrap())
        .collect();
    assert!(!tried.contains(&0), "{tried:?}");
    let probed = ports.lock().unwrap().clone();
    assert!(
        probed.iter().all(|port| tried.contains(port)),
        "probed {probed:?}, started on {tried:?}"
    );
}

#[tokio::test]
async fn a_failed_run_removes_whatever_docker_left_and_says_what_to_do() {
    let stand_in = StandIn::new(&[], Container::RunFails(NO_SUCH_IMAGE));
    let temp = temp_root(&stand_in);
    let (ports, probe) = recording_probe(true);

    let err = start(
        &stand_in.docker(),
        spec(&temp, Network::Host { port: 0 }),
        &env(),
        Duration::from_secs(10),
        probe,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StartError::Docker { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("cargo xtask image"), "{err:?}");
    // Docker can leave a created container behind a failed `run`.
    assert_eq!(stand_in.calls(), ["run", "rm"]);
    assert!(ports.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_name_conflict_leaves_the_container_that_holds_the_name_alone() {
    let stand_in = StandIn::new(&[], Container::RunFails(NAME_IN_USE));
    let temp = temp_root(&stand_in);
    let (_, probe) = recording_probe(true);

    let err = start(
        &stand_in.docker(),
        spec(&temp, Network::Host { port: 0 }),
        &env(),
        Duration::from_secs(10),
        probe,
    )
    .await
    .unwrap_err();
    assert!(err.hint().unwrap().contains("clean"), "{err:?}");
    // The container holding the name is not this call's: nothing is removed.
    assert_eq!(stand_in.calls(), ["run"]);
}
