//! `run --dry-run`: the command line each eval would get, as JSON lines, with nothing started.

use std::path::PathBuf;

use evals_auth_isolation::{CONFIG_PREFIX, HOME_PREFIX, WORKSPACE_PREFIX};
use evals_docker_exec::{BRIDGE_CONTAINER_PORT, run_argv};
use evals_mount_plan::ConfigFile;
use serde::Serialize;

use crate::container::{RUNNER_ENV, SessionPaths, container_spec};
use crate::settings::{ModelRef, Settings};

/// Stands for the random suffix of a temp directory, which exists only once a call starts.
const SUFFIX_PLACEHOLDER: &str = "XXXXXX";

/// One line of dry-run output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunLine {
    /// The eval's id.
    pub eval_id: String,
    /// The full `docker run` argv; `null` for `noop`, which starts no container.
    pub argv: Option<Vec<String>>,
    /// The names of the variables passed by name, whose values the docker client's environment
    /// carries.
    pub env: Vec<String>,
}

/// The dry-run line of each eval under the run's pattern, in eval order.
pub fn lines(
    settings: &Settings,
    evals: &[evals_pipeline::EvalDir],
) -> anyhow::Result<Vec<DryRunLine>> {
    let placeholder = |prefix: &str| {
        settings
            .temp_root
            .join(format!("{prefix}{}-{SUFFIX_PLACEHOLDER}", settings.run_id))
    };
    let (workspace, data_home) = (placeholder(WORKSPACE_PREFIX), placeholder(HOME_PREFIX));
    let config = settings
        .config
        .as_ref()
        .map(|config| staged_config(settings, config, placeholder(CONFIG_PREFIX)));

    let mut lines = Vec::with_capacity(evals.len());
    for (call, eval) in evals.iter().enumerate() {
        if settings.model == ModelRef::Noop {
            lines.push(DryRunLine {
                eval_id: eval.id.clone(),
                argv: None,
                env: Vec::new(),
            });
            continue;
        }
        let paths = SessionPaths {
            workspace: &workspace,
            data_home: &data_home,
            config: config.as_ref(),
        };
        let spec = container_spec(settings, paths, &eval.id, call + 1, BRIDGE_CONTAINER_PORT)?;
        let argv = run_argv(&settings.docker, &spec);
        lines.push(DryRunLine {
            eval_id: eval.id.clone(),
            argv: Some(
                argv.iter()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect(),
            ),
            env: RUNNER_ENV
                .iter()
                .map(|name| name.to_string())
                .chain(settings.forwarded_env.iter().cloned())
                .collect(),
        });
    }
    Ok(lines)
}

/// The configuration file as it would be mounted: copied under `--host-tmpdir` when given.
fn staged_config(settings: &Settings, config: &ConfigFile, staging_dir: PathBuf) -> ConfigFile {
    match settings.host_tmpdir {
        Some(_) => ConfigFile {
            path: staging_dir.join(config.kind.file_name()),
            kind: config.kind,
        },
        None => config.clone(),
    }
}
