//! The `evals-runner` binary's library: the command line, the validated run plan, and the wiring
//! of the runner's crates into the `run` command.
//!
//! `main.rs` only parses, calls [`execute`] and maps the outcome to an exit code; everything
//! here is reachable from tests.

pub mod args;
pub mod call;
pub mod clean;
pub mod container;
pub mod dry_run;
pub mod error;
pub mod host;
pub mod judge;
pub mod pool;
pub mod progress;
pub mod settings;
pub mod signals;
pub mod solve;
pub mod watch;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;

use crate::args::{Cli, Command, JudgeArgs, MockModelArgs, RunArgs};
use crate::error::UserError;
use crate::host::Host;
use crate::settings::Settings;

/// Runs one parsed command line against `host`, writing data to `stdout`.
pub async fn execute(cli: Cli, host: &Host, stdout: &mut (dyn Write + Send)) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run(&args, host, stdout).await,
        Command::Judge(args) => judge(&args, host).await,
        Command::Clean(args) => {
            let mut roots = vec![host.temp_dir()];
            roots.extend(args.host_tmpdir.map(|dir| host.absolute(&dir)));
            clean::clean(
                &evals_docker_exec::Docker::new(&args.docker),
                &roots,
                stdout,
            )
            .await?;
            Ok(error::EXIT_OK)
        }
        Command::MockModel(args) => mock_model(&args, host).await,
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
            evals_pipeline::files::sanitize_name(&settings.model.to_string()),
            clock.run_id()
        )),
    };
    let runtime = runtime(settings).await?;
    let work = solve::solve(
        runtime.clone(),
        evals,
        &host.cwd,
        &output,
        &clock,
        args.resume,
    );
    signals::until_interrupted(&runtime, work).await
}

/// `evals-runner judge`.
async fn judge(args: &JudgeArgs, host: &Host) -> anyhow::Result<u8> {
    let settings = Settings::resolve(&args.model, &args.common, host)?;
    eprintln!("{}", settings.logging.summary_line());
    if settings.model == settings::ModelRef::Noop {
        return Err(UserError::new(
            "`noop` cannot judge",
            "pass a judge model, e.g. `--model mock/keyword-judge`",
        )
        .into());
    }
    let input = host.absolute(&args.input);
    let manifest = judge::read_manifest(&input)?;
    let output = match &args.output {
        Some(output) => host.absolute(output),
        None => input
            .parent()
            .map_or_else(|| host.cwd.clone(), Path::to_path_buf),
    };
    let job = judge::JudgeJob {
        input,
        output,
        cwd: host.cwd.clone(),
        manifest,
        selection: judge::Selection {
            missing_only: args.rerun_missing_judgements,
            requirements_file: args
                .rerun_requirements_file
                .as_deref()
                .map(|path| host.absolute(path)),
            requirement_id: args.rerun_requirement_id.clone(),
        },
        debug: args.debug,
    };
    let clock = solve::RunClock {
        started: SystemTime::now(),
    };
    let runtime = runtime(settings).await?;
    let work = judge::judge(runtime.clone(), job, &clock);
    signals::until_interrupted(&runtime, work).await
}

/// `evals-runner mock-model`: the built-in model until Ctrl-C.
async fn mock_model(args: &MockModelArgs, host: &Host) -> anyhow::Result<u8> {
    let mut config = evals_mock_model::MockConfig::default().with_port(args.port);
    if let Some(dir) = &args.scripts {
        config = config.with_script_dir(&host.absolute(dir)).map_err(|err| {
            UserError::new(
                err,
                "pass a folder of scenario files, each a JSON list of turns",
            )
        })?;
    }
    let server = evals_mock_model::serve(config).await.map_err(|err| {
        UserError::new(
            err,
            "pick another `--port`, or leave it out to let the system choose",
        )
    })?;
    eprintln!(
        "[mock-model] serving {} (models: {})",
        server.base_url(),
        server.model_ids().join(", ")
    );
    eprintln!(
        "[mock-model] OpenCode provider block:\n{:#}",
        server.opencode_provider()
    );
    server.run_until_ctrl_c().await?;
    Ok(error::EXIT_INTERRUPTED)
}

/// What every call of a run shares: the docker client, the mock model when used, the log sink.
async fn runtime(settings: Settings) -> anyhow::Result<Arc<call::Runtime>> {
    let mock = match &settings.model {
        settings::ModelRef::Mock { .. } => {
            Some(mock_server(settings.mock_scripts.as_deref()).await?)
        }
        _ => None,
    };
    let docker = evals_docker_exec::Docker::new(&settings.docker);
    if settings.model != settings::ModelRef::Noop {
        check_image(&docker, &settings.image).await?;
    }
    let progress = Arc::new(progress::Progress::new());
    let lock = evals_auth_isolation::RunLock::acquire(&settings.temp_root, &settings.run_id)
        .with_context(|| {
            format!(
                "cannot create the run's lock file in `{}`",
                settings.temp_root.display()
            )
        })?;
    Ok(Arc::new(call::Runtime {
        docker,
        settings,
        mock,
        lines: {
            let progress = progress.clone();
            Arc::new(move |line: &str| progress.line(line))
        },
        progress,
        cancelled: Default::default(),
        lock,
    }))
}

/// The built-in model, with the scripted scenarios of `scripts` when given.
async fn mock_server(scripts: Option<&Path>) -> anyhow::Result<evals_mock_model::MockServer> {
    let mut config = evals_mock_model::MockConfig::default();
    if let Some(dir) = scripts {
        config = config.with_script_dir(dir).map_err(|err| {
            UserError::new(
                err,
                "pass `--mock-scripts` a folder of `NAME.json` files, each a JSON list of turns",
            )
        })?;
    }
    evals_mock_model::serve(config)
        .await
        .context("cannot start the built-in mock model")
}

/// Fails before any eval starts when Docker or the image is missing, with what to do.
async fn check_image(docker: &evals_docker_exec::Docker, image: &str) -> anyhow::Result<()> {
    let inspect = evals_docker_exec::args(["image", "inspect", "--format", "{{.Id}}", image]);
    match docker.output_async(inspect, vec![]).await {
        Ok(_) => Ok(()),
        Err(err) => Err(UserError::new(
            format_args!("image `{image}` is not usable: {err}"),
            evals_docker_exec::hint_for(&err),
        )
        .into()),
    }
}
