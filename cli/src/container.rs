//! One call's container, described from the run's settings: the bridge between the validated
//! plan and `evals-docker-exec`'s argv builder.

use std::collections::BTreeMap;
use std::path::Path;

use evals_docker_exec::{
    CONFIG_CONTENT_VAR, CONTAINER_NAME_PREFIX, ContainerSpec, Network, RUN_ID_LABEL,
    SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR,
};
use evals_mount_plan::{ConfigFile, PlanInput};

use crate::args::NetworkArg;
use crate::settings::Settings;

/// The label naming the eval a container works on, for people reading `docker ps`.
pub const EVAL_LABEL: &str = "evals-runner.eval";

/// The variables the runner sets in every container; their values never leave its environment.
pub const RUNNER_ENV: [&str; 3] = [CONFIG_CONTENT_VAR, SERVER_PASSWORD_VAR, SERVER_USERNAME_VAR];

/// The host side of one call's mounts.
#[derive(Debug, Clone, Copy)]
pub struct SessionPaths<'a> {
    /// The session workspace.
    pub workspace: &'a Path,
    /// The session's data home with the `auth.json` copy.
    pub data_home: &'a Path,
    /// The configuration file as mounted: the repository's, or its copy under `--host-tmpdir`.
    pub config: Option<&'a ConfigFile>,
}

/// The container of call number `call` of the run, for eval `eval_id`, its server on `port`
/// when the network is the host's.
pub fn container_spec(
    settings: &Settings,
    paths: SessionPaths<'_>,
    eval_id: &str,
    call: usize,
    port: u16,
) -> Result<ContainerSpec, evals_mount_plan::Error> {
    let mounts = evals_mount_plan::plan(&PlanInput {
        workspace: paths.workspace,
        data_home: paths.data_home,
        config: paths.config,
        host_tmpdir: settings.host_tmpdir.as_ref(),
    })?;
    let labels = BTreeMap::from([
        (RUN_ID_LABEL.to_owned(), settings.run_id.clone()),
        (EVAL_LABEL.to_owned(), eval_id.to_owned()),
    ]);
    let network = match settings.network {
        NetworkArg::Bridge => Network::Bridge,
        NetworkArg::Host => Network::Host { port },
    };
    Ok(ContainerSpec {
        name: format!("{CONTAINER_NAME_PREFIX}{}-{call}", settings.run_id),
        labels,
        image: settings.image.clone(),
        network,
        mounts,
        runner_env: RUNNER_ENV.map(String::from).to_vec(),
        forwarded_env: settings.forwarded_env.clone(),
        logging: settings.logging.server,
    })
}
