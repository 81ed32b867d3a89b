//! The parts of a message: text, reasoning, tool calls, step boundaries, files, patches.
//!
//! Decoding never fails on a part: a part whose `type` is unknown, or whose shape does not match
//! what OpenCode 1.18 sends, becomes [`Part::Unknown`] holding its JSON, so a newer server with
//! new part types does not make whole messages unreadable.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tracing::debug;

use crate::lenient;
use crate::message::Tokens;

/// One part of a message, by its `type`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Part {
    /// `text`: text the model wrote, or the prompt text of a user message.
    Text(TextPart),
    /// `reasoning`: the model's reasoning text.
    Reasoning(ReasoningPart),
    /// `tool`: a tool call and its state.
    Tool(ToolPart),
    /// `step-start`: the start of one model step.
    StepStart(StepStartPart),
    /// `step-finish`: the end of one model step, with its token counts.
    StepFinish(StepFinishPart),
    /// `file`: a file attached to the message.
    File(FilePart),
    /// `patch`: files a step changed.
    Patch(PatchPart),
    /// Any other part, or a known one whose shape did not match; kept as JSON.
    Unknown(UnknownPart),
}

/// The fields every part carries.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PartIds {
    /// The part id (`prt_...`); empty in the rare event frames that omit it.
    #[serde(default)]
    pub id: String,
    /// The session (`ses_...`).
    #[serde(default, rename = "sessionID")]
    pub session_id: String,
    /// The message the part belongs to (`msg_...`).
    #[serde(default, rename = "messageID")]
    pub message_id: String,
}

/// Start and end of a part, in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct PartTime {
    /// When the part started.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub start: Option<u64>,
    /// When the part ended; absent while it runs.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub end: Option<u64>,
}

/// A `text` part.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TextPart {
    /// Ids of the part.
    #[serde(flatten)]
    pub ids: PartIds,
    /// The text.
    #[serde(default)]
    pub text: String,
    /// Text OpenCode added itself rather than the model or the user.
    #[serde(default)]
    pub synthetic: bool,
    /// Text OpenCode leaves out of the model's context.
    #[serde(default)]
    pub ignored: bool,
    /// When the text was written.
    #[serde(default)]
    pub time: PartTime,
}

/// A `reasoning` part.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ReasoningPart {
    /// Ids of the part.
    #[serde(flatten)]
    pub ids: PartIds,
    /// The reasoning text.
    #[serde(default)]
    pub text: String,
    /// When the reasoning was written.
    #[serde(default)]
    pub time: PartTime,
}

/// A `tool` part: one tool call.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ToolPart {
    /// Ids of the part.
    #[serde(flatten)]
    pub ids: PartIds,
    /// The tool's name (`bash`, `write`, `StructuredOutput`, ...).
    #[serde(default)]
    pub tool: String,
    /// The model's id for the call.
    #[serde(default, rename = "callID")]
    pub call_id: String,
    /// Where the call stands.
    #[serde(default)]
    pub state: ToolState,
}

/// The state of a tool call. One flat shape for all statuses: fields a status does not have
/// are empty.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ToolState {
    /// Where the call stands.
    #[serde(default)]
    pub status: ToolStatus,
    /// The call's arguments.
    #[serde(default)]
    pub input: Value,
    /// What the tool returned (`completed` only).
    #[serde(default)]
    pub output: Option<String>,
    /// Why the tool failed (`error` only).
    #[serde(default)]
    pub error: Option<String>,
    /// A short title OpenCode shows for the call.
    #[serde(default)]
    pub title: Option<String>,
    /// Tool-specific details (exit code, truncation, ...).
    #[serde(default)]
    pub metadata: Value,
    /// When the call ran.
    #[serde(default)]
    pub time: PartTime,
}

/// The status of a tool call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ToolStatus {
    /// The model is still writing the call's arguments.
    Pending,
    /// The tool runs.
    Running,
    /// The tool finished.
    Completed,
    /// The tool failed.
    Error,
    /// A status this client does not know.
    #[default]
    #[serde(other)]
    Unknown,
}

/// A `step-start` part.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StepStartPart {
    /// Ids of the part.
    #[serde(flatten)]
    pub ids: PartIds,
}

/// A `step-finish` part.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StepFinishPart {
    /// Ids of the part.
    #[serde(flatten)]
    pub ids: PartIds,
    /// Why the step ended (`stop`, `tool-calls`, `length`, ...).
    #[serde(default)]
    pub reason: String,
    /// The step's cost.
    #[serde(default)]
    pub cost: f64,
    /// The step's token counts.
    #[serde(default)]
    pub tokens: Tokens,
}

/// A `file` part.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct FilePart {
    /// Ids of the part.
    #[serde(flatten)]
    pub ids: PartIds,
    /// The file's media type.
    #[serde(default)]
    pub mime: String,
    /// The file's name, when it has one.
    #[serde(default)]
    pub filename: Option<String>,
    /// Where the content is (often a `data:` or `file:` URL).
    #[serde(default)]
    pub url: String,
}

/// A `patch` part.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PatchPart {
    /// Ids of the part.
    #[serde(flatten)]
    pub ids: PartIds,
    /// The snapshot hash the patch leads to.
    #[serde(default)]
    pub hash: String,
    /// The files changed.
    #[serde(default)]
    pub files: Vec<String>,
}

/// A part this client does not decode, kept as the server sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownPart {
    /// Its `type` (empty when it has none).
    pub kind: String,
    /// The part's JSON.
    pub raw: Value,
}

impl Part {
    /// The part's id (`prt_...`), when it has one.
    pub fn id(&self) -> Option<&str> {
        let id = match self {
            Part::Text(p) => &p.ids.id,
            Part::Reasoning(p) => &p.ids.id,
            Part::Tool(p) => &p.ids.id,
            Part::StepStart(p) => &p.ids.id,
            Part::StepFinish(p) => &p.ids.id,
            Part::File(p) => &p.ids.id,
            Part::Patch(p) => &p.ids.id,
            Part::Unknown(p) => return p.raw.get("id").and_then(Value::as_str),
        };
        Some(id.as_str()).filter(|id| !id.is_empty())
    }

    /// Decodes one part from its JSON; never fails (see the module docs).
    pub fn from_json(raw: Value) -> Part {
        let kind = raw
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let decoded = match kind.as_str() {
            "text" => TextPart::deserialize(&raw).map(Part::Text),
            "reasoning" => ReasoningPart::deserialize(&raw).map(Part::Reasoning),
            "tool" => ToolPart::deserialize(&raw).map(Part::Tool),
            "step-start" => StepStartPart::deserialize(&raw).map(Part::StepStart),
            "step-finish" => StepFinishPart::deserialize(&raw).map(Part::StepFinish),
            "file" => FilePart::deserialize(&raw).map(Part::File),
            "patch" => PatchPart::deserialize(&raw).map(Part::Patch),
            _ => return Part::Unknown(UnknownPart { kind, raw }),
        };
        decoded.unwrap_or_else(|err| {
            debug!(%kind, %err, "part kept as json: a known type with an unexpected shape");
            Part::Unknown(UnknownPart { kind, raw })
        })
    }
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Part::from_json)
    }
}

/// The text of the `text` parts, in order, joined by newlines; parts OpenCode marks as
/// ignored are left out.
pub fn concat_text(parts: &[Part]) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) if !text.ignored => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_completed_tool_call_decodes_with_its_state() {
        let part = Part::from_json(json!({
            "id": "prt_1", "sessionID": "ses_1", "messageID": "msg_1", "type": "tool",
            "callID": "call_1", "tool": "bash",
            "state": {"status": "completed", "input": {"command": "ls"}, "output": "a.txt",
                      "title": "ls", "metadata": {"exit": 0}, "time": {"start": 1, "end": 2}}
        }));
        let Part::Tool(tool) = part else {
            panic!("not a tool part: {part:?}")
        };
        assert_eq!(tool.tool, "bash");
        assert_eq!(tool.state.status, ToolStatus::Completed);
        assert_eq!(tool.state.input["command"], "ls");
        assert_eq!(tool.state.output.as_deref(), Some("a.txt"));
        assert_eq!(
            tool.state.time,
            PartTime {
                start: Some(1),
                end: Some(2)
            }
        );
    }

    #[test]
    fn an_unknown_type_is_kept_as_json() {
        let raw = json!({"id": "prt_9", "type": "compaction", "auto": true});
        let part = Part::from_json(raw.clone());
        assert_eq!(
            part,
            Part::Unknown(UnknownPart {
                kind: "compaction".into(),
                raw
            })
        );
        assert_eq!(part.id(), Some("prt_9"));
    }

    #[test]
    fn a_known_type_with_a_foreign_shape_is_kept_as_json() {
        let raw = json!({"type": "text", "text": {"rich": true}});
        assert!(matches!(Part::from_json(raw), Part::Unknown(p) if p.kind == "text"));
    }

    #[test]
    fn unknown_fields_and_statuses_are_tolerated() {
        let part = Part::from_json(json!({
            "type": "tool", "tool": "x", "brandNew": 1, "state": {"status": "queued"}
        }));
        let Part::Tool(tool) = part else {
            panic!("not a tool part")
        };
        assert_eq!(tool.state.status, ToolStatus::Unknown);
        assert_eq!(Part::Tool(tool).id(), None);
    }

    #[test]
    fn text_is_joined_without_ignored_parts() {
        let parts: Vec<Part> = serde_json::from_value(json!([
            {"type": "step-start"},
            {"type": "text", "text": "first"},
            {"type": "text", "text": "hidden", "ignored": true},
            {"type": "reasoning", "text": "thinking", "time": {"start": 1}},
            {"type": "text", "text": "second"}
        ]))
        .unwrap();
        assert_eq!(concat_text(&parts), "first\nsecond");
    }
}
