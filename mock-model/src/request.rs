//! The part of an OpenAI chat-completions request body that the scenarios read, and the
//! questions they ask of it: which tools are offered, is it a title request, did a tool result
//! just come back. Unknown fields are ignored, so every body OpenCode sends parses.

use serde::Deserialize;

/// The tool OpenCode offers when a prompt asks for structured output.
pub(crate) const STRUCTURED_OUTPUT_TOOL: &str = "StructuredOutput";

/// The phrase that marks OpenCode's title generator prompt, its only request without tools.
const TITLE_MARKER: &str = "title generator";

/// A chat-completions request, reduced to what the server needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    #[serde(default)]
    pub(crate) messages: Vec<Message>,
    #[serde(default)]
    pub(crate) tools: Option<Vec<Tool>>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
}

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Message {
    pub(crate) role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Vec<MessageToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

/// Message content: a plain string, or a list of parts of which only text parts matter here.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize)]
struct ContentPart {
    #[serde(default)]
    text: Option<String>,
}

/// A tool call made by an earlier assistant message.
#[derive(Debug, Clone, Deserialize)]
struct MessageToolCall {
    #[serde(default)]
    id: Option<String>,
    function: FunctionName,
}

#[derive(Debug, Clone, Deserialize)]
struct FunctionName {
    name: String,
}

/// A tool offered to the model.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Tool {
    #[serde(default)]
    function: Option<FunctionName>,
}

impl Message {
    /// The message's text: the string content, or its text parts joined by newlines.
    pub(crate) fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(text)) => text.clone(),
            Some(Content::Parts(parts)) => {
                let texts: Vec<&str> = parts.iter().filter_map(|p| p.text.as_deref()).collect();
                texts.join("\n")
            }
        }
    }
}

impl ChatRequest {
    /// The names of the offered tools, in the order offered.
    pub(crate) fn tool_names(&self) -> Vec<String> {
        let tools = self.tools.iter().flatten();
        tools
            .filter_map(|t| t.function.as_ref().map(|f| f.name.clone()))
            .collect()
    }

    /// Whether a tool of this name is offered.
    pub(crate) fn offers(&self, name: &str) -> bool {
        self.tool_names().iter().any(|n| n == name)
    }

    /// Whether the answer should be an event stream; OpenAI's default is a single JSON body.
    pub(crate) fn streams(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether this is OpenCode's request for a session title: no tools, and the title
    /// generator's system prompt. Such requests carry the user's prompt too, so the system
    /// prompt is the only reliable mark.
    pub(crate) fn is_title_request(&self) -> bool {
        let no_tools = self.tools.as_ref().is_none_or(Vec::is_empty);
        no_tools && self.system_texts().any(|text| text.contains(TITLE_MARKER))
    }

    fn system_texts(&self) -> impl Iterator<Item = String> + '_ {
        let system = self.messages.iter().filter(|m| m.role == "system");
        system.map(Message::text)
    }

    /// The texts of the user messages, latest first.
    pub(crate) fn user_texts_latest_first(&self) -> impl Iterator<Item = String> + '_ {
        let users = self.messages.iter().rev().filter(|m| m.role == "user");
        users.map(Message::text)
    }

    /// Whether the conversation ends with a tool result, so the model is to go on after it.
    pub(crate) fn ends_with_tool_result(&self) -> bool {
        self.messages.last().is_some_and(|m| m.role == "tool")
    }

    /// The name of the tool whose result ends the conversation, found through the assistant
    /// message that made the call; `None` when the conversation does not end with a tool result
    /// or no call matches its id.
    pub(crate) fn answered_tool(&self) -> Option<&str> {
        let last = self.messages.last().filter(|m| m.role == "tool")?;
        let id = last.tool_call_id.as_deref()?;
        let calls = self
            .messages
            .iter()
            .rev()
            .filter_map(|m| m.tool_calls.as_ref());
        let call = calls.flatten().find(|c| c.id.as_deref() == Some(id))?;
        Some(call.function.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: serde_json::Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn title_request_is_recognized_by_its_system_prompt_and_missing_tools() {
        let title = parse(json!({"model": "m", "messages": [
            {"role": "system", "content": "You are a title generator. You output ONLY a title."},
            {"role": "user", "content": "Generate a title for this conversation:\n"},
        ]}));
        assert!(title.is_title_request());

        let with_tools = parse(json!({"model": "m",
            "messages": [{"role": "system", "content": "You are a title generator."}],
            "tools": [{"type": "function", "function": {"name": "bash"}}]}));
        assert!(!with_tools.is_title_request());
    }

    #[test]
    fn text_parts_are_joined_and_other_parts_skipped() {
        let request = parse(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "one"},
                {"type": "image_url", "image_url": {"url": "data:"}},
                {"type": "text", "text": "two"},
            ]}]}),
        );
        let texts: Vec<String> = request.user_texts_latest_first().collect();
        assert_eq!(texts, ["one\ntwo"]);
    }

    #[test]
    fn answered_tool_follows_the_call_id_back_to_its_call() {
        let request = parse(json!({"model": "m", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "bash", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "(no output)"},
        ]}));
        assert!(request.ends_with_tool_result());
        assert_eq!(request.answered_tool(), Some("bash"));
    }

    #[test]
    fn null_tools_and_stream_parse_as_absent() {
        let request = parse(json!({"model": "m", "messages": [], "tools": null, "stream": null}));
        assert!(request.tool_names().is_empty());
        assert!(!request.streams());
    }
}
