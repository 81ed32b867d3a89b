//! The body of a prompt: parts, model, system prompt and output format.
//!
//! Serializes to the body `POST /session/{id}/message` and `POST /session/{id}/prompt_async`
//! take; fields left unset are left out of the JSON, so OpenCode applies its own defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A model, as OpenCode names it: provider and model id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// The provider (`openai`, `anthropic`, `mock`, ...).
    #[serde(rename = "providerID")]
    pub provider_id: String,
    /// The model within the provider.
    #[serde(rename = "modelID")]
    pub model_id: String,
}

impl ModelRef {
    /// A model from its provider and model ids.
    pub fn new(provider_id: impl Into<String>, model_id: impl Into<String>) -> Self {
        ModelRef {
            provider_id: provider_id.into(),
            model_id: model_id.into(),
        }
    }

    /// Parses `PROVIDER/MODEL`, splitting at the first `/` (model ids may hold more slashes);
    /// `None` when either side is empty.
    pub fn parse(spec: &str) -> Option<Self> {
        let (provider, model) = spec.split_once('/')?;
        if provider.is_empty() || model.is_empty() {
            return None;
        }
        Some(ModelRef::new(provider, model))
    }
}

/// How the answer is to be shaped.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputFormat {
    /// Free text, OpenCode's default.
    Text,
    /// A JSON object matching `schema`: OpenCode offers the model a `StructuredOutput` tool
    /// with that schema, and the object arrives in the assistant message's `info.structured`.
    JsonSchema {
        /// The JSON schema.
        schema: Value,
        /// How many times OpenCode asks the model again after an invalid object.
        #[serde(rename = "retryCount", skip_serializing_if = "Option::is_none")]
        retry_count: Option<u32>,
    },
}

/// One input part of a prompt.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PartInput {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A file, by URL (`data:` URLs included).
    File {
        /// The file's media type.
        mime: String,
        /// Where the content is.
        url: String,
        /// The file's name.
        #[serde(skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
}

/// The body of a prompt.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PromptRequest {
    /// The parts of the prompt, in order.
    pub parts: Vec<PartInput>,
    /// The model to answer; the server's configured model when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// A system prompt for this turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The agent to answer (`build` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The answer's format; free text when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
    /// Tools to turn on (`true`) or off (`false`) for this turn, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, bool>,
    /// The id the user message is to get (`msg_...`); the server makes one when unset.
    #[serde(rename = "messageID", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl PromptRequest {
    /// A prompt of one text part.
    pub fn text(text: impl Into<String>) -> Self {
        PromptRequest {
            parts: vec![PartInput::Text { text: text.into() }],
            ..PromptRequest::default()
        }
    }

    /// Adds a system prompt.
    pub fn with_system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Picks the model.
    pub fn with_model(mut self, model: ModelRef) -> Self {
        self.model = Some(model);
        self
    }

    /// Asks for structured output matching `schema`, with `retry_count` retries inside
    /// OpenCode after an invalid object.
    pub fn with_json_schema(mut self, schema: Value, retry_count: u32) -> Self {
        self.format = Some(OutputFormat::JsonSchema {
            schema,
            retry_count: Some(retry_count),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_structured_prompt_serializes_to_the_captured_body() {
        let schema = json!({
            "type": "object",
            "properties": {"answer": {"type": "string"}, "count": {"type": "integer"}},
            "required": ["answer", "count"],
            "additionalProperties": false
        });
        let request =
            PromptRequest::text("Give me a JSON object with an answer string and a count integer.")
                .with_json_schema(schema, 1);
        let captured: Value = serde_json::from_str(include_str!(
            "../tests/fixtures/03-structured/prompt_request.json"
        ))
        .unwrap();
        assert_eq!(serde_json::to_value(&request).unwrap(), captured);
    }

    #[test]
    fn optional_fields_appear_only_when_set() {
        let request = PromptRequest::text("hi")
            .with_system("answer in JSON")
            .with_model(ModelRef::new("mock", "m1"));
        insta::assert_json_snapshot!(request, @r#"
        {
          "parts": [
            {
              "type": "text",
              "text": "hi"
            }
          ],
          "model": {
            "providerID": "mock",
            "modelID": "m1"
          },
          "system": "answer in JSON"
        }
        "#);
    }

    #[test]
    fn model_specs_split_at_the_first_slash() {
        assert_eq!(
            ModelRef::parse("openrouter/anthropic/claude"),
            Some(ModelRef::new("openrouter", "anthropic/claude"))
        );
        assert_eq!(ModelRef::parse("noslash"), None);
        assert_eq!(ModelRef::parse("/model"), None);
        assert_eq!(ModelRef::parse("provider/"), None);
    }
}
