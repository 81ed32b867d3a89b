//! The validated plan of a run: every flag and environment setting checked and resolved once,
//! before any eval, container or temp directory exists.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use evals_docker_exec::ServerLogging;
use evals_mount_plan::{ConfigFile, HostTmpdir};
use tracing::warn;

use crate::args::{CommonArgs, NetworkArg};
use crate::error::UserError;
use crate::host::{self, Host};

/// The model of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// `noop`: copy each eval's reference solution, with no model and no container.
    Noop,
    /// `mock/<scenario>`: the built-in model, served on the host's loopback.
    Mock {
        /// The scenario, which is the mock's model id.
        scenario: String,
    },
    /// `PROVIDER/MODEL`, a model OpenCode reaches itself.
    Provider {
        /// The provider id.
        provider: String,
        /// The model id, which may itself contain `/`.
        model: String,
    },
}

impl FromStr for ModelRef {
    type Err = UserError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "noop" {
            return Ok(ModelRef::Noop);
        }
        match text.split_once('/') {
            Some(("mock", scenario)) if !scenario.is_empty() => Ok(ModelRef::Mock {
                scenario: scenario.into(),
            }),
            Some((provider, model)) if !provider.is_empty() && !model.is_empty() => {
                Ok(ModelRef::Provider {
                    provider: provider.into(),
                    model: model.into(),
                })
            }
            _ => Err(UserError::new(
                format_args!("model `{text}` is not of the form PROVIDER/MODEL"),
                "pass e.g. `--model openai/gpt-4.1-mini`, `--model mock/echo` or `--model noop`",
            )),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Noop => f.write_str("noop"),
            ModelRef::Mock { scenario } => write!(f, "mock/{scenario}"),
            ModelRef::Provider { provider, model } => write!(f, "{provider}/{model}"),
        }
    }
}

/// What the runner and the server log, resolved from the flags and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logging {
    /// The server's `--log-level` and `--print-logs`.
    pub server: ServerLogging,
    /// Agent activity lines from the event stream.
    pub agent_logs: bool,
    /// Per-call trace lines.
    pub verbose: bool,
    /// Container output lines.
    pub container_logs: bool,
}

impl Logging {
    /// Resolves `--agent-logs`, `--verbose` and the logging variables.
    pub fn resolve(args: &CommonArgs, host: &Host) -> Result<Self, UserError> {
        let agent_logs = args.agent_logs || args.verbose;
        let server = ServerLogging::resolve(
            agent_logs,
            host.var(host::SERVER_LOG_LEVEL_VAR),
            host.var(host::SERVER_PRINT_LOGS_VAR),
        )
        .map_err(|err| {
            UserError::new(
                format_args!("`{}`: {err}", host::SERVER_LOG_LEVEL_VAR),
                format!(
                    "set `{}` to DEBUG, INFO, WARN or ERROR, or unset it",
                    host::SERVER_LOG_LEVEL_VAR
                ),
            )
        })?;
        let container_logs = host.var(host::STREAM_CONTAINER_LOGS_VAR) != Some("0");
        Ok(Self {
            server,
            agent_logs,
            verbose: args.verbose,
            container_logs,
        })
    }

    /// The line stating the effective settings, printed when a run starts.
    pub fn summary_line(&self) -> String {
        let on_off = |on: bool| if on { "on" } else { "off" };
        format!(
            "[opencode-docker] logging: server-log-level={} print-logs={} agent-logs={} \
             verbose={} container-logs={}",
            self.server.level,
            on_off(self.server.print_logs),
            on_off(self.agent_logs),
            on_off(self.verbose),
            on_off(self.container_logs),
        )
    }
}

/// Everything `run` and `judge` share, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The model of this run.
    pub model: ModelRef,
    /// The glob of eval folders.
    pub pattern: String,
    /// How many evals run at once.
    pub concurrency: usize,
    /// Attempts per eval in all.
    pub max_retries: u32,
    /// Stop at the first eval that still fails.
    pub fail_fast: bool,
    /// Deadline of each phase of a model call.
    pub timeout: Duration,
    /// Deadline of a container's start.
    pub start_timeout: Duration,
    /// Logging of the runner and the server.
    pub logging: Logging,
    /// Bridge or host networking.
    pub network: NetworkArg,
    /// Where session directories are made.
    pub temp_root: PathBuf,
    /// The validated `--host-tmpdir`, when given.
    pub host_tmpdir: Option<HostTmpdir>,
    /// The configuration file to mount, if any.
    pub config: Option<ConfigFile>,
    /// The host `auth.json` to copy, when it exists.
    pub auth_file: Option<PathBuf>,
    /// Host variables forwarded by name.
    pub forwarded_env: Vec<String>,
    /// The OpenCode image.
    pub image: String,
    /// The docker client.
    pub docker: PathBuf,
    /// This run's id, carried by its containers' labels and its temp directories' names.
    pub run_id: String,
    /// The mock model's scripted scenarios.
    pub mock_scripts: Option<PathBuf>,
}

impl Settings {
    /// Checks `args` against the host and resolves every default.
    pub fn resolve(model: &str, args: &CommonArgs, host: &Host) -> anyhow::Result<Self> {
        let model: ModelRef = model.parse()?;
        let logging = Logging::resolve(args, host)?;
        let network = network(&model, args.network)?;
        let forwarding = evals_env_filter::forwarded(&host.env).map_err(|err| {
            UserError::new(err, format!("fix or unset `{}`", host::EXTRA_PREFIXES_VAR))
        })?;
        for name in &forwarding.dropped_reserved {
            warn!("host variable `{name}` is ignored: the runner sets it for each container");
        }
        let host_tmpdir = args
            .host_tmpdir
            .as_deref()
            .map(HostTmpdir::validate)
            .transpose()
            .map_err(|err| {
                UserError::new(
                    err,
                    "pass an absolute, writable directory that exists on the Docker host",
                )
            })?;
        let temp_root = host_tmpdir
            .as_ref()
            .map_or_else(|| host.temp_dir(), |dir| dir.path().to_path_buf());
        Ok(Self {
            config: config_file(args, host)?,
            auth_file: auth_file(args, host)?,
            model,
            pattern: args.pattern.clone(),
            concurrency: args.concurrency.into(),
            max_retries: args.max_retries.into(),
            fail_fast: args.fail_fast,
            timeout: Duration::from_millis(args.timeout),
            start_timeout: Duration::from_secs(args.start_timeout),
            logging,
            network,
            temp_root,
            host_tmpdir,
            forwarded_env: forwarding.names,
            image: args.image.clone(),
            docker: args.docker.clone(),
            run_id: new_run_id()?,
            mock_scripts: args.mock_scripts.as_deref().map(|dir| host.absolute(dir)),
        })
    }
}

/// `--network`, or its default for the model.
fn network(model: &ModelRef, flag: Option<NetworkArg>) -> Result<NetworkArg, UserError> {
    let is_mock = matches!(model, ModelRef::Mock { .. });
    match flag {
        Some(NetworkArg::Bridge) if is_mock => Err(UserError::new(
            "`mock/*` models are served on the host's loopback, which bridge networking cannot reach",
            "drop `--network bridge` or pass `--network host`",
        )),
        Some(flag) => Ok(flag),
        None if is_mock => Ok(NetworkArg::Host),
        None => Ok(NetworkArg::Bridge),
    }
}

/// `--opencode-config`, or the repository's own file.
fn config_file(args: &CommonArgs, host: &Host) -> anyhow::Result<Option<ConfigFile>> {
    let hint = "pass `--opencode-config FILE` with a readable file";
    if let Some(path) = &args.opencode_config {
        let config = evals_mount_plan::config_from_path(&host.absolute(path));
        return Ok(Some(config.map_err(|err| UserError::new(err, hint))?));
    }
    let search =
        evals_mount_plan::find_config(&host.cwd).map_err(|err| UserError::new(err, hint))?;
    Ok(search.chosen)
}

/// The host `auth.json`, when there is one. A file named by `--auth-file` must exist.
fn auth_file(args: &CommonArgs, host: &Host) -> anyhow::Result<Option<PathBuf>> {
    let flag = args.auth_file.as_deref().map(|path| host.absolute(path));
    let location = evals_mount_plan::auth_file(
        flag.as_deref(),
        host.var_os(host::XDG_DATA_HOME_VAR),
        host.var_os(host::HOME_VAR),
    );
    match location {
        Some(path) if path.exists() => Ok(Some(path)),
        Some(path) if flag.is_some() => Err(UserError::new(
            format_args!("`--auth-file` `{}` does not exist", path.display()),
            "pass the path of an existing auth.json, or drop the flag",
        )
        .into()),
        _ => Ok(None),
    }
}

/// Ten random lowercase hex digits.
fn new_run_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).context("cannot read the system's random source")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_parse_into_their_kind() {
        assert_eq!("noop".parse::<ModelRef>().unwrap(), ModelRef::Noop);
        assert_eq!(
            "mock/echo".parse::<ModelRef>().unwrap(),
            ModelRef::Mock {
                scenario: "echo".into()
            }
        );
        let model: ModelRef = "openrouter/meta/llama".parse().unwrap();
        assert_eq!(
            model,
            ModelRef::Provider {
                provider: "openrouter".into(),
                model: "meta/llama".into()
            }
        );
        assert_eq!(model.to_string(), "openrouter/meta/llama");
        for bad in ["gpt-4", "/x", "openai/", "mock/"] {
            assert!(bad.parse::<ModelRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mock_models_default_to_host_networking_and_refuse_bridge() {
        let mock = ModelRef::Mock {
            scenario: "echo".into(),
        };
        let real = ModelRef::Provider {
            provider: "openai".into(),
            model: "x".into(),
        };
        assert_eq!(network(&mock, None).unwrap(), NetworkArg::Host);
        assert_eq!(network(&real, None).unwrap(), NetworkArg::Bridge);
        assert_eq!(
            network(&real, Some(NetworkArg::Host)).unwrap(),
            NetworkArg::Host
        );
        assert!(network(&mock, Some(NetworkArg::Bridge)).is_err());
    }

    #[test]
    fn run_ids_are_ten_lowercase_hex_digits_and_differ() {
        let (a, b) = (new_run_id().unwrap(), new_run_id().unwrap());
        assert!(
            a.len() == 10
                && a.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
