//! `bench start`: how long a container takes to become a ready server through the runner's own
//! code, against the best a bare `docker run` and a tight poll can do, and how long removal
//! takes.
//!
//! Both sides start the same container: the argv comes from `evals_docker_exec::run_argv` on a
//! spec built as the runner builds it (fresh workspace and data home mounted, the configuration
//! overlay, password and username as secrets in the client's environment, host networking,
//! `INFO` server logs). So the ratio isolates the runner's code: its blocking-pool `docker run`,
//! its `docker wait` beside the probes, and its probe (a new HTTP client each time, 20 ms
//! apart). The bare side runs `docker run -d` directly and polls `GET /global/health` over a
//! plain TCP socket every 5 ms.

use std::collections::BTreeMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use evals_docker_exec::{
    CONFIG_CONTENT_VAR, ContainerSpec, Docker, LogLevel, Network, SERVER_PASSWORD_VAR,
    SERVER_USERNAME_VAR, Secret, ServerLogging, args,
};
use evals_mount_plan::PlanInput;
use evals_opencode_client::{Client, DEFAULT_USERNAME};
use tempfile::TempDir;

use super::{Table, median, median_duration, ms, verdict};
use crate::{image, progress};

/// The runner's own start deadline (`--start-timeout`'s default).
const START_DEADLINE: Duration = Duration::from_secs(120);

/// The runner's readiness probe deadline (`HEALTH_TIMEOUT` in the runner's call module).
const RUNNER_HEALTH_TIMEOUT: Duration = Duration::from_millis(200);

/// The bare side's pause between polls.
const BARE_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The bare side's deadline for connecting, sending and reading one poll.
const BARE_PROBE_TIMEOUT: Duration = Duration::from_millis(100);

/// The pause after each removal, so one start does not share the engine with the last teardown.
const SETTLE: Duration = Duration::from_millis(200);

/// The label marking this bench's containers, valued with xtask's process id. It is not the
/// runner's run-id label, so `evals-runner clean` never sweeps them mid-measure.
const BENCH_LABEL: &str = "evals-xtask.bench";

/// The goal for the ratio of the medians, runner over bare.
const RATIO_GOAL: f64 = 1.05;

/// The goal for the median removal.
const REMOVAL_GOAL: Duration = Duration::from_secs(1);

/// Which way a container was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Runner,
    Bare,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Runner => "runner",
            Side::Bare => "bare",
        }
    }
}

/// One measured start and removal.
#[derive(Debug, Clone)]
struct Sample {
    side: Side,
    /// 0 for the warm-up pair.
    run: usize,
    /// Until `docker run -d` returned (bare), or until the first probe (runner).
    launched: Duration,
    /// Until the server answered.
    ready: Duration,
    probes: u32,
    /// From the removal request until `docker rm --force` returned.
    removal: Duration,
}

/// Measures `runs` starts per side, alternating, then prints every sample and the summary.
pub fn run(root: &Path, runs: usize) -> anyhow::Result<()> {
    super::require_engine_and_image(root)?;
    let bench = Bench::new()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start tokio")?;
    let outcome = measure(&bench, &runtime, runs);
    runtime.block_on(bench.sweep());
    let samples = outcome?;
    report(&samples, runs);
    Ok(())
}

/// What every start shares.
struct Bench {
    docker: Docker,
    sessions: TempDir,
    label: String,
}

impl Bench {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            docker: Docker::new("docker"),
            sessions: tempfile::Builder::new()
                .prefix("evals-bench-start-")
                .tempdir()
                .context("cannot create a temp folder")?,
            label: std::process::id().to_string(),
        })
    }

    /// Removes every container this bench started that is still there.
    async fn sweep(&self) {
        let filter = format!("label={BENCH_LABEL}={}", self.label);
        let listed = self
            .docker
            .output_async(args(["ps", "-aq", "--filter", &filter]), vec![])
            .await;
        for id in listed.unwrap_or_default().lines() {
            evals_docker_exec::remove(&self.docker, id).await.ok();
        }
    }
}

fn measure(
    bench: &Bench,
    runtime: &tokio::runtime::Runtime,
    runs: usize,
) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for run in 0..=runs {
        // Each side goes first every other run, so neither always follows the other's teardown.
        let order = if run % 2 == 0 {
            [Side::Runner, Side::Bare]
        } else {
            [Side::Bare, Side::Runner]
        };
        for side in order {
            let sample = one(bench, runtime, side, run)?;
            progress!(
                "bench",
                "start {}/{runs} {}: ready {}, removed {}",
                run,
                side.name(),
                ms(sample.ready),
                ms(sample.removal)
            );
            samples.push(sample);
            std::thread::sleep(SETTLE);
        }
    }
    Ok(samples)
}

/// Starts one container on `side` and removes it.
fn one(
    bench: &Bench,
    runtime: &tokio::runtime::Runtime,
    side: Side,
    run: usize,
) -> anyhow::Result<Sample> {
    let session = Session::new(bench.sessions.path())?;
    let name = format!("evals-bench-start-{}-{}-{run}", bench.label, side.name());
    let password = Secret::new(random_password());
    let env = environment(&password);
    let (launched, ready, probes) = match side {
        Side::Runner => {
            let spec = spec(&name, &bench.label, &session, 0)?;
            runtime.block_on(runner_start(&bench.docker, spec, &env, &password))?
        }
        Side::Bare => {
            let spec = spec(&name, &bench.label, &session, free_port()?)?;
            bare_start(&spec, &env, &password)?
        }
    };
    let removal = runtime.block_on(remove_timed(&bench.docker, &name))?;
    Ok(Sample {
        side,
        run,
        launched,
        ready,
        probes,
        removal,
    })
}

/// A fresh workspace and data home, as each of the runner's calls gets.
struct Session {
    workspace: TempDir,
    home: TempDir,
}

impl Session {
    fn new(root: &Path) -> anyhow::Result<Self> {
        let dir = |prefix| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(root)
                .context("cannot create a session folder")
        };
        Ok(Self {
            workspace: dir("workspace-")?,
            home: dir("home-")?,
        })
    }
}

/// The container as the runner describes it; `port` is chosen by `start` on the runner side.
fn spec(name: &str, label: &str, session: &Session, port: u16) -> anyhow::Result<ContainerSpec> {
    let mounts = evals_mount_plan::plan(&PlanInput {
        workspace: session.workspace.path(),
        data_home: session.home.path(),
        config: None,
        host_tmpdir: None,
    })?;
    Ok(ContainerSpec {
        name: name.to_owned(),
        labels: BTreeMap::from([(BENCH_LABEL.to_owned(), label.to_owned())]),
        image: image::TAG.to_owned(),
        network: Network::Host { port },
        mounts,
        runner_env: [CONFIG_CONTENT_VAR, SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR]
            .map(String::from)
            .to_vec(),
        forwarded_env: Vec::new(),
        logging: ServerLogging {
            level: LogLevel::Info,
            print_logs: false,
        },
    })
}

/// The values of the variables the runner sets in every container.
fn environment(password: &Secret) -> Vec<(String, Secret)> {
    vec![
        (
            CONFIG_CONTENT_VAR.to_owned(),
            Secret::new(evals_docker_exec::overlay(None)),
        ),
        (SERVER_PASSWORD_VAR.to_owned(), password.clone()),
        (
            SERVER_USERNAME_VAR.to_owned(),
            Secret::new(DEFAULT_USERNAME),
        ),
    ]
}

/// When the runner's probe was first called, and how often.
#[derive(Default)]
struct ProbeLog {
    first: OnceLock<Instant>,
    count: AtomicU32,
}

/// The runner's start: `evals_docker_exec::start` with the runner's probe, a new client per
/// probe as the runner makes it. Returns (first probe, ready, probes) since the call.
async fn runner_start(
    docker: &Docker,
    spec: ContainerSpec,
    env: &[(String, Secret)],
    password: &Secret,
) -> anyhow::Result<(Duration, Duration, u32)> {
    let log = Arc::new(ProbeLog::default());
    let probe = {
        let (password, log) = (password.clone(), Arc::clone(&log));
        move |port: u16| {
            log.first.get_or_init(Instant::now);
            log.count.fetch_add(1, Ordering::Relaxed);
            let client = Client::new(&format!("http://127.0.0.1:{port}"), password.expose());
            async move {
                match client {
                    Ok(client) => client.health(RUNNER_HEALTH_TIMEOUT).await.is_ok(),
                    Err(_) => false,
                }
            }
        }
    };
    let started = Instant::now();
    evals_docker_exec::start(docker, spec, env, START_DEADLINE, probe).await?;
    let ready = started.elapsed();
    let first = log.first.get().map_or(ready, |at| *at - started);
    Ok((first, ready, log.count.load(Ordering::Relaxed)))
}

/// The bare start: `docker run -d` with the same argv and environment, then a plain HTTP poll
/// every [`BARE_POLL_INTERVAL`]. Returns (`docker run` returned, ready, polls) since the spawn.
fn bare_start(
    spec: &ContainerSpec,
    env: &[(String, Secret)],
    password: &Secret,
) -> anyhow::Result<(Duration, Duration, u32)> {
    let Network::Host { port } = spec.network else {
        bail!("the bare start needs host networking");
    };
    let argv = evals_docker_exec::run_argv(Path::new("docker"), spec);
    let credentials = format!("{DEFAULT_USERNAME}:{}", password.expose());
    let request = health_request(port, &base64(credentials.as_bytes()));
    let values = env.iter().map(|(name, value)| (name, value.expose()));

    let started = Instant::now();
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(values)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run docker")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("`docker run` failed: {}", stderr.trim());
    }
    let launched = started.elapsed();
    let mut polls = 1;
    while !healthy(port, &request) {
        if started.elapsed() > START_DEADLINE {
            bail!("`{}` did not answer within {START_DEADLINE:?}", spec.name);
        }
        std::thread::sleep(BARE_POLL_INTERVAL);
        polls += 1;
    }
    Ok((launched, started.elapsed(), polls))
}

/// `GET /global/health` with basic authorization `credentials` (base64), closing after.
fn health_request(port: u16, credentials: &str) -> Vec<u8> {
    format!(
        "GET /global/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// One poll: whether the server on `port` answers `request` with 200 within the deadline.
fn healthy(port: u16, request: &[u8]) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, BARE_PROBE_TIMEOUT) else {
        return false;
    };
    let deadline = Some(BARE_PROBE_TIMEOUT);
    let sent = stream
        .set_read_timeout(deadline)
        .and_then(|()| stream.set_write_timeout(deadline))
        .and_then(|()| stream.write_all(request));
    if sent.is_err() {
        return false;
    }
    let (mut head, mut buffer) = (Vec::new(), [0u8; 256]);
    while !head.windows(2).any(|pair| pair == b"\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    status_code(&head) == Some(200)
}

/// The status code of an HTTP/1.x response that starts with `head`.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&byte| byte == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    words
        .next()
        .filter(|version| version.starts_with("HTTP/1."))?;
    words.next()?.parse().ok()
}

/// Standard base64 with padding, for a basic-authorization header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in bytes.chunks(3) {
        let byte = |index: usize| u32::from(chunk.get(index).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for position in 0..4 {
            if position <= chunk.len() {
                let sextet = (group >> (18 - 6 * position)) & 63;
                encoded.push(char::from(ALPHABET[sextet as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

/// Removes container `name` the runner's way and checks it is gone. Returns the time from the
/// request until `evals_docker_exec::remove` returned.
async fn remove_timed(docker: &Docker, name: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    evals_docker_exec::remove(docker, name).await?;
    let took = started.elapsed();
    let filter = format!("name=^/{name}$");
    let left = docker
        .output_async(args(["ps", "-aq", "--filter", &filter]), vec![])
        .await?;
    if !left.is_empty() {
        bail!("container `{name}` is still there after its removal");
    }
    Ok(took)
}

/// A port on `127.0.0.1` that nothing listens on now, as the runner chooses one.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a port")?;
    Ok(listener.local_addr()?.port())
}

/// A throwaway server password: this process's randomly keyed hasher, twice.
fn random_password() -> String {
    let word = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

fn report(samples: &[Sample], runs: usize) {
    println!("bench start: {runs} counted starts per side, alternating, after one warm-up pair");
    println!("machine: {}; image {}", super::machine(), image::TAG);
    println!();
    let mut table = Table::new(["run", "side", "launched", "ready", "probes", "removal"]);
    for sample in samples {
        let run = match sample.run {
            0 => "warm-up".to_owned(),
            run => run.to_string(),
        };
        table.row([
            run,
            sample.side.name().to_owned(),
            ms(sample.launched),
            ms(sample.ready),
            sample.probes.to_string(),
            ms(sample.removal),
        ]);
    }
    table.print();
    println!();
    summary(samples);
}

fn summary(samples: &[Sample]) {
    let counted = |side: Side| samples.iter().filter(move |s| s.run > 0 && s.side == side);
    let ready = |side| counted(side).map(|s| s.ready).collect::<Vec<_>>();
    let (runner, bare) = (ready(Side::Runner), ready(Side::Bare));
    let removals: Vec<Duration> = samples
        .iter()
        .filter(|s| s.run > 0)
        .map(|s| s.removal)
        .collect();
    let mut table = Table::new(["measure", "median", "min", "max"]);
    for (label, values) in [
        ("(a) runner: start() call to ready", &runner),
        ("(b) bare: docker run to first 200", &bare),
        ("(c) removal request to gone, both sides", &removals),
    ] {
        table.row([
            label.to_owned(),
            median_duration(values).map_or_else(|| "-".into(), ms),
            values.iter().min().map_or_else(|| "-".into(), |d| ms(*d)),
            values.iter().max().map_or_else(|| "-".into(), |d| ms(*d)),
        ]);
    }
    table.print();
    println!();
    let (Some(a), Some(b), Some(c)) = (
        median_duration(&runner),
        median_duration(&bare),
        median_duration(&removals),
    ) else {
        return;
    };
    let ratio = a.as_secs_f64() / b.as_secs_f64();
    println!(
        "ratio (a)/(b) of the medians: {ratio:.3} (goal ≤ {RATIO_GOAL}: {})",
        verdict(ratio <= RATIO_GOAL)
    );
    if let Some(paired) = median(&paired_ratios(samples)) {
        println!("median of the per-run ratios (runner over bare of the same run): {paired:.3}");
    }
    println!(
        "removal median: {} (goal under {}: {})",
        ms(c),
        ms(REMOVAL_GOAL),
        verdict(c < REMOVAL_GOAL)
    );
    println!(
        "launched: runner = until its first probe (after `docker run -d` returned and \
         `docker wait` was spawned); bare = until `docker run -d` returned"
    );
}

/// Runner over bare ready time, for each counted run that has both.
fn paired_ratios(samples: &[Sample]) -> Vec<f64> {
    let ready = |side, run| {
        let found = samples.iter().find(|s| s.side == side && s.run == run);
        found.map(|s| s.ready.as_secs_f64())
    };
    let runs = samples.iter().map(|s| s.run).filter(|&run| run > 0);
    let mut runs: Vec<usize> = runs.collect();
    runs.dedup();
    let ratio = |run| Some(ready(Side::Runner, run)? / ready(Side::Bare, run)?);
    runs.into_iter().filter_map(ratio).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_to_whole_groups() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"opencode:s3cret"), "b3BlbmNvZGU6czNjcmV0");
    }

    #[test]
    fn the_status_code_is_read_from_the_status_line() {
        assert_eq!(
            status_code(b"HTTP/1.1 200 OK\r\ncontent-type: x"),
            Some(200)
        );
        assert_eq!(status_code(b"HTTP/1.1 401 Unauthorized\r\n"), Some(401));
        assert_eq!(status_code(b""), None);
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[test]
    fn the_health_request_authenticates_and_closes() {
        let request = String::from_utf8(health_request(4096, "YTpi")).unwrap();
        assert!(request.starts_with("GET /global/health HTTP/1.1\r\nHost: 127.0.0.1:4096\r\n"));
        assert!(request.contains("\r\nAuthorization: Basic YTpi\r\n"));
        assert!(request.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn runs_are_paired_by_number_and_the_warm_up_is_left_out() {
        let sample = |side, run, ready| Sample {
            side,
            run,
            launched: Duration::ZERO,
            ready: Duration::from_millis(ready),
            probes: 1,
            removal: Duration::ZERO,
        };
        let samples = [
            sample(Side::Runner, 0, 9000),
            sample(Side::Bare, 0, 1000),
            sample(Side::Bare, 1, 2000),
            sample(Side::Runner, 1, 2200),
            sample(Side::Runner, 2, 1500),
        ];
        let ratios = paired_ratios(&samples);
        assert_eq!(ratios.len(), 1);
        assert!((ratios[0] - 1.1).abs() < 1e-9);
    }

    #[test]
    fn passwords_differ_between_calls() {
        let (first, second) = (random_password(), random_password());
        assert_eq!(first.len(), 32);
        assert_ne!(first, second);
    }
}
