//! `evals-runner judge`: grade a solver run's files against each eval's requirements, write one
//! result per eval and the summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use evals_pipeline::Requirements;
use evals_pipeline::discover::relative_posix;
use evals_pipeline::files::{sanitize_name, sanitize_path, write_json_atomic};
use evals_pipeline::judge::{
    GradedRequirement, JUDGE_SYSTEM, JudgeOutput, Score, grade, judge_prompt, judge_schema, round4,
};
use evals_pipeline::manifest::{Manifest, ManifestEval};
use evals_pipeline::prompt::PromptFile;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::{CallSpec, Runtime, call};
use crate::error::{EXIT_EVALS_ERRORED, EXIT_OK, UserError};
use crate::pool::{self, PoolOptions, Slot};
use crate::progress;
use crate::solve::{RunClock, iso};

/// The suffix of a judge session snapshot beside its result.
const JUDGE_SNAPSHOT_SUFFIX: &str = ".opencode-session.judge.json";

/// One eval's judge result file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeResult {
    eval_id: String,
    eval_path: String,
    judge_model: String,
    solver_model: String,
    llm_judge_requirements: Vec<GradedRequirement>,
    score: Score,
    output_files: Vec<String>,
    judge_session_artifact_path: String,
}

/// `summary.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    run_id: String,
    started_at: String,
    finished_at: String,
    judge_model: String,
    solver_model: String,
    pattern: String,
    input_generated_artifacts: String,
    eval_count: usize,
    evals_processed: usize,
    evals_errored: usize,
    requirements_total: usize,
    requirements_passed: usize,
    #[serde(serialize_with = "evals_pipeline::judge::number")]
    weighted_average_score: f64,
}

/// Which evals this judge run grades.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only evals that have no result yet.
    pub missing_only: bool,
    /// Only the eval of this `requirements.yaml`.
    pub requirements_file: Option<PathBuf>,
    /// With `requirements_file`, only this requirement.
    pub requirement_id: Option<String>,
}

/// Reads and checks `<input>/manifest.json`.
pub fn read_manifest(input: &Path) -> anyhow::Result<Manifest> {
    let path = input.join("manifest.json");
    let hint = "pass `--input` the output folder of an `evals-runner run`";
    let text = std::fs::read_to_string(&path).map_err(|err| {
        UserError::new(
            format_args!("cannot read `{}`: {err}", path.display()),
            hint,
        )
    })?;
    serde_json::from_str(&text).map_err(|err| {
        UserError::new(
            format_args!("`{}` is not a valid manifest: {err}", path.display()),
            hint,
        )
        .into()
    })
}

/// What one judge run needs besides the runtime.
pub struct JudgeJob {
    /// The solver's output folder.
    pub input: PathBuf,
    /// Where results go.
    pub output: PathBuf,
    /// The start directory.
    pub cwd: PathBuf,
    /// The manifest read from `input`.
    pub manifest: Manifest,
    /// Which evals to grade.
    pub selection: Selection,
    /// Keep prompts and raw answers under `debug/`.
    pub debug: bool,
}

/// Judges the selected evals and rebuilds the summary, returning the exit code.
pub async fn judge(runtime: Arc<Runtime>, job: JudgeJob, clock: &RunClock) -> anyhow::Result<u8> {
    let job = Arc::new(job);
    let selected = select(&job)?;
    let settings = &runtime.settings;
    let options = PoolOptions {
        concurrency: settings.concurrency,
        attempts: settings.max_retries.max(1) as usize,
        fail_fast: settings.fail_fast,
    };
    let worker_job = {
        let (runtime, job) = (runtime.clone(), job.clone());
        move |eval: Arc<ManifestEval>, slot: Slot| {
            let (runtime, job) = (runtime.clone(), job.clone());
            async move { judge_one(&runtime, &job, &eval, slot).await }
        }
    };
    let ids: Vec<String> = selected.iter().map(|eval| eval.eval_id.clone()).collect();
    let results = pool::run(
        selected,
        options,
        worker_job,
        runtime.progress.clone(),
        |eval: &ManifestEval| eval.eval_id.as_str(),
    )
    .await;
    let errored: Vec<&str> = results
        .iter()
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(index, _)| ids[*index].as_str())
        .collect();
    let summary = summarize(&runtime, &job, clock, &errored)?;
    runtime.progress.finish();
    progress::table(&[
        ("evals", summary.eval_count.to_string()),
        ("errored", summary.evals_errored.to_string()),
        (
            "requirements passed",
            format!(
                "{} of {}",
                summary.requirements_passed, summary.requirements_total
            ),
        ),
        (
            "mean score",
            format!("{:.4}", summary.weighted_average_score),
        ),
        ("results", progress::shown(&job.output, &job.cwd)),
    ]);
    Ok(if errored.is_empty() {
        EXIT_OK
    } else {
        EXIT_EVALS_ERRORED
    })
}

/// The manifest's evals that this run grades.
fn select(job: &JudgeJob) -> anyhow::Result<Vec<ManifestEval>> {
    let evals = job.manifest.evals.iter().cloned();
    if let Some(file) = &job.selection.requirements_file {
        let folder = file
            .parent()
            .map(|dir| relative_posix(dir, &job.cwd))
            .unwrap_or_default();
        let chosen: Vec<_> = evals.filter(|eval| eval.eval_path == folder).collect();
        if chosen.is_empty() {
            return Err(UserError::new(
                format_args!("no eval of the manifest lives in `{folder}`"),
                "pass the `requirements.yaml` of an eval listed in the input's manifest.json",
            )
            .into());
        }
        return Ok(chosen);
    }
    if job.selection.missing_only {
        return Ok(evals
            .filter(|eval| !result_path(&job.output, eval).exists())
            .collect());
    }
    Ok(evals.collect())
}

/// `<output>/evals/<parent of generatedPath>/<evalId>.json`.
fn result_path(output: &Path, eval: &ManifestEval) -> PathBuf {
    let parent = Path::new(&eval.generated_path)
        .parent()
        .unwrap_or(Path::new(""));
    output
        .join("evals")
        .join(parent)
        .join(format!("{}.json", sanitize_name(&eval.eval_id)))
}

async fn judge_one(
    runtime: &Runtime,
    job: &JudgeJob,
    eval: &ManifestEval,
    slot: Slot,
) -> anyhow::Result<()> {
    let requirements_path = job
        .cwd
        .join(&eval.eval_path)
        .join(evals_pipeline::discover::REQUIREMENTS_FILE);
    let requirements = Requirements::read(&requirements_path)?.requirements;
    let files = generated_files(&job.input, eval)?;
    let graded_now: Vec<_> = match &job.selection.requirement_id {
        Some(id) => requirements
            .iter()
            .filter(|r| &r.id == id)
            .cloned()
            .collect(),
        None => requirements.clone(),
    };
    if graded_now.is_empty() {
        anyhow::bail!(
            "`{}` has no requirement `{}`",
            requirements_path.display(),
            job.selection.requirement_id.as_deref().unwrap_or("")
        );
    }
    let prompt = judge_prompt(&graded_now, &files);
    let mut workspace_files = files.clone();
    workspace_files.push(PromptFile {
        path: evals_pipeline::discover::REQUIREMENTS_FILE.into(),
        content: std::fs::read_to_string(&requirements_path)?,
    });
    let spec = CallSpec {
        label: "judge",
        eval_id: eval.eval_id.clone(),
        worker: (slot.worker, slot.workers),
        call_number: slot.call_number,
        workspace_files,
        prompt: prompt.clone(),
        system: Some(JUDGE_SYSTEM.to_owned()),
        schema: judge_schema(),
    };
    let outcome = call(runtime, &spec, JudgeOutput::validate).await;
    if job.debug {
        write_debug(
            job,
            eval,
            &prompt,
            outcome.as_ref().ok().map(|output| &output.raw),
        )?;
    }
    let output = outcome?;
    let rows = merge_rows(job, eval, &requirements, output.answer.requirements)?;
    let (graded, score) = grade(&requirements, &rows);
    write_result(runtime, job, eval, &graded, score, &output.snapshot)
}

/// The rows to grade with: the new ones, and, when one requirement was re-judged, the other
/// rows of the result already on disk.
fn merge_rows(
    job: &JudgeJob,
    eval: &ManifestEval,
    requirements: &[evals_pipeline::Requirement],
    fresh: Vec<evals_pipeline::judge::JudgeRow>,
) -> anyhow::Result<Vec<evals_pipeline::judge::JudgeRow>> {
    let Some(id) = &job.selection.requirement_id else {
        return Ok(fresh);
    };
    let mut rows: Vec<_> = fresh.into_iter().filter(|row| &row.id == id).collect();
    if let Ok(text) = std::fs::read_to_string(result_path(&job.output, eval)) {
        let previous: JudgeResult =
            serde_json::from_str(&text).context("the existing result is not valid")?;
        let kept = previous.llm_judge_requirements.into_iter().filter(|old| {
            &old.id != id
                && requirements
                    .iter()
                    .any(|requirement| requirement.id == old.id)
        });
        rows.extend(kept.map(|old| evals_pipeline::judge::JudgeRow {
            id: old.id,
            passed: old.passed,
            reason: old.reason,
            evidence: old.evidence,
            confidence: old.confidence,
        }));
    }
    Ok(rows)
}

/// The files the solver generated for `eval`, read from the input folder.
fn generated_files(input: &Path, eval: &ManifestEval) -> anyhow::Result<Vec<PromptFile>> {
    let folder = input.join(sanitize_path(&eval.generated_path).unwrap_or_default());
    eval.output_files
        .iter()
        .filter_map(|file| sanitize_path(file).map(|path| (file, path)))
        .map(|(file, path)| {
            let content = std::fs::read_to_string(folder.join(&path)).with_context(|| {
                format!(
                    "cannot read generated file `{}`",
                    folder.join(&path).display()
                )
            })?;
            Ok(PromptFile {
                path: file.clone(),
                content,
            })
        })
        .collect()
}

fn write_result(
    runtime: &Runtime,
    job: &JudgeJob,
    eval: &ManifestEval,
    graded: &[GradedRequirement],
    score: Score,
    snapshot: &Value,
) -> anyhow::Result<()> {
    let path = result_path(&job.output, eval);
    let snapshot_path = path.with_file_name(format!(
        "{}{JUDGE_SNAPSHOT_SUFFIX}",
        sanitize_name(&eval.eval_id)
    ));
    write_json_atomic(&snapshot_path, snapshot)?;
    let result = JudgeResult {
        eval_id: eval.eval_id.clone(),
        eval_path: eval.eval_path.clone(),
        judge_model: runtime.settings.model.to_string(),
        solver_model: job.manifest.solver_model.clone(),
        llm_judge_requirements: graded.to_vec(),
        score,
        output_files: eval.output_files.clone(),
        judge_session_artifact_path: relative_posix(&snapshot_path, &job.output),
    };
    write_json_atomic(&path, &result)?;
    Ok(())
}

fn write_debug(
    job: &JudgeJob,
    eval: &ManifestEval,
    prompt: &str,
    raw: Option<&Value>,
) -> anyhow::Result<()> {
    let dir = job.output.join("debug");
    std::fs::create_dir_all(&dir)?;
    let name = sanitize_name(&eval.eval_id);
    std::fs::write(dir.join(format!("{name}.prompt.txt")), prompt)?;
    if let Some(raw) = raw {
        write_json_atomic(&dir.join(format!("{name}.output.json")), raw)?;
    }
    Ok(())
}

/// Rebuilds `summary.json` from the results on disk, leaving out the evals that errored in this
/// run, and keeps any earlier summary as a backup.
fn summarize(
    runtime: &Runtime,
    job: &JudgeJob,
    clock: &RunClock,
    errored: &[&str],
) -> anyhow::Result<Summary> {
    let results: Vec<JudgeResult> = job
        .manifest
        .evals
        .iter()
        .filter(|eval| !errored.contains(&eval.eval_id.as_str()))
        .filter_map(|eval| std::fs::read_to_string(result_path(&job.output, eval)).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect();
    let passed = |row: &&GradedRequirement| row.passed;
    let ratios: Vec<f64> = results.iter().map(|result| result.score.ratio).collect();
    let summary = Summary {
        run_id: clock.run_id(),
        started_at: iso(clock.started),
        finished_at: iso(SystemTime::now()),
        judge_model: runtime.settings.model.to_string(),
        solver_model: job.manifest.solver_model.clone(),
        pattern: job.manifest.pattern.clone(),
        input_generated_artifacts: relative_posix(&job.input, &job.cwd),
        eval_count: job.manifest.evals.len(),
        evals_processed: results.len() + errored.len(),
        evals_errored: errored.len(),
        requirements_total: results.iter().map(|r| r.llm_judge_requirements.len()).sum(),
        requirements_passed: results
            .iter()
            .map(|r| r.llm_judge_requirements.iter().filter(passed).count())
            .sum(),
        weighted_average_score: if ratios.is_empty() {
            0.0
        } else {
            round4(ratios.iter().sum::<f64>() / ratios.len() as f64)
        },
    };
    let path = job.output.join("summary.json");
    if path.exists() {
        let stamp = iso(SystemTime::now()).replace([':', '.'], "-");
        std::fs::rename(
            &path,
            job.output.join(format!("summary.backup.{stamp}.json")),
        )
        .context("cannot keep the earlier summary.json as a backup")?;
    }
    write_json_atomic(&path, &summary)?;
    Ok(summary)
}
