//! One model call: a private session, an OpenCode container, a prompt with structured output
//! and its JSON fallback, a snapshot of the session, and the removal of everything it made.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use evals_auth_isolation::SessionDirs;
use evals_docker_exec::{
    CONFIG_CONTENT_VAR, Docker, OverlayProvider, SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR, Secret,
};
use evals_mount_plan::ConfigFile;
use evals_opencode_client::{Client, DEFAULT_USERNAME, ModelRef as ClientModel, PromptRequest};
use evals_pipeline::prompt::{JSON_FALLBACK_SYSTEM, PromptFile, fallback_prompt};
use serde_json::{Value, json};
use tracing::debug;

use crate::container::{SessionPaths, container_spec};
use crate::settings::{ModelRef, Settings};

/// How many times OpenCode itself asks the model again for a valid structured answer.
const STRUCTURED_RETRIES: u32 = 2;

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
    if let Err(err) = dirs.close() {
        debug!(%err, "session directories");
        (runtime.lines)(&format!("{} warning: {err}", prefix(spec, "runner")));
    }
    outcome
}

async fn call_in<T>(
    runtime: &Runtime,
    spec: &CallSpec,
    dirs: &mut SessionDirs,
    validate: impl Fn(&Value) -> Result<T, String>,
) -> anyhow::Result<CallOutput<T>> {
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
        async move {
            match client {
                Ok(client) => client.health(HEALTH_TIMEOUT).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    let running = evals_docker_exec::start(
        &runtime.docker,
        container,
        &env,
        settings.start_timeout,
        probe,
    )
    .await?;
    if settings.logging.container_logs {
        let (lines, prefix) = (runtime.lines.clone(), prefix(spec, "container"));
        running.stream_logs(move |line| lines(&format!("{prefix} {line}")));
    }
    let client = Client::new(
        &format!("http://127.0.0.1:{}", running.port()),
        password.expose(),
    )?;
    let outcome = converse(runtime, spec, &client, validate).await;
    running.remove().await?;
    outcome
}

/// The session: structured output first, then the JSON fallback, then the snapshot.
async fn converse<T>(
    runtime: &Runtime,
    spec: &CallSpec,
    client: &Client,
    validate: impl Fn(&Value) -> Result<T, String>,
) -> anyhow::Result<CallOutput<T>> {
    let timeout = runtime.settings.timeout;
    let session = client
        .create_session(&format!("{} {}", spec.label, spec.eval_id))
        .await?;
    let model = client_model(&runtime.settings.model);
    let mut known = Vec::new();

    let mut request =
        PromptRequest::text(&spec.prompt).with_json_schema(spec.schema.clone(), STRUCTURED_RETRIES);
    request = with_model_and_system(request, model.clone(), spec.system.as_deref());
    let structured = match client
        .prompt_with_timeout(&session.id, &request, timeout)
        .await
    {
        Ok(reply) => {
            known.extend(reply.message_ids().into_iter().map(String::from));
            match (reply.error(), reply.structured_value()) {
                (Some(error), _) => Err(format!(
                    "the model failed: {} {}",
                    error.name,
                    error.message().unwrap_or_default()
                )),
                (None, Some(value)) => validate(value).map(|answer| (answer, value.clone())),
                (None, None) => Err("the answer held no structured output".into()),
            }
        }
        Err(err) => {
            abort_on_timeout(client, &session.id, &err).await;
            Err(err.to_string())
        }
    };
    let answer = match structured {
        Ok((answer, _)) => Ok(answer),
        Err(structured_error) => {
            let request = with_model_and_system(
                PromptRequest::text(fallback_prompt(&spec.schema)),
                model,
                Some(JSON_FALLBACK_SYSTEM),
            );
            match client
                .prompt_with_timeout(&session.id, &request, timeout)
                .await
            {
                Ok(reply) => {
                    known.extend(reply.message_ids().into_iter().map(String::from));
                    let text = reply.text();
                    match reply.error() {
                        Some(error) => Err(format!(
                            "the model failed: {} {}",
                            error.name,
                            error.message().unwrap_or_default()
                        )),
                        None => evals_pipeline::prompt::extract_json(&text, &validate)
                            .map(|(answer, _)| answer),
                    }
                    .map_err(|fallback_error| {
                        anyhow::anyhow!(
                            "structured-output: {structured_error}; json-fallback: {fallback_error}"
                        )
                    })
                }
                Err(err) => {
                    abort_on_timeout(client, &session.id, &err).await;
                    Err(anyhow::anyhow!(
                        "structured-output: {structured_error}; json-fallback: {err}"
                    ))
                }
            }
        }
    };
    let snapshot = snapshot(client, &session.id, &known).await;
    answer.map(|answer| CallOutput { answer, snapshot })
}

async fn abort_on_timeout(client: &Client, session_id: &str, error: &evals_opencode_client::Error) {
    if error.is_timeout() {
        client.abort(session_id).await.ok();
    }
}

/// Session info, messages and diff, as far as the server gives them.
async fn snapshot(client: &Client, session_id: &str, known: &[String]) -> Value {
    let session = client
        .session(session_id)
        .await
        .ok()
        .and_then(|info| serde_json::to_value(info).ok());
    let messages = client
        .messages_or_known(session_id, known)
        .await
        .ok()
        .and_then(|listing| serde_json::to_value(listing.messages).ok());
    let diff = client
        .diff(session_id)
        .await
        .ok()
        .and_then(|diff| serde_json::to_value(diff).ok());
    json!({
        "session": session.unwrap_or(json!({"id": session_id})),
        "messages": messages.unwrap_or(json!([])),
        "diff": diff.unwrap_or(json!([])),
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

/// The path of `path` relative to `base` when it lies under it.
pub fn relative_to<'a>(path: &'a Path, base: &Path) -> &'a Path {
    path.strip_prefix(base).unwrap_or(path)
}
