//! The `evals-runner` binary's library: the command line, the validated run plan, and the wiring
//! of the runner's crates into the `run` command.
//!
//! `main.rs` only parses, calls [`execute`] and maps the outcome to an exit code; everything
//! here is reachable from tests.

pub mod args;
pub mod call;
pub mod container;
pub mod dry_run;
pub mod error;
pub mod host;
pub mod settings;
pub mod solve;

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;

use crate::args::{Cli, Command, RunArgs};
use crate::error::UserError;
use crate::host::Host;
use crate::settings::Settings;

/// Runs one parsed command line against `host`, writing data to `stdout`.
pub async fn execute(cli: Cli, host: &Host, stdout: &mut (dyn Write + Send)) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run(&args, host, stdout).await,
    }
}

/// `evals-runner run`.
async fn run(args: &RunArgs, host: &Host, stdout: &mut (dyn Write + Send)) -> anyhow::Result<u8> {
    let settings = Settings::resolve(&args.model, &args.common, host)?;
    eprintln!("{}", settings.logging.summary_line());
    let evals = evals_pipeline::discover(&host.cwd, &settings.pattern).map_err(|err| {
        UserError::new(
            err,
            "run from the folder that holds `evals/`, or pass `--pattern`",
        )
    })?;
    if !args.dry_run {
        return solve(args, settings, evals, host).await;
    }
    for line in dry_run::lines(&settings, &evals)? {
        serde_json::to_writer(&mut *stdout, &line).context("cannot write to standard output")?;
        writeln!(stdout).context("cannot write to standard output")?;
    }
    Ok(error::EXIT_OK)
}

/// `run` for real: the mock model when asked for, every eval, and the manifest.
async fn solve(
    args: &RunArgs,
    settings: Settings,
    evals: Vec<evals_pipeline::EvalDir>,
    host: &Host,
) -> anyhow::Result<u8> {
    let clock = solve::RunClock {
        started: SystemTime::now(),
    };
    let output = match &args.output {
        Some(output) => host.absolute(output),
        None => host.cwd.join("generated").join(format!(
            "{}-{}",
            solve::sanitize_name(&settings.model.to_string()),
            clock.run_id()
        )),
    };
    let mock = match &settings.model {
        settings::ModelRef::Mock { .. } => Some(
            evals_mock_model::serve(evals_mock_model::MockConfig::default())
                .await
                .context("cannot start the built-in mock model")?,
        ),
        _ => None,
    };
    let runtime = Arc::new(call::Runtime {
        docker: evals_docker_exec::Docker::new(&settings.docker),
        settings,
        mock,
        lines: Arc::new(|line: &str| eprintln!("{line}")),
    });
    solve::solve(runtime, evals, &host.cwd, &output, &clock).await
}
