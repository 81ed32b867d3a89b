//! `evals-runner run`: solve every eval, write the generated files, snapshots and the manifest.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use evals_pipeline::EvalDir;
use evals_pipeline::files::{
    input_files, read_files, relative_files, write_files, write_json_atomic,
};
use evals_pipeline::manifest::{Manifest, ManifestEval};
use evals_pipeline::prompt::{DEFAULT_SOLVER_SYSTEM, SolverOutput, solver_prompt, solver_schema};
use serde_json::json;

use crate::call::{CallSpec, Runtime, call};
use crate::error::{EXIT_EVALS_ERRORED, EXIT_OK};
use crate::pool::{self, PoolOptions, Slot};
use crate::progress;
use crate::settings::ModelRef;

/// The session snapshot's name beside the generated files.
pub const SOLVER_SNAPSHOT: &str = "opencode-session.solver.json";

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

/// Solves `evals` into `output`, returning the exit code.
pub async fn solve(
    runtime: Arc<Runtime>,
    evals: Vec<EvalDir>,
    cwd: &Path,
    output: &Path,
    clock: &RunClock,
    resume: bool,
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
    let mut results = BTreeMap::new();
    let (mut todo, mut todo_index) = (Vec::new(), Vec::new());
    for (index, eval) in evals.into_iter().enumerate() {
        match resume.then(|| finished_entry(&eval, cwd, output)).flatten() {
            Some(entry) => {
                runtime.progress.line(&format!(
                    "[opencode-docker] skipped {} (already done)",
                    eval.id
                ));
                results.insert(index, Ok(entry));
            }
            None => {
                todo_index.push(index);
                todo.push(eval);
            }
        }
    }
    let name: fn(&EvalDir) -> &str = |eval| &eval.id;
    let ran = pool::run(todo, options, job, runtime.progress.clone(), name).await;
    runtime.progress.finish();
    results.extend(
        ran.into_iter()
            .map(|(index, outcome)| (todo_index[index], outcome)),
    );

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
            .into_values()
            .filter_map(|outcome| outcome.ok())
            .collect(),
    };
    write_json_atomic(&output.join("manifest.json"), &manifest)?;
    progress::table(&[
        ("evals", eval_count.to_string()),
        ("errored", errored.to_string()),
        ("results", progress::shown(output, cwd)),
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
    // `noop` has no session; its snapshot says so in the same shape.
    let snapshot = snapshot.unwrap_or_else(|| json!({"session": null, "messages": [], "diff": []}));
    write_json_atomic(&snapshot_path, &snapshot)?;
    Ok(ManifestEval {
        eval_id: eval.id.clone(),
        eval_path: eval.eval_path(),
        output_files,
        generated_path: eval.generated_path(),
        solver_session_artifact_path: evals_pipeline::discover::relative_posix(&snapshot_path, cwd),
    })
}

/// The manifest entry of an eval an earlier run finished in `output`: its session snapshot, the
/// last file a finished eval writes, is there.
fn finished_entry(eval: &EvalDir, cwd: &Path, output: &Path) -> Option<ManifestEval> {
    let folder = output.join(eval.generated_path());
    let snapshot = folder.join(SOLVER_SNAPSHOT);
    if !snapshot.is_file() {
        return None;
    }
    let output_files: Vec<String> = relative_files(&folder)
        .ok()?
        .into_iter()
        .filter(|path| path != SOLVER_SNAPSHOT)
        .collect();
    Some(ManifestEval {
        eval_id: eval.id.clone(),
        eval_path: eval.eval_path(),
        output_files,
        generated_path: eval.generated_path(),
        solver_session_artifact_path: evals_pipeline::discover::relative_posix(&snapshot, cwd),
    })
}

/// `noop`'s answer: the eval's reference solution.
fn reference_files(eval_dir: &Path) -> anyhow::Result<Vec<evals_pipeline::prompt::PromptFile>> {
    Ok(read_files(&eval_dir.join("reference"))?)
}
