//! Scripted scenarios: the script format, its loading and checking, and the per-session turn
//! counters that decide which turn answers a request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::reply::{Answer, Reply, ToolCall};

/// A scripted scenario: a list of replies, played one per chat request.
///
/// As JSON, a script is an array; each element is one turn, exactly one of:
///
/// ```json
/// [
///   {"text": "Plain assistant text; finishes with `stop`."},
///   {"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
///   {"error": {"status": 503, "message": "upstream busy"}}
/// ]
/// ```
///
/// `arguments` is any JSON value, sent as its JSON text; a JSON string is sent as it is, so a
/// script can also send arguments that are not valid JSON. `message` is optional. An error's
/// `status` must lie in 400..=599.
///
/// A server answers the model id `script:<name>` from the script registered as `name`. Turn N
/// answers the Nth chat request of one OpenCode session (the `x-session-id` header; requests
/// without it share one sequence); title requests get the fixed title and use no turn. Once
/// the turns run out, every further request gets HTTP 400 saying so, which OpenCode does not
/// retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Script {
    turns: Vec<Turn>,
}

/// One reply of a script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Turn {
    /// Assistant text.
    Text(String),
    /// One or more tool calls, in one assistant message.
    ToolCalls(Vec<ScriptedToolCall>),
    /// An HTTP error with an OpenAI-style error body.
    Error(ScriptedError),
}

/// A tool call of a [`Turn::ToolCalls`] turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    /// The tool's name, e.g. `bash` or `StructuredOutput`.
    pub name: String,
    /// The arguments; a string is sent verbatim, anything else as its JSON text.
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

/// The HTTP error of a [`Turn::Error`] turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedError {
    /// The status, in 400..=599.
    pub status: u16,
    /// The error message; a default one names the status.
    #[serde(default)]
    pub message: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Script {
    /// A script of these turns; fails when an error turn's status is not an HTTP error status.
    pub fn new(turns: Vec<Turn>) -> Result<Self, Error> {
        Script { turns }.validated("inline")
    }

    /// A script from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        Self::parse(text, "inline")
    }

    /// A script from a JSON file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadScript {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The turns, in order.
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let script: Script = serde_json::from_str(text).map_err(|source| Error::ParseScript {
            origin: origin.to_owned(),
            source,
        })?;
        script.validated(origin)
    }

    fn validated(self, origin: &str) -> Result<Self, Error> {
        let bad = self.turns.iter().position(|turn| match turn {
            Turn::Error(error) => !(400..=599).contains(&error.status),
            _ => false,
        });
        match bad {
            None => Ok(self),
            Some(index) => Err(Error::InvalidScript {
                origin: origin.to_owned(),
                reason: format!("turn `{}` has a status outside 400..=599", index + 1),
            }),
        }
    }

    /// The reply for the turn at `index` (0-based) of the script called `name`.
    pub(crate) fn reply(&self, name: &str, index: usize) -> Reply {
        match self.turns.get(index) {
            Some(turn) => turn.reply(),
            None => Reply::http_error(
                400,
                format!(
                    "mock script `{name}` has {} turn(s), no turn {}",
                    self.turns.len(),
                    index + 1
                ),
            ),
        }
    }
}

impl Turn {
    fn reply(&self) -> Reply {
        match self {
            Turn::Text(text) => Reply::text(text.clone()),
            Turn::ToolCalls(calls) => Reply::Answer(Answer::ToolCalls(
                calls.iter().map(ScriptedToolCall::to_call).collect(),
            )),
            Turn::Error(ScriptedError { status, message }) => {
                let message = message.clone();
                let message = message.unwrap_or_else(|| format!("mock scripted error {status}"));
                Reply::http_error(*status, message)
            }
        }
    }
}

impl ScriptedToolCall {
    fn to_call(&self) -> ToolCall {
        let arguments = match &self.arguments {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        ToolCall {
            name: self.name.clone(),
            arguments,
        }
    }
}

/// The next turn index of each (script, session) pair.
#[derive(Debug, Default)]
pub(crate) struct TurnCounter {
    next: Mutex<HashMap<(String, Option<String>), usize>>,
}

impl TurnCounter {
    /// The 0-based turn that the current request of `session` plays in `script`.
    pub(crate) fn advance(&self, script: &str, session: Option<&str>) -> usize {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = next
            .entry((script.to_owned(), session.map(str::to_owned)))
            .or_default();
        *slot += 1;
        *slot - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_format_parses() {
        let script = Script::from_json(
            r#"[
                {"text": "hi"},
                {"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}},
                                {"name": "glob", "arguments": "{not json"}]},
                {"error": {"status": 503}}
            ]"#,
        )
        .unwrap();
        assert_eq!(script.reply("s", 0), Reply::text("hi"));
        let Reply::Answer(Answer::ToolCalls(calls)) = script.reply("s", 1) else {
            panic!()
        };
        assert_eq!(calls[0].arguments, r#"{"command":"ls"}"#);
        assert_eq!(calls[1].arguments, "{not json");
        assert_eq!(
            script.reply("s", 2),
            Reply::http_error(503, "mock scripted error 503")
        );
        assert_eq!(
            script.reply("s", 3),
            Reply::http_error(400, "mock script `s` has 3 turn(s), no turn 4")
        );
    }

    #[test]
    fn unknown_shapes_and_bad_statuses_are_rejected() {
        let unknown = Script::from_json(r#"[{"speak": "hi"}]"#).unwrap_err();
        assert!(matches!(unknown, Error::ParseScript { .. }), "{unknown:?}");
        let status = Script::from_json(r#"[{"text": "ok"}, {"error": {"status": 200}}]"#);
        let message = status.unwrap_err().to_string();
        assert_eq!(
            message,
            "the script `inline` is not valid: turn `2` has a status outside 400..=599"
        );
    }

    #[test]
    fn counters_are_kept_per_script_and_session() {
        let counter = TurnCounter::default();
        assert_eq!(counter.advance("a", Some("ses_1")), 0);
        assert_eq!(counter.advance("a", Some("ses_1")), 1);
        assert_eq!(counter.advance("a", Some("ses_2")), 0);
        assert_eq!(counter.advance("b", Some("ses_1")), 0);
        assert_eq!(counter.advance("a", None), 0);
    }
}
