//! The offline OpenCode image, tried for real: a session in it starts no npm install and
//! fetches nothing on its own, and a second build with the same inputs builds nothing.
//!
//! These tests need a Docker Engine. Without one they print why and pass, unless
//! `REQUIRE_DOCKER=1` (set by `cargo xtask test` when the engine is up), where they fail.
//! Every container they start is removed, whatever happens.

use std::io::Read as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use duct::cmd;
use evals_test_support::{ContainerGuard, free_port, unique_hex};
use evals_xtask::image::{self, BuildOptions, INPUTS_HASH_LABEL, Outcome};
use evals_xtask::{docker, vars};
use serde_json::{Value, json};

/// Folders a session must leave untouched: an npm install writes `node_modules` into the
/// config folder, takes a lock under the state folder, and caches under `~/.npm`, `~/.bun` or
/// `~/.cache`. OpenCode creates the empty `~/.cache/opencode/bin` at start-up; the image
/// already holds it, so it does not show in `docker diff`.
const UNTOUCHED: &[&str] = &[
    "/root/.config/opencode/node_modules",
    "/root/.local/state/opencode/locks",
    "/root/.cache",
    "/root/.bun",
    "/root/.npm",
];

/// Whether the test can use Docker; panics when it cannot but must.
fn docker_or_skip(test: &str) -> bool {
    if docker::engine_answers() {
        return true;
    }
    let reason = "no Docker Engine answers `docker info`";
    assert!(
        !vars::docker_required(),
        "{test}: {reason}, and {}=1",
        vars::REQUIRE_DOCKER
    );
    eprintln!(
        "skipping {test}: {reason} (set {}=1 to fail instead)",
        vars::REQUIRE_DOCKER
    );
    false
}

/// The image, built at most once per test binary; every test waits for that one build.
fn built_image() -> &'static Outcome {
    static IMAGE: OnceLock<Outcome> = OnceLock::new();
    IMAGE.get_or_init(|| image::ensure(&BuildOptions::from_env().unwrap()).unwrap())
}

#[test]
fn a_second_build_with_the_same_inputs_builds_nothing() {
    if !docker_or_skip("a_second_build_with_the_same_inputs_builds_nothing") {
        return;
    }
    let first = built_image();

    let second = image::ensure(&BuildOptions::from_env().unwrap()).unwrap();

    assert!(!second.built, "the second build built an image: {second:?}");
    assert_eq!(
        (&second.id, &second.inputs_hash),
        (&first.id, &first.inputs_hash)
    );
    let tagged = docker::inspect(image::TAG)
        .unwrap()
        .expect("the tag is gone");
    assert_eq!(tagged.id, first.id);
    assert_eq!(
        tagged.labels.get(INPUTS_HASH_LABEL),
        Some(&first.inputs_hash)
    );
}

#[tokio::test]
async fn a_session_leaves_opencode_nothing_to_install() {
    if !docker_or_skip("a_session_leaves_opencode_nothing_to_install") {
        return;
    }
    let image = tokio::task::spawn_blocking(built_image).await.unwrap();
    let config = tempfile::tempdir().unwrap();
    let server = Server::start(&image.tag, config.path());

    server.wait_until_healthy().await;
    let session = server.create_session().await;
    // A turn with a model that does not exist fails at once, after the session's set-up.
    server.prompt_unknown_model(&session).await;
    // The install would start in the background right after the set-up; give it time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let diff = server.container.diff();
    let touched: Vec<&str> = diff
        .lines()
        .filter(|line| touches_untouched(line))
        .collect();
    assert!(
        touched.is_empty(),
        "the session wrote {touched:?}; whole diff:\n{diff}"
    );
    let logs = server.container.logs();
    assert!(
        logs.contains("creating instance"),
        "no session set-up in the log:\n{logs}"
    );
    assert!(
        !logs.contains("dependency install"),
        "an install was tried:\n{logs}"
    );
}

/// Whether a `docker diff` line (`A /path`, `C /path`, `D /path`) is in an [`UNTOUCHED`] folder.
fn touches_untouched(line: &str) -> bool {
    let path = line.split_once(' ').map_or(line, |(_, path)| path);
    UNTOUCHED
        .iter()
        .any(|dir| path == *dir || path.starts_with(&format!("{dir}/")))
}

/// An OpenCode server in a container of the image, on the host's loopback.
struct Server {
    container: Container,
    base_url: String,
    password: String,
    http: reqwest::Client,
}

impl Server {
    /// Starts `opencode serve` the way the runner does: host networking, a read-only user
    /// config file, a writable data folder, the password and overlay only in the environment.
    fn start(tag: &str, config_dir: &Path) -> Self {
        let config_file = config_dir.join("opencode.json");
        std::fs::write(
            &config_file,
            r#"{"$schema": "https://opencode.ai/config.json"}"#,
        )
        .unwrap();
        // Named before it runs, so even a failed start is removed.
        let container = Container::new(format!("evals-xtask-test-{}", unique_hex(12)));
        let port = free_port();
        let password = random_hex(16);
        let overlay = json!({"share": "disabled", "autoupdate": false}).to_string();

        cmd("docker", run_argv(&container.name, tag, &config_file, port))
            .env("OPENCODE_SERVER_PASSWORD", &password)
            .env("OPENCODE_CONFIG_CONTENT", overlay)
            .stdout_null()
            .run()
            .expect("docker run failed");
        let base_url = format!("http://127.0.0.1:{port}");
        Self {
            container,
            base_url,
            password,
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.base_url);
        self.http
            .request(method, url)
            .basic_auth("opencode", Some(&self.password))
    }

    /// Polls `GET /global/health`, each probe with a short timeout of its own: a request sent
    /// just as the port opens can hang forever.
    async fn wait_until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let probe = self.request(reqwest::Method::GET, "/global/health");
            let answer = probe.timeout(Duration::from_secs(1)).send().await;
            if let Ok(response) = answer.and_then(|response| response.error_for_status()) {
                let health: Value = response.json().await.unwrap();
                assert_eq!(health["version"], image::OPENCODE_VERSION);
                return;
            }
            assert!(
                self.container.is_running(),
                "the server exited:\n{}",
                self.container.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the server never answered:\n{}", self.container.logs());
    }

    /// `POST /session` with a title, so OpenCode asks no model for one; returns the id.
    async fn create_session(&self) -> String {
        let request = self
            .request(reqwest::Method::POST, "/session")
            .json(&json!({"title": "offline"}));
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "POST /session: {}",
            response.status()
        );
        let session: Value = response.json().await.unwrap();
        session["id"].as_str().expect("a session id").to_owned()
    }

    async fn prompt_unknown_model(&self, session: &str) {
        let body = json!({
            "model": {"providerID": "no-such-provider", "modelID": "no-such-model"},
            "parts": [{"type": "text", "text": "hello"}],
        });
        let path = format!("/session/{session}/message");
        let request = self.request(reqwest::Method::POST, &path).json(&body);
        let answer = request.timeout(Duration::from_secs(30)).send().await;
        answer.expect("the prompt got no answer");
    }
}

/// The `docker run` argv of the test's server; no secret in it.
fn run_argv(name: &str, tag: &str, config_file: &Path, port: u16) -> Vec<String> {
    let config_mount = format!(
        "{}:/root/.config/opencode/opencode.json:ro",
        config_file.display()
    );
    let port = port.to_string();
    let mut argv = Vec::new();
    let mut push = |args: &[&str]| argv.extend(args.iter().map(ToString::to_string));
    // Lifecycle: detached, an init as PID 1 (OpenCode ignores SIGTERM), a name to remove it by.
    push(&[
        "run",
        "-d",
        "--init",
        "--name",
        name,
        "--label",
        "evals-xtask.test=image",
    ]);
    // The network the runner uses with mock models: the host's, so loopback is shared.
    push(&["--network", "host"]);
    // Mounts: a writable data folder, the user's config file read-only.
    push(&[
        "--tmpfs",
        "/root/.local/share/opencode",
        "-v",
        &config_mount,
    ]);
    // The password and the overlay: values in the client's environment, names only here.
    push(&[
        "-e",
        "OPENCODE_SERVER_PASSWORD",
        "-e",
        "OPENCODE_CONFIG_CONTENT",
    ]);
    push(&[tag, "serve", "--hostname", "127.0.0.1", "--port", &port]);
    push(&["--print-logs", "--log-level", "INFO"]);
    argv
}

/// A container, removed when this is dropped.
struct Container {
    name: String,
    _removal: ContainerGuard,
}

impl Container {
    fn new(name: String) -> Self {
        let removal = ContainerGuard::new([name.clone()]);
        Self {
            name,
            _removal: removal,
        }
    }

    fn diff(&self) -> String {
        cmd!("docker", "diff", &self.name).read().unwrap()
    }

    /// Standard output and error (where `--print-logs` writes) together.
    fn logs(&self) -> String {
        cmd!("docker", "logs", &self.name)
            .stderr_to_stdout()
            .unchecked()
            .read()
            .unwrap_or_default()
    }

    fn is_running(&self) -> bool {
        let state = cmd!(
            "docker",
            "inspect",
            "--format",
            "{{.State.Running}}",
            &self.name
        );
        state
            .stderr_null()
            .unchecked()
            .read()
            .is_ok_and(|running| running.trim() == "true")
    }
}

/// `bytes` bytes of the system's random source, in hex: the server's password is a secret, not
/// just a name no one else uses.
fn random_hex(bytes: usize) -> String {
    let mut random = vec![0; bytes];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    random.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn diff_lines_inside_the_untouched_folders_are_caught() {
    assert!(touches_untouched(
        "A /root/.config/opencode/node_modules/zod"
    ));
    assert!(touches_untouched("C /root/.cache"));
    assert!(!touches_untouched(
        "A /root/.config/opencode/opencode.jsonc"
    ));
    assert!(!touches_untouched("A /root/.cachet"));
}
