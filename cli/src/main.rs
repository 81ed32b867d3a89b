//! `evals-runner`: run coding evals with the OpenCode agent, one Docker container per model call.

use std::process::ExitCode;

use clap::Parser;
use evals_cli::args::Cli;
use evals_cli::host::Host;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            let host = Host::capture()?;
            runtime.block_on(evals_cli::execute(cli, &host, &mut std::io::stdout()))
        });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => evals_cli::error::report(&error),
    }
}
