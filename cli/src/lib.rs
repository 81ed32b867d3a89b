//! The `evals-runner` binary's library: the command line, the validated run plan, and the wiring
//! of the runner's crates into the `run` command.
//!
//! `main.rs` only parses, calls [`execute`] and maps the outcome to an exit code; everything
//! here is reachable from tests.

pub mod args;
pub mod container;
pub mod dry_run;
pub mod error;
pub mod host;
pub mod settings;

use std::io::Write;

use anyhow::Context;

use crate::args::{Cli, Command, RunArgs};
use crate::error::UserError;
use crate::host::Host;
use crate::settings::Settings;

/// Runs one parsed command line against `host`, writing data to `stdout`.
pub fn execute(cli: Cli, host: &Host, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run(&args, host, stdout),
    }
}

/// `evals-runner run`.
fn run(args: &RunArgs, host: &Host, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    let settings = Settings::resolve(&args.model, &args.common, host)?;
    eprintln!("{}", settings.logging.summary_line());
    let evals = evals_pipeline::discover(&host.cwd, &settings.pattern).map_err(|err| {
        UserError::new(
            err,
            "run from the folder that holds `evals/`, or pass `--pattern`",
        )
    })?;
    if !args.dry_run {
        return Err(UserError::new(
            "starting containers is not available in this build",
            "pass `--dry-run` to see each eval's `docker run` command line",
        )
        .into());
    }
    for line in dry_run::lines(&settings, &evals)? {
        serde_json::to_writer(&mut *stdout, &line).context("cannot write to standard output")?;
        writeln!(stdout).context("cannot write to standard output")?;
    }
    Ok(error::EXIT_OK)
}
