//! `cargo xtask run`: the solver and the judge on the repository's examples, through real
//! OpenCode in real Docker, with the engine and the image set up first.
//!
//! The solver runs with the built-in `mock/echo` model unless the arguments after `--` name
//! another `--model`; its output goes to `generated/<model>-<time>` in `examples/` unless they
//! name an `--output`. The judge then grades that output with `--judge-model`.

use std::ffi::OsString;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use crate::image::{self, BuildOptions};
use crate::{build, docker, progress};

/// The solver model when the arguments name none.
pub const DEFAULT_SOLVER_MODEL: &str = "mock/echo";

/// The judge model when `--judge-model` is not given.
pub const DEFAULT_JUDGE_MODEL: &str = "mock/keyword-judge";

/// Sets up the engine and the image, builds the runner, then solves and judges the examples.
/// Fails when either run fails outright; evals that errored are reported by the runs.
pub fn run(root: &Path, judge_model: &str, extra_args: &[String]) -> anyhow::Result<()> {
    let examples = root.join("examples");
    if !examples.is_dir() {
        bail!(
            "no `{}` folder: the examples are run from there",
            examples.display()
        );
    }
    docker::up(root)?;
    image::ensure(&BuildOptions::from_env()?)?;
    let runner = build::build(root, "evals-cli", build::RUNNER, build::Profile::Debug)?;

    let output = flag_value(extra_args, "--output").unwrap_or_else(|| {
        let model =
            flag_value(extra_args, "--model").unwrap_or_else(|| DEFAULT_SOLVER_MODEL.into());
        format!(
            "generated/{}-{}",
            evals_pipeline::files::sanitize_name(&model),
            seconds_since_epoch()
        )
    });
    let mut solver: Vec<String> = vec!["run".into()];
    if flag_value(extra_args, "--model").is_none() {
        solver.extend(["--model".into(), DEFAULT_SOLVER_MODEL.into()]);
    }
    if flag_value(extra_args, "--output").is_none() {
        solver.extend(["--output".into(), output.clone()]);
    }
    solver.extend_from_slice(extra_args);
    let solved = runner_step(&runner, &examples, &solver)?;

    let judge = ["judge", "--model", judge_model, "--input", &output].map(String::from);
    let judged = runner_step(&runner, &examples, &judge)?;
    progress!(
        "run",
        "results: `{}` (solver) and `{}` (judge)",
        examples.join(&output).display(),
        examples.join("generated").display()
    );
    if !(solved && judged) {
        bail!("some evals errored; their lines above say why");
    }
    Ok(())
}

/// Runs the runner with `args` in `dir`: `Ok(true)` when every eval was done, `Ok(false)` when
/// some errored (exit 1), an error for anything else.
fn runner_step(runner: &Path, dir: &Path, args: &[String]) -> anyhow::Result<bool> {
    progress!(
        "run",
        "evals-runner {} (in `{}`)",
        args.join(" "),
        dir.display()
    );
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let status = duct::cmd(runner, args)
        .dir(dir)
        .unchecked()
        .run()
        .context("cannot run evals-runner")?
        .status;
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => bail!("evals-runner failed ({status})"),
    }
}

/// The value of `--name VALUE` or `--name=VALUE` in `args`.
fn flag_value(args: &[String], name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    args.iter().enumerate().find_map(|(index, arg)| {
        if arg == name {
            args.get(index + 1).cloned()
        } else {
            arg.strip_prefix(&prefix).map(String::from)
        }
    })
}

fn seconds_since_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_found_in_both_spellings() {
        let args: Vec<String> = ["--model", "openai/x", "--output=out"]
            .map(String::from)
            .to_vec();
        assert_eq!(flag_value(&args, "--model").as_deref(), Some("openai/x"));
        assert_eq!(flag_value(&args, "--output").as_deref(), Some("out"));
        assert_eq!(flag_value(&args, "--pattern"), None);
    }
}
