//! One model call: a private session, an OpenCode container, a prompt with structured output
//! and its JSON fallback, a snapshot of the session, and the removal of everything it made.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use evals_auth_isolation::{RunLock, SessionDirs};
use evals_docker_exec::{
    CONFIG_CONTENT_VAR, Docker, OverlayProvider, RunningContainer, SERVER_PASSWORD_VAR,
    SERVER_USERNAME_VAR, Secret,
};
use evals_mount_plan::ConfigFile;
use evals_opencode_client::{
    AssistantReply, Client, DEFAULT_USERNAME, ModelRef as ClientModel, PromptRequest,
};
use evals_pipeline::prompt::{JSON_FALLBACK_SYSTEM, PromptFile, fallback_prompt};
use serde_json::{Value, json};
use tracing::debug;

use evals_sse_logs::{AgentLog, agent_prefix};
use evals_trace::{CallInfo, CallTrace, Outcome, Phase};

use crate::container::{SessionPaths, container_spec};
use crate::settings::{ModelRef, Settings};
use crate::watch::Watch;

/// How many times OpenCode itself asks the model again for a valid structured answer.
const STRUCTURED_RETRIES: u32 = 2;

/// How a phase's timeout is reported, so the trace can tell it from other failures.
const TIMED_OUT: &str = "timed out";

/// The readiness probe's own deadline, under `evals_docker_exec::PROBE_TIMEOUT`.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(200);

/// What every call of a run shares.
pub struct Runtime {
    /// The run's checked settings.
    pub settings: Settings,
    /// The docker client.
    pub docker: Docker,
    /// The built-in model, when the run uses one.
    pub mock: Option<evals_mock_model::MockServer>,
    /// Where log lines go.
    pub lines: Arc<dyn Fn(&str) + Send + Sync>,
    /// The run's progress display.
    pub progress: Arc<crate::progress::Progress>,
    /// Set when the run is interrupted: no new container starts after it.
    pub cancelled: AtomicBool,
    /// Held for the run's life: `evals-runner clean` leaves the run alone while it is.
    pub lock: RunLock,
}

/// One call to make.
pub struct CallSpec {
    /// `solver` or `judge`.
    pub label: &'static str,
    /// The eval the call is for.
    pub eval_id: String,
    /// The worker slot, from 1, and the number of workers.
    pub worker: (usize, usize),
    /// The run-wide number of this call, which makes its container name unique.
    pub call_number: usize,
    /// Files placed in the workspace before the call.
    pub workspace_files: Vec<PromptFile>,
    /// The prompt text.
    pub prompt: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The JSON schema of the answer.
    pub schema: Value,
}

/// A finished call: the answer and a snapshot of the session.
pub struct CallOutput<T> {
    /// The validated answer.
    pub answer: T,
    /// The answer as the model gave it, for `--debug`.
    pub raw: Value,
    /// Session info, messages and diff, as OpenCode returned them.
    pub snapshot: Value,
}

/// Makes one call, removing its container and directories whatever happens.
pub async fn call<T>(
    runtime: &Runtime,
    spec: &CallSpec,
    validate: impl Fn(&Value) -> Result<T, String>,
) -> anyhow::Result<CallOutput<T>> {
    let settings = &runtime.settings;
    let mut dirs = SessionDirs::create(
        &settings.temp_root,
        &settings.run_id,
        settings.auth_file.as_deref(),
    )?;
    let outcome = call_in(runtime, spec, &mut dirs, validate).await;
    if let Err(err) = remove_dirs(runtime, dirs).await {
        (runtime.lines)(&format!("{} warning: {err:#}", prefix(spec, "runner")));
    }
    outcome
}

/// Removes the session's directories. The agent runs as root, so when this user may not delete
/// what it left, their permissions are opened from a root container and removal tried again.
async fn remove_dirs(runtime: &Runtime, dirs: SessionDirs) -> anyhow::Result<()> {
    let paths: Vec<_> = dirs.paths().into_iter().map(Path::to_path_buf).collect();
    let Err(err) = dirs.close() else {
        return Ok(());
    };
    let denied = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
    if !denied {
        return Err(err.into());
    }
    debug!("opening permissions of files the agent left as root");
    for path in paths.iter().filter(|path| path.exists()) {
        evals_docker_exec::open_permissions(&runtime.docker, &runtime.settings.image, path).await?;
        std::fs::remove_dir_all(path)
            .with_context(|| format!("cannot remove `{}`", path.display()))?;
    }
    Ok(())
}

async fn call_in<T>(
    runtime: &Runtime,
    spec: &CallSpec,
    dirs: &mut SessionDirs,
    validate: impl Fn(&Value) -> Result<T, String>,
) -> anyhow::Result<CallOutput<T>> {
    let (running, password) = start_container(runtime, spec, dirs).await?;
    let workspace = dirs.workspace();
    let outcome = in_container(runtime, spec, workspace, &running, &password, validate).await;
    let (name, removing) = (running.name().to_owned(), Instant::now());
    match running.remove().await {
        Ok(()) => timing(runtime, spec, "container-removed", removing.elapsed()),
        Err(err) => (runtime.lines)(&format!(
            "{} warning: cannot remove container `{name}` ({err}); `evals-runner clean` will",
            prefix(spec, "runner")
        )),
    }
    outcome
}

/// Stages the session's files and starts its container, returning it with its server password.
async fn start_container(
    runtime: &Runtime,
    spec: &CallSpec,
    dirs: &mut SessionDirs,
) -> anyhow::Result<(RunningContainer, Secret)> {
    let settings = &runtime.settings;
    evals_pipeline::files::write_files(dirs.workspace(), &spec.workspace_files)?;
    let config = stage_config(settings, dirs)?;
    let paths = SessionPaths {
        workspace: dirs.workspace(),
        data_home: dirs.home(),
        config: config.as_ref(),
    };
    let container = container_spec(settings, paths, &spec.eval_id, spec.call_number, 0)?;
    let password = Secret::new(random_hex(16)?);
    let env = vec![
        (CONFIG_CONTENT_VAR.to_owned(), Secret::new(overlay(runtime))),
        (SERVER_PASSWORD_VAR.to_owned(), password.clone()),
        (
            SERVER_USERNAME_VAR.to_owned(),
            Secret::new(DEFAULT_USERNAME),
        ),
    ];
    let probe_password = password.clone();
    let probe = move |port: u16| {
        let client = Client::new(&format!("http://127.0.0.1:{port}"), probe_password.expose());
        health(client)
    };
    anyhow::ensure!(
        !runtime.cancelled.load(Ordering::SeqCst),
        "the run was interrupted"
    );
    let started = Instant::now();
    let running = evals_docker_exec::start(
        &runtime.docker,
        container,
        &env,
        settings.start_timeout,
        probe,
    )
    .await?;
    timing(runtime, spec, "container-ready", started.elapsed());
    if settings.logging.container_logs {
        let (lines, prefix) = (runtime.lines.clone(), prefix(spec, "container"));
        running.stream_logs(move |line| lines(&format!("{prefix} {line}")));
    }
    Ok((running, password))
}

/// Whether the server behind `client` answers its health check within the probe's deadline.
async fn health(client: Result<Client, evals_opencode_client::Error>) -> bool {
    match client {
        Ok(client) => client.health(HEALTH_TIMEOUT).await.is_ok(),
        Err(_) => false,
    }
}

/// The call's session in a running container, watched and, with `--verbose`, traced.
async fn in_container<T>(
    runtime: &Runtime,
    spec: &CallSpec,
    workspace: &Path,
    running: &RunningContainer,
    password: &Secret,
    validate: impl Fn(&Value) -> Result<T, String>,
) -> anyhow::Result<CallOutput<T>> {
    let settings = &runtime.settings;
    let client = Client::new(
        &format!("http://127.0.0.1:{}", running.port()),
        password.expose(),
    )?;
    let log = settings.logging.agent_logs.then(|| {
        AgentLog::new(
            agent_prefix(spec.worker.0, spec.worker.1, &spec.eval_id),
            None,
        )
    });
    let watch = Watch::start(
        client.clone(),
        log,
        runtime.lines.clone(),
        prefix(spec, "runner"),
    );
    let trace = settings
        .logging
        .verbose
        .then(|| start_trace(runtime, spec, workspace, running.port(), &watch));
    let turn = Turn {
        runtime,
        client: &client,
        watch: &watch,
        trace: trace.as_ref(),
    };
    let outcome = turn.converse(spec, validate).await;
    if let Some(trace) = trace {
        trace.stop(&match &outcome {
            Ok(_) => Outcome::Completed,
            Err(err) => Outcome::Failed(format!("{err:#}")),
        });
    }
    watch.finish();
    outcome
}

/// The call's `--verbose` trace, its heartbeat fed by the event watch.
fn start_trace(
    runtime: &Runtime,
    spec: &CallSpec,
    workspace: &Path,
    port: u16,
    watch: &Watch,
) -> CallTrace {
    let settings = &runtime.settings;
    let info = CallInfo {
        label: spec.label.into(),
        eval_id: spec.eval_id.clone(),
        worker: spec.worker.0,
        workers: spec.worker.1,
        model: settings.model.to_string(),
        port,
        phase_timeout: settings.timeout,
        workspace: workspace.to_path_buf(),
        prompt_bytes: spec.prompt.len(),
    };
    let lines = runtime.lines.clone();
    CallTrace::start(
        &info,
        Arc::new(move |line: &str| lines(line)),
        watch.probe(),
    )
}

/// With `--verbose`, a trace line timing one container step, so the cost of Docker is visible
/// beside the model's.
fn timing(runtime: &Runtime, spec: &CallSpec, event: &str, took: Duration) {
    if runtime.settings.logging.verbose {
        let (worker, workers) = spec.worker;
        (runtime.lines)(&format!(
            "[opencode-trace][worker {worker}/{workers}][{}][{}] {event} took={}ms",
            spec.eval_id,
            spec.label,
            took.as_millis()
        ));
    }
}

/// The observers and prompts of one session.
struct Turn<'a> {
    runtime: &'a Runtime,
    client: &'a Client,
    watch: &'a Watch,
    trace: Option<&'a CallTrace>,
}

impl Turn<'_> {
    /// The session: structured output first, then the JSON fallback, then the snapshot.
    async fn converse<T>(
        &self,
        spec: &CallSpec,
        validate: impl Fn(&Value) -> Result<T, String>,
    ) -> anyhow::Result<CallOutput<T>> {
        let session = self
            .client
            .create_session(&format!("{} {}", spec.label, spec.eval_id))
            .await?;
        self.watch.set_session(&session.id);
        if let Some(trace) = self.trace {
            trace.session(&session.id);
        }
        let mut known = Vec::new();
        let structured = self
            .phase(
                Phase::StructuredOutput,
                self.structured(&session.id, spec, &validate, &mut known),
            )
            .await;
        let answer = match structured {
            Ok(answer) => Ok(answer),
            Err(structured) => {
                let fallback = self.fallback(&session.id, spec, &validate, &mut known);
                self.phase(Phase::JsonFallback, fallback)
                    .await
                    .map_err(|fallback| {
                        anyhow::anyhow!(
                            "structured-output: {structured}; json-fallback: {fallback}"
                        )
                    })
            }
        };
        // After a structured-output prompt the server cannot list the session's messages, so
        // the snapshot reads each one the replies or the event stream named.
        known.extend(self.watch.message_ids());
        known.sort();
        known.dedup();
        let snapshot = snapshot(self.client, &session.id, &known).await;
        answer.map(|(answer, raw)| CallOutput {
            answer,
            raw,
            snapshot,
        })
    }

    /// Runs one phase, tracing its start and its outcome.
    async fn phase<T>(
        &self,
        phase: Phase,
        work: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        if let Some(trace) = self.trace {
            trace.phase_start(phase);
        }
        let outcome = work.await;
        if let Some(trace) = self.trace {
            trace.phase_end(&match &outcome {
                Ok(_) => Outcome::Completed,
                Err(reason) if reason.starts_with(TIMED_OUT) => Outcome::TimedOut,
                Err(reason) => Outcome::Failed(reason.clone()),
            });
        }
        outcome
    }

    /// Phase `structured-output`: the server's native JSON-schema output.
    async fn structured<T>(
        &self,
        session_id: &str,
        spec: &CallSpec,
        validate: impl Fn(&Value) -> Result<T, String>,
        known: &mut Vec<String>,
    ) -> Result<(T, Value), String> {
        let request = PromptRequest::text(&spec.prompt)
            .with_json_schema(spec.schema.clone(), STRUCTURED_RETRIES);
        let reply = self
            .prompt(session_id, request, spec.system.as_deref(), known)
            .await?;
        let value = reply
            .structured_value()
            .ok_or("the answer held no structured output")?;
        validate(value).map(|answer| (answer, value.clone()))
    }

    /// Phase `json-fallback`: plain JSON asked for in text, then extracted from the answer.
    async fn fallback<T>(
        &self,
        session_id: &str,
        spec: &CallSpec,
        validate: impl Fn(&Value) -> Result<T, String>,
        known: &mut Vec<String>,
    ) -> Result<(T, Value), String> {
        let request = PromptRequest::text(fallback_prompt(&spec.schema));
        let reply = self
            .prompt(session_id, request, Some(JSON_FALLBACK_SYSTEM), known)
            .await?;
        evals_pipeline::prompt::extract_json(&reply.text(), validate)
    }

    /// Sends one prompt within the phase deadline; a timeout aborts the session.
    async fn prompt(
        &self,
        session_id: &str,
        request: PromptRequest,
        system: Option<&str>,
        known: &mut Vec<String>,
    ) -> Result<AssistantReply, String> {
        let request =
            with_model_and_system(request, client_model(&self.runtime.settings.model), system);
        let timeout = self.runtime.settings.timeout;
        match self
            .client
            .prompt_with_timeout(session_id, &request, timeout)
            .await
        {
            Ok(reply) => {
                known.extend(reply.message_ids().into_iter().map(String::from));
                match reply.error() {
                    Some(error) => Err(format!(
                        "the model failed: {} {}",
                        error.name,
                        error.message().unwrap_or_default()
                    )),
                    None => Ok(reply),
                }
            }
            Err(err) if err.is_timeout() => {
                self.client.abort(session_id).await.ok();
                Err(format!(
                    "timed out after {} ms; the session was aborted",
                    timeout.as_millis()
                ))
            }
            Err(err) => Err(err.to_string()),
        }
    }
}

/// Session info, messages and diff, as far as the server gives them.
async fn snapshot(client: &Client, session_id: &str, known: &[String]) -> Value {
    // Every call here prompted with a JSON schema, after which the server cannot list the
    // session's messages: each known message is read by id instead, all at once.
    let messages =
        futures_util::future::join_all(known.iter().map(|id| client.message(session_id, id)));
    let (session, messages, diff) = tokio::join!(
        client.session(session_id),
        messages,
        client.diff(session_id)
    );
    let messages: Vec<_> = messages.into_iter().filter_map(Result::ok).collect();
    json!({
        "session": session.ok().and_then(|info| serde_json::to_value(info).ok()).unwrap_or(json!({"id": session_id})),
        "messages": serde_json::to_value(messages).unwrap_or(json!([])),
        "diff": diff.ok().and_then(|diff| serde_json::to_value(diff).ok()).unwrap_or(json!([])),
    })
}

fn with_model_and_system(
    request: PromptRequest,
    model: Option<ClientModel>,
    system: Option<&str>,
) -> PromptRequest {
    let request = match model {
        Some(model) => request.with_model(model),
        None => request,
    };
    match system {
        Some(system) => request.with_system(system),
        None => request,
    }
}

fn client_model(model: &ModelRef) -> Option<ClientModel> {
    match model {
        ModelRef::Noop => None,
        ModelRef::Mock { scenario } => Some(ClientModel::new("mock", scenario)),
        ModelRef::Provider { provider, model } => Some(ClientModel::new(provider, model)),
    }
}

/// The runner's configuration overlay, with the mock provider when the run uses it.
fn overlay(runtime: &Runtime) -> String {
    let provider = match (&runtime.settings.model, &runtime.mock) {
        (ModelRef::Mock { scenario }, Some(mock)) => Some(OverlayProvider {
            id: "mock".into(),
            config: evals_mock_model::opencode_provider_with_models(
                &mock.base_url(),
                mock.model_ids().into_iter().chain([scenario.clone()]),
            ),
            model: format!("mock/{scenario}"),
        }),
        _ => None,
    };
    evals_docker_exec::overlay(provider.as_ref())
}

/// The configuration file as mounted: copied under the session when `--host-tmpdir` is given.
fn stage_config(settings: &Settings, dirs: &mut SessionDirs) -> anyhow::Result<Option<ConfigFile>> {
    let Some(config) = &settings.config else {
        return Ok(None);
    };
    if settings.host_tmpdir.is_none() {
        return Ok(Some(config.clone()));
    }
    let path = dirs.stage_config(&config.path, config.kind.file_name())?;
    Ok(Some(ConfigFile {
        path,
        kind: config.kind,
    }))
}

/// `[opencode-docker][worker I/N][EVAL][KIND]`.
pub fn prefix(spec: &CallSpec, kind: &str) -> String {
    format!(
        "[opencode-docker][worker {}/{}][{}][{kind}]",
        spec.worker.0, spec.worker.1, spec.eval_id
    )
}

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}
