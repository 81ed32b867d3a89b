//! The answers the scenarios give: the solver object that returns the input files unchanged,
//! the judge object from a keyword check, and the fenced JSON text of the fallback path.

use serde_json::{Value, json};

use crate::prompt::{PromptFile, Requirement};

/// Confidence of a verdict that rests on names actually looked up.
const CHECKED_CONFIDENCE: f64 = 0.9;
/// Confidence of a verdict on a description with no names to look up.
const UNCHECKED_CONFIDENCE: f64 = 0.5;

/// The solver object `{summary, files: [{path, content}]}` returning `files` unchanged.
pub(crate) fn solver_answer(files: &[PromptFile]) -> Value {
    let rows: Vec<Value> = files
        .iter()
        .map(|f| json!({"path": f.path, "content": f.content}))
        .collect();
    json!({
        "summary": format!("Returned the {} input file(s) unchanged.", files.len()),
        "files": rows,
    })
}

/// The judge object `{summary, requirements: [{id, passed, reason, evidence, confidence}]}`,
/// one row per requirement, from a keyword check of `files`.
pub(crate) fn judge_answer(requirements: &[Requirement], files: &[PromptFile]) -> Value {
    let rows: Vec<Value> = requirements.iter().map(|r| judge_row(r, files)).collect();
    let passed = rows.iter().filter(|r| r["passed"] == true).count();
    json!({
        "summary": format!("{passed} of {} requirement(s) passed the keyword check.", rows.len()),
        "requirements": rows,
    })
}

/// `value` as a fenced `json` code block, the shape the runner's fallback extracts first.
pub(crate) fn fenced_json(value: &Value) -> String {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("Here is the result.\n\n```json\n{pretty}\n```\n")
}

/// A requirement passes when every backtick-quoted name of its description occurs in a
/// submitted file's content or path; one with no such names passes with low confidence.
fn judge_row(requirement: &Requirement, files: &[PromptFile]) -> Value {
    let names = backtick_names(&requirement.description);
    let (found, missing): (Vec<_>, Vec<_>) = names
        .iter()
        .map(|n| (n, find_name(files, n)))
        .partition(|(_, at)| at.is_some());

    let mut evidence: Vec<String> = found
        .iter()
        .map(|(n, at)| format!("`{n}` found in {}", at.unwrap_or_default()))
        .collect();
    evidence.extend(
        missing
            .iter()
            .map(|(n, _)| format!("`{n}` not found in any file")),
    );
    let found: Vec<&String> = found.into_iter().map(|(n, _)| n).collect();
    let missing: Vec<&String> = missing.into_iter().map(|(n, _)| n).collect();

    json!({
        "id": requirement.id,
        "passed": missing.is_empty(),
        "reason": reason(&found, &missing),
        "evidence": evidence,
        "confidence": if names.is_empty() { UNCHECKED_CONFIDENCE } else { CHECKED_CONFIDENCE },
    })
}

fn reason(found: &[&String], missing: &[&String]) -> String {
    match (found.is_empty(), missing.is_empty()) {
        (true, true) => "no backtick-quoted names to check".to_owned(),
        (false, true) => format!("found {}", quoted_list(found)),
        (true, false) => format!("missing {}", quoted_list(missing)),
        (false, false) => {
            format!(
                "missing {}; found {}",
                quoted_list(missing),
                quoted_list(found)
            )
        }
    }
}

fn quoted_list(names: &[&String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// The path of the first file whose content or path contains `name`.
fn find_name<'a>(files: &'a [PromptFile], name: &str) -> Option<&'a str> {
    let hit = files
        .iter()
        .find(|f| f.content.contains(name) || f.path.contains(name));
    hit.map(|f| f.path.as_str())
}

/// The backtick-quoted names of a description, in order, without duplicates. A trailing
/// `(...)` or `()` is dropped, since descriptions quote a call like `createThing(...)` but the
/// code holds `createThing(options)`.
pub(crate) fn backtick_names(description: &str) -> Vec<String> {
    let parts: Vec<&str> = description.split('`').collect();
    // The part after the last backtick is never quoted: an odd tick opens nothing.
    let closed = &parts[..parts.len().saturating_sub(1)];
    let mut names: Vec<String> = Vec::new();
    for raw in closed.iter().skip(1).step_by(2) {
        let name = raw
            .trim()
            .trim_end_matches("(...)")
            .trim_end_matches("()")
            .trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> PromptFile {
        PromptFile {
            path: path.into(),
            content: content.into(),
        }
    }

    fn requirement(id: &str, description: &str) -> Requirement {
        Requirement {
            id: id.into(),
            weight: None,
            description: description.into(),
        }
    }

    #[test]
    fn backtick_names_drop_call_suffixes_and_duplicates() {
        let names =
            backtick_names("Use `createStaticNavigation(...)`, `useNavigation()` and `x`, `x`.");
        assert_eq!(names, ["createStaticNavigation", "useNavigation", "x"]);
        assert!(backtick_names("Plain prose, an unmatched ` tick.").is_empty());
    }

    #[test]
    fn judge_rows_pass_only_when_every_name_is_found() {
        let files = [file("App.tsx", "import { FlatList } from 'react-native';")];
        let requirements = [
            requirement("list", "Render through `FlatList`."),
            requirement("layout", "Provide `getItemLayout` on `FlatList`."),
            requirement("prose", "Be nice."),
        ];
        let answer = judge_answer(&requirements, &files);
        insta::assert_json_snapshot!(answer, @r#"
        {
          "requirements": [
            {
              "confidence": 0.9,
              "evidence": [
                "`FlatList` found in App.tsx"
              ],
              "id": "list",
              "passed": true,
              "reason": "found `FlatList`"
            },
            {
              "confidence": 0.9,
              "evidence": [
                "`FlatList` found in App.tsx",
                "`getItemLayout` not found in any file"
              ],
              "id": "layout",
              "passed": false,
              "reason": "missing `getItemLayout`; found `FlatList`"
            },
            {
              "confidence": 0.5,
              "evidence": [],
              "id": "prose",
              "passed": true,
              "reason": "no backtick-quoted names to check"
            }
          ],
          "summary": "2 of 3 requirement(s) passed the keyword check."
        }
        "#);
    }

    #[test]
    fn solver_answer_returns_the_files_unchanged() {
        let answer = solver_answer(&[file("a/b.txt", "x\n")]);
        assert_eq!(
            answer["files"],
            json!([{"path": "a/b.txt", "content": "x\n"}])
        );
        assert_eq!(answer["summary"], "Returned the 1 input file(s) unchanged.");
    }

    #[test]
    fn fenced_json_holds_the_value_in_a_json_block() {
        let text = fenced_json(&json!({"a": 1}));
        let inner = text
            .split("```json\n")
            .nth(1)
            .unwrap()
            .split("\n```")
            .next()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(inner).unwrap(),
            json!({"a": 1})
        );
    }
}
