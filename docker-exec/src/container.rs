//! Starting an OpenCode container, waiting for its server, streaming its output, removing it.

use std::ffi::OsString;
use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};
use tracing::{debug, warn};

use crate::argv::{BRIDGE_CONTAINER_PORT, ContainerSpec, Network, run_argv};
use crate::process::{Docker, DockerError, Secret, args};

/// The longest a single readiness probe may take. A request sent just as the server's port
/// opens can hang forever, so every probe has its own short deadline and is retried.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(250);

/// The pause between readiness probes.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// How often a host port is chosen again when another process takes it first.
pub const PORT_ATTEMPTS: usize = 3;

/// How many lines of a failed container's log an error carries.
pub const LOG_TAIL_LINES: usize = 30;

/// Why a container did not become a ready server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `docker run` itself failed.
    #[error("cannot start the container")]
    Docker {
        /// Docker's failure, with its own message.
        #[source]
        source: DockerError,
        /// What the user can do about it.
        hint: &'static str,
    },
    /// The container exited before its server answered.
    #[error("container `{name}` exited before its server answered; its last log lines:\n{logs}")]
    Exited {
        /// The container's name.
        name: String,
        /// The tail of its log.
        logs: String,
    },
    /// The server did not answer before the start deadline.
    #[error("container `{name}` did not answer within {seconds} s; its last log lines:\n{logs}")]
    TimedOut {
        /// The container's name.
        name: String,
        /// The deadline, in seconds.
        seconds: u64,
        /// The tail of its log.
        logs: String,
    },
    /// The published port could not be read back.
    #[error("cannot read the published port of container `{name}` from `{output}`")]
    Port {
        /// The container's name.
        name: String,
        /// What `docker port` printed.
        output: String,
    },
}

impl StartError {
    /// What the user can do, when Docker's own message suggests something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StartError::Docker { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

/// A container the runner started; remove it with [`RunningContainer::remove`].
#[derive(Debug)]
pub struct RunningContainer {
    docker: Docker,
    name: String,
    port: u16,
}

impl RunningContainer {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host port its server answers on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Calls `line` for each line the container prints, on a thread of its own, until the
    /// container is gone.
    pub fn stream_logs(&self, mut line: impl FnMut(&str) + Send + 'static) {
        let (docker, name) = (self.docker.clone(), self.name.clone());
        std::thread::spawn(move || {
            if let Err(err) = docker.each_line(&args(["logs", "--follow", &name]), &mut line) {
                debug!(%err, "container log stream ended");
            }
        });
    }

    /// Removes the container at once, whatever its state.
    pub async fn remove(self) -> Result<(), DockerError> {
        remove(&self.docker, &self.name).await
    }
}

/// Removes container `name` at once; one that is already gone is not an error.
pub async fn remove(docker: &Docker, name: &str) -> Result<(), DockerError> {
    match docker
        .output_async(args(["rm", "--force", "--volumes", name]), vec![])
        .await
    {
        Err(DockerError::Failed { stderr, .. }) if stderr.contains("No such container") => Ok(()),
        other => other.map(drop),
    }
}

/// Makes everything under `dir` removable by anyone, from a throwaway container of `image`
/// running as root.
///
/// The agent runs as root, so what it leaves in a session's directories may not be removable by
/// a runner that is not. Mounting the directory into a short-lived root container and opening
/// its permissions lets the runner delete it, even after the agent's own container is gone.
pub async fn open_permissions(
    docker: &Docker,
    image: &str,
    dir: &std::path::Path,
) -> Result<(), DockerError> {
    let mount = crate::argv::mount_flag(&evals_mount_plan::Mount {
        source: dir.to_path_buf(),
        target: "/purge".into(),
        read_only: false,
    });
    let argv = args([
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        "--mount",
        &mount,
        image,
        "-c",
        "chmod -R a+rwX /purge",
    ]);
    docker.output_async(argv, vec![]).await.map(drop)
}

/// Starts the container of `spec` and waits until `probe(port)` says its server answers.
///
/// `env` holds the values of the variables the spec names; they reach the docker client's
/// environment only. With host networking a free port is chosen, and chosen again, up to
/// [`PORT_ATTEMPTS`] times, when another process takes it first. On any failure the container
/// is removed before the error returns.
pub async fn start<P, F>(
    docker: &Docker,
    spec: ContainerSpec,
    env: &[(String, Secret)],
    deadline: Duration,
    probe: P,
) -> Result<RunningContainer, StartError>
where
    P: Fn(u16) -> F,
    F: Future<Output = bool>,
{
    start_with_ports(docker, spec, env, deadline, probe, free_port).await
}

/// [`start`], with host ports chosen by `next_port` rather than the system; for tests of the
/// race where another process takes the chosen port first.
pub async fn start_with_ports<P, F>(
    docker: &Docker,
    mut spec: ContainerSpec,
    env: &[(String, Secret)],
    deadline: Duration,
    probe: P,
    mut next_port: impl FnMut() -> u16,
) -> Result<RunningContainer, StartError>
where
    P: Fn(u16) -> F,
    F: Future<Output = bool>,
{
    let mut attempt = 1;
    loop {
        if let Network::Host { port } = &mut spec.network {
            *port = next_port();
        }
        match start_once(docker, &spec, env, deadline, &probe).await {
            Err(StartError::Exited { logs, .. })
                if port_taken(&logs) && attempt < PORT_ATTEMPTS =>
            {
                warn!(
                    attempt,
                    "the server's port was taken by another process; trying another"
                );
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

async fn start_once<P, F>(
    docker: &Docker,
    spec: &ContainerSpec,
    env: &[(String, Secret)],
    deadline: Duration,
    probe: &P,
) -> Result<RunningContainer, StartError>
where
    P: Fn(u16) -> F,
    F: Future<Output = bool>,
{
    let started = Instant::now();
    let argv = run_argv(docker.program(), spec);
    let run = docker.output_async(argv[1..].to_vec(), env.to_vec()).await;
    if let Err(source) = run {
        // A container that failed to start is ours to remove, but on a name clash the name
        // belongs to someone else's container, which must be left alone.
        let clash = matches!(&source, DockerError::Failed { stderr, .. } if stderr.contains("is already in use"));
        if !clash {
            remove(docker, &spec.name).await.ok();
        }
        return Err(StartError::Docker {
            hint: hint_for(&source),
            source,
        });
    }
    let container = RunningContainer {
        docker: docker.clone(),
        name: spec.name.clone(),
        port: 0,
    };
    match ready(&container, spec.network, deadline, probe).await {
        Ok(port) => {
            debug!(name = spec.name, port, elapsed = ?started.elapsed(), "server ready");
            Ok(RunningContainer { port, ..container })
        }
        Err(err) => {
            remove(docker, &spec.name).await.ok();
            Err(err)
        }
    }
}

/// Finds the server's port and waits for it, stopping at once if the container exits.
async fn ready<P, F>(
    container: &RunningContainer,
    network: Network,
    deadline: Duration,
    probe: &P,
) -> Result<u16, StartError>
where
    P: Fn(u16) -> F,
    F: Future<Output = bool>,
{
    let port = match network {
        Network::Host { port } => port,
        Network::Bridge => published_port(container).await?,
    };
    let exited = container
        .docker
        .output_async(args(["wait", &container.name]), vec![]);
    match wait_ready(|| probe(port), exited, deadline).await {
        Ok(()) => Ok(port),
        Err(Unready::Exited) => Err(StartError::Exited {
            name: container.name.clone(),
            logs: log_tail(container).await,
        }),
        Err(Unready::TimedOut) => Err(StartError::TimedOut {
            name: container.name.clone(),
            seconds: deadline.as_secs(),
            logs: log_tail(container).await,
        }),
    }
}

/// Why [`wait_ready`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    /// The `exited` future completed first.
    Exited,
    /// The deadline passed.
    TimedOut,
}

/// Probes until `probe` answers `true`, each probe cut at [`PROBE_TIMEOUT`], [`PROBE_INTERVAL`]
/// apart, until `deadline`; gives up at once when `exited` completes.
pub async fn wait_ready<P, F, E>(probe: P, exited: E, deadline: Duration) -> Result<(), Unready>
where
    P: Fn() -> F,
    F: Future<Output = bool>,
    E: Future,
{
    let give_up = Instant::now() + deadline;
    tokio::pin!(exited);
    loop {
        tokio::select! {
            biased;
            _ = &mut exited => return Err(Unready::Exited),
            answered = timeout(PROBE_TIMEOUT, probe()) => {
                if answered == Ok(true) {
                    return Ok(());
                }
            }
        }
        if Instant::now() + PROBE_INTERVAL >= give_up {
            return Err(Unready::TimedOut);
        }
        tokio::select! {
            biased;
            _ = &mut exited => return Err(Unready::Exited),
            () = sleep(PROBE_INTERVAL) => {}
        }
    }
}

/// The loopback port Docker published the server's port on.
async fn published_port(container: &RunningContainer) -> Result<u16, StartError> {
    let port = format!("{BRIDGE_CONTAINER_PORT}/tcp");
    let output = container
        .docker
        .output_async(args(["port", &container.name, &port]), vec![])
        .await
        .map_err(|source| StartError::Docker {
            hint: hint_for(&source),
            source,
        })?;
    output
        .lines()
        .find_map(|line| line.strip_prefix("127.0.0.1:")?.parse().ok())
        .ok_or_else(|| StartError::Port {
            name: container.name.clone(),
            output,
        })
}

/// The last lines of the container's log, or a note saying why there are none.
async fn log_tail(container: &RunningContainer) -> String {
    let tail = LOG_TAIL_LINES.to_string();
    let argv: Vec<OsString> = args(["logs", "--tail", &tail, &container.name]);
    // `docker logs` writes the container's stderr to its own stderr, so read both.
    let mut lines = Vec::new();
    let docker = container.docker.clone();
    let collected = tokio::task::spawn_blocking(move || {
        docker
            .each_line(&argv, |line| lines.push(line.to_owned()))
            .map(|()| lines)
    })
    .await;
    match collected {
        Ok(Ok(lines)) if !lines.is_empty() => lines.join("\n"),
        Ok(Ok(_)) => "(the container printed nothing)".into(),
        Ok(Err(err)) => format!("(cannot read its log: {err})"),
        Err(err) => format!("(cannot read its log: {err})"),
    }
}

/// A port on `127.0.0.1` that nothing listens on at this moment.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or(0)
}

/// Whether a server log says its port was already taken.
///
/// OpenCode 1.18 says only `ServeError` when it cannot listen; with a port that was free a
/// moment before, another process taking it is by far the likeliest cause, and a retry on
/// another port costs little when it is not.
fn port_taken(logs: &str) -> bool {
    let logs = logs.to_ascii_lowercase();
    logs.contains("serveerror")
        || logs.contains("eaddrinuse")
        || logs.contains("address already in use")
        || logs.contains("port") && logs.contains("in use")
}

/// What to do about a failed docker command, judged from Docker's message.
pub fn hint_for(error: &DockerError) -> &'static str {
    let DockerError::Failed { stderr, .. } = error else {
        return "install the Docker client, or pass `--docker PATH` to the one to use";
    };
    if stderr.contains("No such image") || stderr.contains("Unable to find image") {
        "build the image with `cargo xtask image`, or pass `--image`"
    } else if stderr.contains("Cannot connect to the Docker daemon")
        || stderr.contains("docker daemon")
    {
        "start the Docker Engine (`cargo xtask docker-up` does it on Debian as root)"
    } else if stderr.contains("is already in use") {
        "a container of that name exists: `evals-runner clean` removes those of dead runs"
    } else {
        "see Docker's message above"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn probes_are_at_most_the_interval_apart_and_stop_when_answered() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let probe = || {
            let calls = calls.clone();
            async move {
                let mut calls = calls.lock().unwrap();
                calls.push(start.elapsed());
                calls.len() == 5
            }
        };
        wait_ready(
            probe,
            std::future::pending::<()>(),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 5);
        for pair in calls.windows(2) {
            assert_eq!(pair[1] - pair[0], PROBE_INTERVAL);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_probe_is_cut_and_retried() {
        let calls = Arc::new(Mutex::new(0));
        let probe = || {
            let calls = calls.clone();
            async move {
                let first = {
                    let mut calls = calls.lock().unwrap();
                    *calls += 1;
                    *calls == 1
                };
                if first {
                    std::future::pending::<()>().await;
                }
                true
            }
        };
        let start = Instant::now();
        wait_ready(
            probe,
            std::future::pending::<()>(),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
        assert_eq!(start.elapsed(), PROBE_TIMEOUT + PROBE_INTERVAL);
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_exited_container_stops_the_wait_at_once() {
        let start = Instant::now();
        let exited = sleep(Duration::from_millis(500));
        let outcome = wait_ready(|| async { false }, exited, Duration::from_secs(120)).await;
        assert_eq!(outcome, Err(Unready::Exited));
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_the_wait() {
        let start = Instant::now();
        let outcome = wait_ready(
            || async { false },
            std::future::pending::<()>(),
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(outcome, Err(Unready::TimedOut));
        assert!(start.elapsed() <= Duration::from_secs(2));
        assert!(start.elapsed() >= Duration::from_secs(2) - PROBE_INTERVAL * 2);
    }

    #[test]
    fn docker_messages_map_to_hints() {
        let failed = |stderr: &str| DockerError::Failed {
            command: "run".into(),
            stderr: stderr.into(),
        };
        assert!(
            hint_for(&failed("Error response from daemon: No such image: x:1"))
                .contains("cargo xtask image")
        );
        assert!(
            hint_for(&failed(
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"
            ))
            .contains("docker-up")
        );
        assert!(
            hint_for(&failed(
                "Conflict. The container name \"/x\" is already in use"
            ))
            .contains("clean")
        );
        let spawn = DockerError::Spawn {
            program: "docker".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        assert!(hint_for(&spawn).contains("--docker PATH"));
    }

    #[test]
    fn taken_ports_are_recognised_in_server_logs() {
        assert!(port_taken(
            "error: Failed to start server. Is port 4096 in use?"
        ));
        assert!(port_taken(
            "Error: listen EADDRINUSE: address already in use 127.0.0.1:4096"
        ));
        assert!(!port_taken(
            "opencode server listening on http://127.0.0.1:4096"
        ));
    }
}
