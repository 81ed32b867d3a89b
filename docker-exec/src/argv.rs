//! The `docker run` command line of one OpenCode container, built by a pure function.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use evals_mount_plan::Mount;

use crate::logging::ServerLogging;

/// The port OpenCode listens on inside a bridge-networked container; Docker publishes it on a
/// loopback port of its choosing.
pub const BRIDGE_CONTAINER_PORT: u16 = 4096;

/// How the container reaches, and is reached from, the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Docker's default bridge; the server port is published on `127.0.0.1` only, at a port
    /// Docker picks.
    Bridge,
    /// The host's network stack, for models served on the host's loopback; the server listens
    /// on `127.0.0.1:port` directly.
    Host {
        /// The host port the server listens on.
        port: u16,
    },
}

/// Everything that varies between the runner's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The unique container name, `evals-opencode-<id>`.
    pub name: String,
    /// Labels that let a sweep find the containers of a run.
    pub labels: BTreeMap<String, String>,
    /// The OpenCode image.
    pub image: String,
    /// Bridge or host networking.
    pub network: Network,
    /// Bind mounts, from `evals-mount-plan`.
    pub mounts: Vec<Mount>,
    /// Variables the runner sets itself; their values go in the docker client's environment.
    pub runner_env: Vec<String>,
    /// Host variables forwarded by name, sorted.
    pub forwarded_env: Vec<String>,
    /// The server's log level and whether it prints its logs.
    pub logging: ServerLogging,
}

/// The full argv, program first, that starts the container described by `spec` in the
/// background.
///
/// There is no `--rm`: the runner reads the logs of a container that died before removing it.
/// Only variable names appear; no value of any variable is ever part of the argv.
pub fn run_argv(docker: &Path, spec: &ContainerSpec) -> Vec<OsString> {
    let mut argv = Argv::default();
    argv.push(docker.as_os_str());
    argv.extend(["run", "-d", "--init", "--name", &spec.name]);
    argv.extend(["--security-opt", "no-new-privileges"]);
    // Images are built locally; a missing one is an error to report, never a download.
    argv.extend(["--pull", "never"]);
    for (key, value) in &spec.labels {
        argv.extend(["--label", &format!("{key}={value}")]);
    }

    // Network.
    let (hostname, port) = match spec.network {
        Network::Bridge => {
            argv.extend(["--network", "bridge"]);
            argv.extend(["--publish", &format!("127.0.0.1::{BRIDGE_CONTAINER_PORT}")]);
            ("0.0.0.0", BRIDGE_CONTAINER_PORT)
        }
        Network::Host { port } => {
            argv.extend(["--network", "host"]);
            ("127.0.0.1", port)
        }
    };

    // Mounts and working directory.
    for mount in &spec.mounts {
        argv.extend(["--mount", &mount_flag(mount)]);
    }
    argv.extend(["--workdir", evals_mount_plan::WORKSPACE_TARGET]);

    // Environment, by name only.
    for name in spec.runner_env.iter().chain(&spec.forwarded_env) {
        argv.extend(["--env", name]);
    }

    // The image and the server's own arguments.
    argv.extend([
        &spec.image,
        "serve",
        "--hostname",
        hostname,
        "--port",
        &port.to_string(),
    ]);
    argv.extend(["--log-level", spec.logging.level.as_str()]);
    if spec.logging.print_logs {
        argv.extend(["--print-logs"]);
    }
    argv.0
}

/// The value of one `--mount` flag.
///
/// Docker reads the value as one CSV record, so a field holding a comma or a quote is written as
/// a quoted CSV field; everything else goes as it is. `evals-mount-plan` has already refused
/// the paths that cannot be written at all.
pub fn mount_flag(mount: &Mount) -> String {
    let source = mount.source.to_string_lossy();
    let mut fields = vec![
        "type=bind".to_owned(),
        csv_field(&format!("source={source}")),
        csv_field(&format!("target={}", mount.target)),
    ];
    if mount.read_only {
        fields.push("readonly".into());
    }
    fields.join(",")
}

/// `field` as a CSV field: quoted, with inner quotes doubled, when it needs to be.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"']) || field.trim() != field {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// An argv under construction.
#[derive(Default)]
struct Argv(Vec<OsString>);

impl Argv {
    fn push(&mut self, arg: impl Into<OsString>) {
        self.0.push(arg.into());
    }

    fn extend<'a>(&mut self, args: impl IntoIterator<Item = &'a str>) {
        self.0.extend(args.into_iter().map(OsString::from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(source: &str) -> Mount {
        Mount {
            source: source.into(),
            target: "/workspace".into(),
            read_only: false,
        }
    }

    #[test]
    fn plain_mount_sources_are_written_as_they_are() {
        let flag = mount_flag(&mount("/tmp/evals-opencode-r1-ab/with space/ünï:colon"));
        assert_eq!(
            flag,
            "type=bind,source=/tmp/evals-opencode-r1-ab/with space/ünï:colon,target=/workspace"
        );
    }

    #[test]
    fn commas_and_quotes_are_csv_quoted() {
        assert_eq!(
            mount_flag(&mount("/tmp/a,b\"c")),
            "type=bind,\"source=/tmp/a,b\"\"c\",target=/workspace"
        );
    }

    #[test]
    fn read_only_mounts_say_so() {
        let mount = Mount {
            source: "/r/opencode.json".into(),
            target: "/t".into(),
            read_only: true,
        };
        assert!(mount_flag(&mount).ends_with(",readonly"));
    }
}
