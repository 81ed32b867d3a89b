//! `cargo xtask`: the project's chores, each a subcommand (see `cargo xtask --help`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use evals_xtask::bench::Bench;
use evals_xtask::build::Profile;
use evals_xtask::image::{self, BuildOptions};
use evals_xtask::runner_image::{self, RunnerImageOptions};
use evals_xtask::{bench, checks, docker, paths, run};

/// The project's chores: the Docker Engine, the offline OpenCode image, and every check CI runs.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Make a Docker Engine answer `docker info`.
    ///
    /// Runs `.ci/docker-up`: nothing when the engine answers; otherwise, as root, installs
    /// Debian's docker.io if needed and starts dockerd in the background (log:
    /// /var/log/evals-dockerd.log).
    DockerUp,
    /// Build the offline OpenCode image `evals-opencode:1.18.33`, unless it is up to date.
    ///
    /// npm-installs the pinned OpenCode into the cache ($XDG_CACHE_HOME/evals-runner, else
    /// ~/.cache/evals-runner), assembles a root filesystem (the baseline linux-x64 binary, its
    /// glibc libraries, static busybox, rg, CA certificates) and imports it with `docker
    /// import`. The image's `evals-runner.inputs-hash` label records the hash of every input;
    /// when it matches, nothing is built.
    Image {
        /// Build even when the image is up to date.
        #[arg(long)]
        force: bool,
    },
    /// Run every check CI runs: fmt, clippy (warnings denied) and the workspace's tests.
    ///
    /// First, when the machine allows, starts the Docker Engine and builds the image, and then
    /// sets REQUIRE_DOCKER=1 so Docker tests fail rather than skip; says what is missing when
    /// it cannot. Tests run with CI=true so snapshot mismatches fail. Exits non-zero when any
    /// step fails.
    Test,
    /// Solve and judge the example suite in `examples/` through OpenCode in Docker: the solver
    /// with `mock/echo`, the judge with `mock/keyword-judge`, the engine and image set up first.
    ///
    /// Arguments after `--` go to `evals-runner run` (e.g. `-- --model openai/gpt-4.1-mini`).
    Run {
        /// The judge model.
        #[arg(long, default_value = run::DEFAULT_JUDGE_MODEL)]
        judge_model: String,
        /// Extra arguments for `evals-runner run`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build `evals-runner:dev`, the runner in an image of its own, unless it is up to date.
    ///
    /// Builds evals-runner with cargo, then imports a root filesystem holding it, the glibc
    /// libraries it links and the `docker` client on PATH, with `docker import`; entrypoint
    /// `evals-runner`. Run it with the host's socket mounted, `--network host`, and
    /// `--host-tmpdir DIR` for a DIR mounted at the same path.
    RunnerImage {
        /// Build even when the image is up to date.
        #[arg(long)]
        force: bool,
        /// The cargo profile of the runner binary.
        #[arg(long, value_enum, default_value_t)]
        profile: Profile,
    },
    /// Measure the runner against its performance goals; each bench prints a table and a
    /// verdict per goal on standard output.
    #[command(subcommand)]
    Bench(Bench),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(task: Task) -> anyhow::Result<()> {
    let root = paths::workspace_root();
    match task {
        Task::DockerUp => docker::up(&root),
        Task::Image { force } => {
            let options = BuildOptions {
                force,
                ..BuildOptions::from_env()?
            };
            image::ensure(&options).map(drop)
        }
        Task::Test => checks::run(&root),
        Task::Run { judge_model, args } => run::run(&root, &judge_model, &args),
        Task::Bench(which) => bench::run(&root, &which),
        Task::RunnerImage { force, profile } => {
            let mut options = RunnerImageOptions::from_env()?;
            options.build.force = force;
            options.profile = profile;
            runner_image::ensure(&root, &options).map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_passes_arguments_after_the_separator_through() {
        let cli = Cli::try_parse_from(["cargo xtask", "run", "--", "--concurrency", "2"]).unwrap();
        let Task::Run { args, .. } = cli.task else {
            panic!("not run: {cli:?}")
        };
        assert_eq!(args, ["--concurrency", "2"]);
    }

    #[test]
    fn bench_takes_a_number_of_runs() {
        let cli = Cli::try_parse_from(["cargo xtask", "bench", "start", "--runs", "12"]).unwrap();
        assert!(matches!(cli.task, Task::Bench(Bench::Start { runs: 12 })));
    }
}
