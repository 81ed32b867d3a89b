//! The `docker run` argv of OpenCode containers, and everything the runner does with Docker.
//!
//! This crate is the runner's one door to Docker. Its pure core turns a typed description of a
//! container ([`ContainerSpec`]) into the exact argv ([`run_argv`]); no value of any variable
//! ever appears in it, only `--env NAME`, so the values travel in the docker client's
//! environment. It also owns how the OpenCode server logs ([`ServerLogging`]) and the runner's
//! configuration overlay ([`overlay()`]).
//!
//! ```
//! use std::path::Path;
//! use evals_docker_exec::{ContainerSpec, LogLevel, Network, ServerLogging, run_argv};
//!
//! let spec = ContainerSpec {
//!     name: "evals-opencode-1a2b".into(),
//!     labels: [("evals-runner.run-id".to_owned(), "1a2b".to_owned())].into(),
//!     image: "evals-opencode:1.18.33".into(),
//!     network: Network::Host { port: 4701 },
//!     mounts: vec![],
//!     runner_env: vec!["OPENCODE_SERVER_PASSWORD".into()],
//!     forwarded_env: vec!["OPENAI_API_KEY".into()],
//!     logging: ServerLogging { level: LogLevel::Info, print_logs: false },
//! };
//! let argv = run_argv(Path::new("docker"), &spec);
//! assert_eq!(argv[..4], ["docker", "run", "-d", "--init"]);
//! assert!(argv.iter().any(|arg| arg == "OPENAI_API_KEY"));
//! ```

mod argv;
mod container;
mod logging;
pub mod overlay;
mod process;
mod sweep;

pub use argv::{BRIDGE_CONTAINER_PORT, ContainerSpec, Network, mount_flag, run_argv};
pub use container::{
    LOG_TAIL_LINES, PORT_ATTEMPTS, PROBE_INTERVAL, PROBE_TIMEOUT, RunningContainer, StartError,
    Unready, hint_for, open_permissions, remove, start, start_with_ports, wait_ready,
};
pub use logging::{InvalidLogLevel, LogLevel, ServerLogging};
pub use overlay::{CONFIG_CONTENT_VAR, OverlayProvider, overlay};
pub use process::{Docker, DockerError, Secret, args};
pub use sweep::{ContainerRef, remove_run_containers, run_containers};

/// The label every container of the runner carries, with the id of the run that started it.
pub const RUN_ID_LABEL: &str = "evals-runner.run-id";

/// The prefix of every container name, followed by the run id and a per-call suffix.
pub const CONTAINER_NAME_PREFIX: &str = "evals-opencode-";

/// The variable holding the server's basic-auth password, set by the runner per container.
pub const SERVER_PASSWORD_VAR: &str = "OPENCODE_SERVER_PASSWORD";

/// The variable holding the server's basic-auth user name.
pub const SERVER_USERNAME_VAR: &str = "OPENCODE_SERVER_USERNAME";
