//! The command line, as clap parses it. Nothing here is validated beyond its type: `settings`
//! turns these into a checked plan before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run coding evals with the OpenCode agent, one Docker container per model call.
#[derive(Debug, Parser)]
#[command(name = "evals-runner", version, max_term_width = 100)]
#[command(after_help = "Exit codes: 0 all evals done, 1 some evals errored, \
    2 bad input or set-up failure, 130 interrupted (Ctrl-C), 143 terminated.")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Solve every eval with a model; write the generated files and `manifest.json`.
    Run(RunArgs),
    /// Grade a solver run's files against each eval's requirements; write results and
    /// `summary.json`.
    Judge(JudgeArgs),
    /// Remove the containers and temp directories of runs that are no longer running.
    Clean(CleanArgs),
    /// Serve the built-in mock model on 127.0.0.1, for use with any OpenCode.
    MockModel(MockModelArgs),
}

/// `evals-runner clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Also look in DIR, the `--host-tmpdir` of the runs to clean, besides the system temp
    /// directory.
    #[arg(long, value_name = "DIR")]
    pub host_tmpdir: Option<PathBuf>,

    /// The docker client to run.
    #[arg(long, default_value = "docker", value_name = "PATH")]
    pub docker: PathBuf,
}

/// `evals-runner mock-model`.
#[derive(Debug, Args)]
pub struct MockModelArgs {
    /// The port to listen on, on 127.0.0.1 [default: one the system picks].
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// A folder of scripted scenarios (`NAME.json`, served as model `script:NAME`).
    #[arg(long, value_name = "DIR")]
    pub scripts: Option<PathBuf>,
}

/// `evals-runner judge`.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// The judge model, `PROVIDER/MODEL` or `mock/<scenario>`.
    #[arg(long, value_name = "MODEL")]
    pub model: String,

    /// The output folder of the solver run to grade (it holds `manifest.json`).
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,

    /// Where to write results [default: the parent folder of `--input`].
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Judge only the evals that have no result yet.
    #[arg(long)]
    pub rerun_missing_judgements: bool,

    /// Judge again only the eval of this `requirements.yaml`.
    #[arg(long, value_name = "PATH")]
    pub rerun_requirements_file: Option<PathBuf>,

    /// With `--rerun-requirements-file`, judge again only this requirement.
    #[arg(long, value_name = "ID", requires = "rerun_requirements_file")]
    pub rerun_requirement_id: Option<String>,

    /// Keep each judge prompt and raw answer under `debug/` in the output folder.
    #[arg(long)]
    pub debug: bool,

    /// The options `run` and `judge` share.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `evals-runner run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The solver model, `PROVIDER/MODEL` (e.g. `openai/gpt-4.1-mini`), `mock/<scenario>` for
    /// the built-in offline model, or `noop` to copy each eval's reference solution.
    #[arg(long, value_name = "MODEL")]
    pub model: String,

    /// Where to write results [default: generated/<model>-<run id>].
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Skip the evals whose results are already in `--output`, from an earlier run of the
    /// same output folder.
    #[arg(long, requires = "output")]
    pub resume: bool,

    /// Print the `docker run` command line of each eval as JSON lines and start nothing.
    ///
    /// Temp directory suffixes (`XXXXXX`) and, with host networking, the port are placeholders:
    /// the real ones are chosen when a container starts.
    #[arg(long)]
    pub dry_run: bool,

    /// The options `run` and `judge` share.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options shared by `run` and `judge`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Glob, relative to the current directory, of the eval folders to run.
    #[arg(long, default_value = evals_pipeline::DEFAULT_PATTERN, value_name = "GLOB")]
    pub pattern: String,

    /// How many evals run at once, each in its own container.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Attempts per eval in all (1 means no retry), 5 s apart.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub max_retries: u16,

    /// Stop the run at the first eval that still fails after its retries.
    #[arg(long)]
    pub fail_fast: bool,

    /// Deadline of each phase of a model call, in milliseconds; the session is aborted after it.
    #[arg(long, default_value_t = 120_000, value_name = "MS")]
    pub timeout: u64,

    /// Deadline for a container to start and its server to answer, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub start_timeout: u64,

    /// Stream the agent's activity (tool calls, text, errors) as log lines; also starts the
    /// server with `DEBUG` logs and `--print-logs`.
    #[arg(long)]
    pub agent_logs: bool,

    /// Trace each model call (phases, session, a heartbeat every 3 s); implies `--agent-logs`.
    #[arg(long, short)]
    pub verbose: bool,

    /// Put every temp directory the runner mounts under DIR. Needed when the runner itself runs
    /// in a container that drives the host's Docker daemon: mount DIR into that container at
    /// the same path.
    #[arg(long, value_name = "DIR")]
    pub host_tmpdir: Option<PathBuf>,

    /// Container networking [default: host for `mock/*` models, else bridge].
    #[arg(long, value_enum)]
    pub network: Option<NetworkArg>,

    /// OpenCode configuration file to mount read-only [default: `opencode.json` or
    /// `opencode.jsonc` in the current directory].
    #[arg(long, value_name = "FILE")]
    pub opencode_config: Option<PathBuf>,

    /// The `auth.json` whose copy each container gets [default:
    /// `$XDG_DATA_HOME/opencode/auth.json` or `~/.local/share/opencode/auth.json`].
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,

    /// The OpenCode image (build it with `cargo xtask image`).
    #[arg(long, default_value = "evals-opencode:1.18.33", value_name = "IMAGE")]
    pub image: String,

    /// The docker client to run.
    #[arg(long, default_value = "docker", value_name = "PATH")]
    pub docker: PathBuf,

    /// A folder of scripted scenarios for the mock model: `NAME.json`, a JSON list of turns,
    /// is served as model `mock/script:NAME`.
    #[arg(long, value_name = "DIR")]
    pub mock_scripts: Option<PathBuf>,
}

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// Docker's bridge, the server published on 127.0.0.1 only.
    Bridge,
    /// The host's network; needed to reach a model served on the host's loopback.
    Host,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
