//! `evals-runner run`: solve every eval, write the generated files, snapshots and the manifest.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use evals_pipeline::EvalDir;
use evals_pipeline::files::{input_files, write_files, write_json_atomic};
use evals_pipeline::prompt::{DEFAULT_SOLVER_SYSTEM, SolverOutput, solver_prompt, solver_schema};
use serde::Serialize;
use serde_json::Value;

use crate::call::{CallSpec, Runtime, call};
use crate::error::{EXIT_EVALS_ERRORED, EXIT_OK};
use crate::pool::{self, PoolOptions, Slot};
use crate::progress;
use crate::settings::ModelRef;

/// The session snapshot's name beside the generated files.
pub const SOLVER_SNAPSHOT: &str = "opencode-session.solver.json";

/// One successful eval in `manifest.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEval {
    eval_id: String,
    eval_path: String,
    output_files: Vec<String>,
    generated_path: String,
    solver_session_artifact_path: String,
}

/// `manifest.json`, exactly the fields readers rely on.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    run_id: String,
    started_at: String,
    finished_at: String,
    solver_model: String,
    pattern: String,
    eval_count: usize,
    evals_processed: usize,
    evals_errored: usize,
    evals: Vec<ManifestEval>,
}

/// Where a run's times come from.
pub struct RunClock {
    /// The run's start.
    pub started: SystemTime,
}

impl RunClock {
    /// `runId`: the start time in ISO-8601 with `:` and `.` replaced by `-`.
    pub fn run_id(&self) -> String {
        iso(self.started).replace([':', '.'], "-")
    }
}

/// A time as ISO-8601 with milliseconds, in UTC.
pub fn iso(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// A name made safe for a folder: every character outside `[A-Za-z0-9._-]` becomes `_`.
pub fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Solves `evals` into `output`, returning the exit code.
pub async fn solve(
    runtime: Arc<Runtime>,
    evals: Vec<EvalDir>,
    cwd: &Path,
    output: &Path,
    clock: &RunClock,
) -> anyhow::Result<u8> {
    let settings = &runtime.settings;
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create output folder `{}`", output.display()))?;
    let options = PoolOptions {
        concurrency: settings.concurrency,
        attempts: settings.max_retries.max(1) as usize,
        fail_fast: settings.fail_fast,
    };
    let job = {
        let (runtime, cwd, output) = (runtime.clone(), cwd.to_path_buf(), output.to_path_buf());
        move |eval: Arc<EvalDir>, slot: Slot| {
            let (runtime, cwd, output) = (runtime.clone(), cwd.clone(), output.clone());
            async move { solve_one(&runtime, &eval, slot, &cwd, &output).await }
        }
    };
    let eval_count = evals.len();
    let results = pool::run(evals, options, job, |eval: &EvalDir, outcome| {
        progress::finished(&eval.id, outcome)
    })
    .await;

    let errored = results
        .iter()
        .filter(|(_, outcome)| outcome.is_err())
        .count();
    let manifest = Manifest {
        run_id: clock.run_id(),
        started_at: iso(clock.started),
        finished_at: iso(SystemTime::now()),
        solver_model: settings.model.to_string(),
        pattern: settings.pattern.clone(),
        eval_count,
        evals_processed: results.len(),
        evals_errored: errored,
        evals: results
            .into_iter()
            .filter_map(|(_, outcome)| outcome.ok())
            .collect(),
    };
    write_json_atomic(&output.join("manifest.json"), &manifest)?;
    progress::table(&[
        ("evals", eval_count.to_string()),
        ("errored", errored.to_string()),
        (
            "results",
            crate::call::relative_to(output, cwd).display().to_string(),
        ),
    ]);
    Ok(if errored == 0 && manifest.evals_processed == eval_count {
        EXIT_OK
    } else {
        EXIT_EVALS_ERRORED
    })
}

async fn solve_one(
    runtime: &Runtime,
    eval: &EvalDir,
    slot: Slot,
    cwd: &Path,
    output: &Path,
) -> anyhow::Result<ManifestEval> {
    let eval_dir = cwd.join(&eval.path);
    evals_pipeline::Requirements::read(
        &eval_dir.join(evals_pipeline::discover::REQUIREMENTS_FILE),
    )?;
    let target = output.join(eval.generated_path());
    let (files, snapshot) = match runtime.settings.model {
        ModelRef::Noop => (reference_files(&eval_dir)?, None),
        _ => {
            let task = std::fs::read_to_string(eval_dir.join("prompt.md"))
                .with_context(|| format!("cannot read `{}/prompt.md`", eval.eval_path()))?;
            let inputs = input_files(&eval_dir)?;
            let spec = CallSpec {
                label: "solver",
                eval_id: eval.id.clone(),
                worker: (slot.worker, slot.workers),
                call_number: slot.call_number,
                prompt: solver_prompt(&task, &inputs),
                workspace_files: inputs,
                system: Some(DEFAULT_SOLVER_SYSTEM.to_owned()),
                schema: solver_schema(),
            };
            let output = call(runtime, &spec, SolverOutput::validate).await?;
            (output.answer.files, Some(output.snapshot))
        }
    };
    let output_files = write_files(&target, &files)?;
    let snapshot_path = target.join(SOLVER_SNAPSHOT);
    write_json_atomic(&snapshot_path, &snapshot.unwrap_or(Value::Null))?;
    Ok(ManifestEval {
        eval_id: eval.id.clone(),
        eval_path: eval.eval_path(),
        output_files,
        generated_path: eval.generated_path(),
        solver_session_artifact_path: evals_pipeline::discover::posix(crate::call::relative_to(
            &snapshot_path,
            cwd,
        )),
    })
}

/// `noop`'s answer: the eval's reference solution.
fn reference_files(eval_dir: &Path) -> anyhow::Result<Vec<evals_pipeline::prompt::PromptFile>> {
    let staged = tempfile::tempdir()?;
    let app = staged.path().join("app");
    copy_tree(&eval_dir.join("reference"), &app)?;
    Ok(input_files(staged.path())?)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let target: PathBuf = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}
