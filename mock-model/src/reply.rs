//! What the server decided to answer, before it is put on the wire: an assistant answer (text or
//! tool calls), an HTTP error, or a stream that is not JSON.

/// The text OpenCode's title requests get, in every scenario.
pub(crate) const TITLE: &str = "Mock session";

/// One reply to one chat-completions request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// A well-formed assistant answer.
    Answer(Answer),
    /// An HTTP error with an OpenAI-style error body.
    HttpError { status: u16, message: String },
    /// HTTP 200 whose data is not JSON.
    Malformed,
}

/// An assistant message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Plain text; finishes with `stop`.
    Text(String),
    /// Tool calls; finishes with `tool_calls`.
    ToolCalls(Vec<ToolCall>),
}

/// A tool call before it gets its id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) name: String,
    /// The arguments as the JSON text the model sends.
    pub(crate) arguments: String,
}

impl Reply {
    /// A text answer.
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Reply::Answer(Answer::Text(text.into()))
    }

    /// An answer with one tool call.
    pub(crate) fn tool_call(name: &str, arguments: &serde_json::Value) -> Self {
        let call = ToolCall {
            name: name.to_owned(),
            arguments: arguments.to_string(),
        };
        Reply::Answer(Answer::ToolCalls(vec![call]))
    }

    /// An HTTP error.
    pub(crate) fn http_error(status: u16, message: impl Into<String>) -> Self {
        Reply::HttpError {
            status,
            message: message.into(),
        }
    }
}

impl Reply {
    /// A one-line description for logs, without the payload (which may hold whole files).
    pub(crate) fn summary(&self) -> String {
        match self {
            Reply::Answer(Answer::Text(text)) => format!("text ({} bytes)", text.len()),
            Reply::Answer(Answer::ToolCalls(calls)) => {
                let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
                format!("tool calls ({})", names.join(", "))
            }
            Reply::HttpError { status, .. } => format!("http error {status}"),
            Reply::Malformed => "malformed stream".to_owned(),
        }
    }
}

impl Answer {
    /// The OpenAI `finish_reason` of this answer.
    pub(crate) fn finish_reason(&self) -> &'static str {
        match self {
            Answer::Text(_) => "stop",
            Answer::ToolCalls(_) => "tool_calls",
        }
    }
}
