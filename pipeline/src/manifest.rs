//! `manifest.json`: what a solver run produced, written by `run` and read by `judge` and any
//! other tool. Exactly these fields, in this shape.

use serde::{Deserialize, Serialize};

/// The manifest of one solver run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The run's start time, with `:` and `.` replaced by `-`.
    pub run_id: String,
    /// When the run started, ISO-8601.
    pub started_at: String,
    /// When it finished, ISO-8601.
    pub finished_at: String,
    /// The solver model.
    pub solver_model: String,
    /// The discovery pattern.
    pub pattern: String,
    /// How many evals were discovered.
    pub eval_count: usize,
    /// How many were attempted.
    pub evals_processed: usize,
    /// How many failed.
    pub evals_errored: usize,
    /// The evals that succeeded, in eval order.
    pub evals: Vec<ManifestEval>,
}

/// One successful eval of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEval {
    /// The eval's id.
    pub eval_id: String,
    /// The eval folder, relative to the start directory.
    pub eval_path: String,
    /// The generated files, relative to the eval's output folder.
    pub output_files: Vec<String>,
    /// The eval's output folder, relative to the run's output.
    pub generated_path: String,
    /// The session snapshot, relative to the start directory.
    pub solver_session_artifact_path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_manifest_reads_and_writes_back_unchanged() {
        let text = r#"{"runId":"r","startedAt":"a","finishedAt":"b","solverModel":"m","pattern":"p",
            "evalCount":1,"evalsProcessed":1,"evalsErrored":0,"evals":[{"evalId":"e",
            "evalPath":"evals/c/e","outputFiles":["App.tsx"],"generatedPath":"c/e",
            "solverSessionArtifactPath":"g/c/e/opencode-session.solver.json"}]}"#;
        let manifest: Manifest = serde_json::from_str(text).unwrap();
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&manifest).unwrap(), original);
    }

    #[test]
    fn a_manifest_missing_a_field_is_refused() {
        let err = serde_json::from_str::<Manifest>(r#"{"runId":"r","evals":[]}"#).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
    }
}
