//! Requests that wait on a person: permission requests and questions.
//!
//! OpenCode 1.18 announces them with `permission.asked` and `question.asked` events (whose
//! `properties` are a [`PermissionRequest`] or a [`QuestionRequest`]), lists the pending ones at
//! `GET /permission` and `GET /question`, and waits until they are answered at
//! `POST /permission/{id}/reply` or `POST /question/{id}/reply` / `.../reject`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The tool call that raised a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ToolCallRef {
    /// The assistant message holding the call.
    #[serde(default, rename = "messageID")]
    pub message_id: String,
    /// The call's id.
    #[serde(default, rename = "callID")]
    pub call_id: String,
}

/// A permission request: a tool call waiting to be allowed or refused.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PermissionRequest {
    /// The request id (`per_...`).
    pub id: String,
    /// The session (`ses_...`).
    #[serde(default, rename = "sessionID")]
    pub session_id: String,
    /// The permission asked for (`bash`, `edit`, `external_directory`, ...).
    #[serde(default)]
    pub permission: String,
    /// The patterns asked for (`/tmp/*`).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Details, such as the command.
    #[serde(default)]
    pub metadata: Value,
    /// The patterns an `always` reply would allow from now on.
    #[serde(default)]
    pub always: Vec<String>,
    /// The tool call that asked.
    #[serde(default)]
    pub tool: Option<ToolCallRef>,
}

/// A reply to a permission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionReply {
    /// Allow this call.
    Once,
    /// Allow this call and every later one matching the request's `always` patterns.
    Always,
    /// Refuse the call; the tool call fails and the model is told.
    Reject,
}

/// One option of a question.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct QuestionOption {
    /// The option's label; answers name options by label.
    #[serde(default)]
    pub label: String,
    /// What the option means.
    #[serde(default)]
    pub description: String,
}

/// One question of a question request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct QuestionInfo {
    /// The question.
    #[serde(default)]
    pub question: String,
    /// A very short label.
    #[serde(default)]
    pub header: String,
    /// The choices.
    #[serde(default)]
    pub options: Vec<QuestionOption>,
    /// Whether several options may be picked.
    #[serde(default)]
    pub multiple: bool,
    /// Whether a free-text answer is allowed.
    #[serde(default)]
    pub custom: bool,
}

/// A question request: the `question` tool waiting for answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct QuestionRequest {
    /// The request id (`que_...`).
    pub id: String,
    /// The session (`ses_...`).
    #[serde(default, rename = "sessionID")]
    pub session_id: String,
    /// The questions, in order.
    #[serde(default)]
    pub questions: Vec<QuestionInfo>,
    /// The tool call that asked.
    #[serde(default)]
    pub tool: Option<ToolCallRef>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn replies_serialize_to_the_words_the_server_takes() {
        let words: Vec<Value> = [
            PermissionReply::Once,
            PermissionReply::Always,
            PermissionReply::Reject,
        ]
        .iter()
        .map(|reply| serde_json::to_value(reply).unwrap())
        .collect();
        assert_eq!(words, [json!("once"), json!("always"), json!("reject")]);
    }

    #[test]
    fn a_question_request_decodes() {
        let request: QuestionRequest = serde_json::from_value(json!({
            "id": "que_1", "sessionID": "ses_1",
            "questions": [{"question": "Which?", "header": "Pick", "multiple": false,
                           "options": [{"label": "A", "description": "first"}]}],
            "tool": {"messageID": "msg_1", "callID": "call_1"}
        }))
        .unwrap();
        assert_eq!(request.questions[0].options[0].label, "A");
        assert_eq!(request.tool.unwrap().call_id, "call_1");
    }
}
