//! The judge's prompt and answer, and the score of one eval.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};

use crate::prompt::{PromptFile, push_files};
use crate::requirements::Requirement;

/// The reason recorded for a requirement the judge gave no row for.
pub const MISSING_ROW_REASON: &str = "judge did not return a result for this requirement";

/// One row of the judge's answer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct JudgeRow {
    /// The requirement id.
    pub id: String,
    /// Whether the submitted files meet it.
    pub passed: bool,
    /// Why.
    pub reason: String,
    /// Quotes from the files.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// How sure the judge is, from 0 to 1.
    #[serde(default)]
    pub confidence: Option<f64>,
}

/// The judge's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JudgeOutput {
    /// An overall remark.
    #[serde(default)]
    pub summary: Option<String>,
    /// One row per requirement.
    pub requirements: Vec<JudgeRow>,
}

impl JudgeOutput {
    /// Checks `value` against the judge schema.
    pub fn validate(value: &Value) -> Result<Self, String> {
        let output: JudgeOutput = serde_json::from_value(value.clone())
            .map_err(|err| format!("does not match the judge schema: {err}"))?;
        let out_of_range = output
            .requirements
            .iter()
            .find(|row| row.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)));
        if let Some(row) = out_of_range {
            return Err(format!(
                "does not match the judge schema: confidence of `{}` is outside 0..1",
                row.id
            ));
        }
        Ok(output)
    }
}

/// The JSON schema of [`JudgeOutput`].
pub fn judge_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "requirements": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "passed": {"type": "boolean"},
                        "reason": {"type": "string"},
                        "evidence": {"type": "array", "items": {"type": "string"}},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1}
                    },
                    "required": ["id", "passed", "reason", "evidence"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["requirements"],
        "additionalProperties": false
    })
}

/// The judge's system prompt.
pub const JUDGE_SYSTEM: &str = "You are a strict code reviewer grading submitted files against \
    requirements. Read the files; do not run or change anything.";

/// The judge prompt: the rules, the requirements, then the submitted files.
pub fn judge_prompt(requirements: &[Requirement], files: &[PromptFile]) -> String {
    let mut prompt = String::from(
        "Judge the submitted files against each requirement below.\n\
         Rules:\n\
         - Judge only from the submitted files; nothing else exists.\n\
         - Return exactly one result per requirement id, using the ids given.\n\
         - Set passed=false when the evidence is missing or unclear.\n\
         - Quote the lines that decide it as evidence.\n\n<requirements>\n",
    );
    for requirement in requirements {
        prompt.push_str(&format!(
            "<requirement><id>{}</id><weight>{}</weight><description>{}</description></requirement>\n",
            requirement.id,
            whole(requirement.weight),
            requirement.description
        ));
    }
    prompt.push_str("</requirements>\n\n");
    push_files(&mut prompt, files);
    prompt
}

/// One requirement as graded, in the per-eval result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedRequirement {
    /// The requirement id.
    pub id: String,
    /// Its description.
    pub description: String,
    /// Its weight.
    #[serde(serialize_with = "number")]
    pub weight: f64,
    /// Whether it passed.
    pub passed: bool,
    /// The judge's reason.
    pub reason: String,
    /// The judge's evidence.
    pub evidence: Vec<String>,
    /// The judge's confidence, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// The weighted score of one eval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// The weight of the requirements passed.
    #[serde(serialize_with = "number")]
    pub passed_weight: f64,
    /// The weight of all requirements.
    #[serde(serialize_with = "number")]
    pub total_weight: f64,
    /// `passed_weight / total_weight`, to 4 places.
    #[serde(serialize_with = "number")]
    pub ratio: f64,
}

/// Maps the judge's rows onto the declared requirements and scores them. A requirement without
/// a row fails with [`MISSING_ROW_REASON`]; rows for unknown ids are ignored.
pub fn grade(requirements: &[Requirement], rows: &[JudgeRow]) -> (Vec<GradedRequirement>, Score) {
    let graded: Vec<GradedRequirement> = requirements
        .iter()
        .map(|requirement| {
            let row = rows.iter().find(|row| row.id == requirement.id);
            GradedRequirement {
                id: requirement.id.clone(),
                description: requirement.description.clone(),
                weight: requirement.weight,
                passed: row.is_some_and(|row| row.passed),
                reason: row.map_or(MISSING_ROW_REASON.into(), |row| row.reason.clone()),
                evidence: row.map(|row| row.evidence.clone()).unwrap_or_default(),
                confidence: row.and_then(|row| row.confidence),
            }
        })
        .collect();
    let total_weight: f64 = graded.iter().map(|g| g.weight).sum();
    let passed_weight: f64 = graded.iter().filter(|g| g.passed).map(|g| g.weight).sum();
    let ratio = if total_weight > 0.0 {
        round4(passed_weight / total_weight)
    } else {
        0.0
    };
    (
        graded,
        Score {
            passed_weight,
            total_weight,
            ratio,
        },
    )
}

/// `value` rounded to 4 decimal places.
pub fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// A whole number written without a fraction, as the output files show weights and scores.
pub fn number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    whole(*value).serialize(serializer)
}

/// `value` as a JSON number: an integer when it is whole.
pub fn whole(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(id: &str, weight: f64) -> Requirement {
        Requirement {
            id: id.into(),
            description: format!("Must {id}."),
            weight,
        }
    }

    fn row(id: &str, passed: bool) -> JudgeRow {
        JudgeRow {
            id: id.into(),
            passed,
            reason: "r".into(),
            evidence: vec!["e".into()],
            confidence: Some(0.9),
        }
    }

    #[test]
    fn missing_rows_fail_and_unknown_rows_are_ignored() {
        let requirements = [requirement("a", 1.0), requirement("b", 2.0)];
        let (graded, score) = grade(&requirements, &[row("a", true), row("zzz", true)]);
        assert!(graded[0].passed);
        assert_eq!(
            (graded[1].passed, graded[1].reason.as_str()),
            (false, MISSING_ROW_REASON)
        );
        assert_eq!(
            score,
            Score {
                passed_weight: 1.0,
                total_weight: 3.0,
                ratio: 0.3333
            }
        );
    }

    #[test]
    fn results_serialize_like_the_output_files() {
        let (graded, score) = grade(&[requirement("a", 1.0)], &[]);
        assert_eq!(
            serde_json::to_value(&graded[0]).unwrap(),
            json!({"id": "a", "description": "Must a.", "weight": 1, "passed": false,
                   "reason": MISSING_ROW_REASON, "evidence": []})
        );
        assert_eq!(
            serde_json::to_value(score).unwrap(),
            json!({"passedWeight": 0, "totalWeight": 1, "ratio": 0})
        );
    }

    #[test]
    fn the_prompt_lists_each_requirement_then_the_files() {
        let files = [PromptFile {
            path: "a.ts".into(),
            content: "x".into(),
        }];
        let prompt = judge_prompt(&[requirement("uses-map", 2.5)], &files);
        assert!(prompt.contains("<requirement><id>uses-map</id><weight>2.5</weight><description>Must uses-map.</description></requirement>\n"));
        assert!(prompt.ends_with("<files>\n<file path=\"a.ts\">x</file>\n</files>\n"));
    }

    #[test]
    fn answers_are_validated() {
        assert!(JudgeOutput::validate(&json!({"requirements": [{"id": "a", "passed": true, "reason": "r", "evidence": []}]})).is_ok());
        let err = JudgeOutput::validate(
            &json!({"requirements": [{"id": "a", "passed": true, "reason": "r", "confidence": 3}]}),
        )
        .unwrap_err();
        assert!(err.contains("outside 0..1"), "{err}");
        assert!(JudgeOutput::validate(&json!({"rows": []})).is_err());
    }
}
