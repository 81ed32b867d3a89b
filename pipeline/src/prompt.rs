//! The prompts of the solver and judge calls, and the shapes their answers must have.

use serde::Deserialize;
use serde_json::{Value, json};

/// One input file of a prompt: a POSIX path relative to the eval's `app/` and its text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PromptFile {
    /// The path, relative and with `/` separators.
    pub path: String,
    /// The file's contents.
    pub content: String,
}

/// The solver's answer: a summary and at least one file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SolverOutput {
    /// What the model says it did.
    pub summary: String,
    /// The files it wrote.
    pub files: Vec<PromptFile>,
}

/// The system prompt of a solver call when none is given.
pub const DEFAULT_SOLVER_SYSTEM: &str = "You are an expert software engineer. Solve the task \
    by editing the given files; return every file you changed or created, whole.";

/// The system prompt of the `json-fallback` phase.
pub const JSON_FALLBACK_SYSTEM: &str = "Answer with one JSON object only, in a ```json fenced \
    code block, matching the schema you are given. No tool calls, no other text.";

/// The JSON schema of [`SolverOutput`].
pub fn solver_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "files": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                    "required": ["path", "content"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["summary", "files"],
        "additionalProperties": false
    })
}

/// The solver prompt: the task, then each input file in a `<files>` block.
pub fn solver_prompt(task: &str, files: &[PromptFile]) -> String {
    let mut prompt = task.trim_end().to_owned();
    prompt.push_str("\n\n");
    push_files(&mut prompt, files);
    prompt
}

/// The text of the fallback request for an answer of `schema`'s shape.
pub fn fallback_prompt(schema: &Value) -> String {
    format!(
        "Return your answer now as plain JSON in a ```json fenced block, an object matching \
         this JSON schema:\n{}",
        serde_json::to_string_pretty(schema).unwrap_or_default()
    )
}

/// Appends `<files>` with one `<file path="…">` element per file.
pub fn push_files(prompt: &mut String, files: &[PromptFile]) {
    prompt.push_str("<files>\n");
    for file in files {
        // Contents go between the tags exactly, so an answer that returns them unchanged
        // reproduces the file byte for byte.
        prompt.push_str(&format!(
            "<file path=\"{}\">{}</file>\n",
            file.path, file.content
        ));
    }
    prompt.push_str("</files>\n");
}

impl SolverOutput {
    /// Checks `value` against the solver schema.
    pub fn validate(value: &Value) -> Result<Self, String> {
        let output: SolverOutput = serde_json::from_value(value.clone())
            .map_err(|err| format!("does not match the solver schema: {err}"))?;
        if output.files.is_empty() {
            return Err("does not match the solver schema: `files` is empty".into());
        }
        Ok(output)
    }
}

/// The candidates for a JSON object in a model's text, in the order they are tried: each fenced
/// code block, the whole text, then the slice from the first `{` to the last `}`.
pub fn json_candidates(text: &str) -> Vec<&str> {
    let mut candidates = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(after.len(), |newline| newline + 1);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        candidates.push(after[body_start..body_start + end].trim());
        rest = &after[body_start + end + 3..];
    }
    candidates.push(text.trim());
    if let (Some(first), Some(last)) = (text.find('{'), text.rfind('}'))
        && first < last
    {
        candidates.push(&text[first..=last]);
    }
    candidates
}

/// The first candidate of `text` that parses and passes `validate`, or every reason none did.
pub fn extract_json<T>(
    text: &str,
    validate: impl Fn(&Value) -> Result<T, String>,
) -> Result<(T, Value), String> {
    let mut reasons = Vec::new();
    for candidate in json_candidates(text) {
        match serde_json::from_str::<Value>(candidate) {
            Ok(value) => match validate(&value) {
                Ok(output) => return Ok((output, value)),
                Err(reason) => reasons.push(reason),
            },
            Err(err) => reasons.push(format!("not JSON: {err}")),
        }
    }
    Err(format!(
        "no valid JSON object in the answer ({})",
        reasons.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solver_prompt_holds_the_task_then_the_files() {
        let files = [PromptFile {
            path: "lib/a.ts".into(),
            content: "export {}".into(),
        }];
        assert_eq!(
            solver_prompt("Do it.\n", &files),
            "Do it.\n\n<files>\n<file path=\"lib/a.ts\">export {}</file>\n</files>\n"
        );
    }

    #[test]
    fn candidates_come_fenced_first_then_whole_then_braces() {
        let text = "Here:\n```json\n{\"a\": 1}\n```\nand {\"b\": 2} done";
        assert_eq!(
            json_candidates(text),
            ["{\"a\": 1}", text.trim(), "{\"a\": 1}\n```\nand {\"b\": 2}"]
        );
    }

    #[test]
    fn extraction_takes_the_first_valid_candidate() {
        let answer = "```\nnot json\n```\n{\"summary\": \"s\", \"files\": [{\"path\": \"a\", \"content\": \"b\"}]}";
        let (output, _) = extract_json(answer, SolverOutput::validate).unwrap();
        assert_eq!(output.files[0].path, "a");
    }

    #[test]
    fn extraction_failure_gives_every_reason() {
        let err = extract_json(
            "{\"summary\": \"s\", \"files\": []}",
            SolverOutput::validate,
        )
        .unwrap_err();
        assert!(err.contains("`files` is empty"), "{err}");
        assert!(
            extract_json("no json at all", SolverOutput::validate)
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
