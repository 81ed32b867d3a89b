//! Messages: their info (role, model, error, structured output, tokens, times), their parts,
//! and the assistant reply a prompt returns.
//!
//! [`MessageWithParts`] and [`AssistantReply`] keep the JSON the server sent beside the decoded
//! fields ([`raw`](MessageWithParts::raw)), and serialize back to exactly that JSON, so a session
//! snapshot loses nothing this client does not know about.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Error;
use crate::lenient;
use crate::part::{Part, concat_text};
use crate::prompt::ModelRef;

/// Token counts of a message or a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Tokens {
    /// All tokens; absent on failed messages, where it is 0.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub total: u64,
    /// Input tokens.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub input: u64,
    /// Output tokens.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub output: u64,
    /// Reasoning tokens.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub reasoning: u64,
    /// Prompt-cache tokens.
    #[serde(default)]
    pub cache: CacheTokens,
}

/// Prompt-cache token counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct CacheTokens {
    /// Tokens read from the cache.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub read: u64,
    /// Tokens written to the cache.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub write: u64,
}

/// When a message was created and completed, in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct MessageTime {
    /// When the message was created.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub created: u64,
    /// When the assistant finished it; absent while it runs and on user messages.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub completed: Option<u64>,
}

/// The error of a failed assistant message (`info.error`), also sent in `session.error` events.
///
/// OpenCode names the error in `name` and puts its details in `data`; [`kind`](Self::kind) and
/// the accessors read the fields the runner needs without failing on names this client does not
/// know.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct MessageError {
    /// The error's name (`APIError`, `MessageAbortedError`, ...).
    #[serde(default)]
    pub name: String,
    /// The error's details, as sent.
    #[serde(default)]
    pub data: Value,
}

/// The kinds of [`MessageError`] OpenCode 1.18 declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageErrorKind {
    /// `ProviderAuthError`: the provider refused the credentials.
    ProviderAuth,
    /// `UnknownError`: anything else, such as a model stream that is not JSON.
    Unknown,
    /// `MessageOutputLengthError`: the model hit its output limit.
    OutputLength,
    /// `MessageAbortedError`: the session was aborted.
    Aborted,
    /// `StructuredOutputError`: the model did not produce valid structured output.
    StructuredOutput,
    /// `ContextOverflowError`: the prompt does not fit the model's context.
    ContextOverflow,
    /// `ContentFilterError`: the provider's content filter stopped the answer.
    ContentFilter,
    /// `APIError`: the provider answered with an HTTP error.
    Api,
    /// A name this client does not know.
    Other,
}

impl MessageError {
    /// The kind, from [`name`](Self::name).
    pub fn kind(&self) -> MessageErrorKind {
        match self.name.as_str() {
            "ProviderAuthError" => MessageErrorKind::ProviderAuth,
            "UnknownError" => MessageErrorKind::Unknown,
            "MessageOutputLengthError" => MessageErrorKind::OutputLength,
            "MessageAbortedError" => MessageErrorKind::Aborted,
            "StructuredOutputError" => MessageErrorKind::StructuredOutput,
            "ContextOverflowError" => MessageErrorKind::ContextOverflow,
            "ContentFilterError" => MessageErrorKind::ContentFilter,
            "APIError" => MessageErrorKind::Api,
            _ => MessageErrorKind::Other,
        }
    }

    /// The human-readable message in `data.message`, when there is one.
    pub fn message(&self) -> Option<&str> {
        self.data.get("message")?.as_str()
    }

    /// The provider's HTTP status (`data.statusCode`, API errors only).
    pub fn status_code(&self) -> Option<u16> {
        let code = self.data.get("statusCode")?.as_u64()?;
        u16::try_from(code).ok()
    }

    /// Whether OpenCode considered the provider error retryable (`data.isRetryable`).
    pub fn is_retryable(&self) -> Option<bool> {
        self.data.get("isRetryable")?.as_bool()
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "unnamed error"
        } else {
            &self.name
        };
        match (self.message(), self.status_code()) {
            (Some(message), Some(status)) => write!(f, "{name} (HTTP {status}): {message}"),
            (Some(message), None) => write!(f, "{name}: {message}"),
            (None, _) => f.write_str(name),
        }
    }
}

/// The info of a user message.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct UserMessage {
    /// The message id (`msg_...`).
    #[serde(default)]
    pub id: String,
    /// The session (`ses_...`).
    #[serde(default, rename = "sessionID")]
    pub session_id: String,
    /// When it was sent.
    #[serde(default)]
    pub time: MessageTime,
    /// The agent that answers it.
    #[serde(default)]
    pub agent: Option<String>,
    /// The model that answers it.
    #[serde(default)]
    pub model: Option<ModelRef>,
    /// The system prompt sent with it.
    #[serde(default)]
    pub system: Option<String>,
    /// The output format asked for, as sent.
    #[serde(default)]
    pub format: Option<Value>,
}

/// The info of an assistant message.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct AssistantMessage {
    /// The message id (`msg_...`).
    #[serde(default)]
    pub id: String,
    /// The session (`ses_...`).
    #[serde(default, rename = "sessionID")]
    pub session_id: String,
    /// The user message this answers.
    #[serde(default, rename = "parentID")]
    pub parent_id: Option<String>,
    /// When it was created and completed.
    #[serde(default)]
    pub time: MessageTime,
    /// Why the model call failed, when it did.
    #[serde(default)]
    pub error: Option<MessageError>,
    /// The structured output, for a prompt sent with a JSON-schema `format`.
    #[serde(default)]
    pub structured: Option<Value>,
    /// The provider that answered.
    #[serde(default, rename = "providerID")]
    pub provider_id: Option<String>,
    /// The model that answered.
    #[serde(default, rename = "modelID")]
    pub model_id: Option<String>,
    /// The agent that answered.
    #[serde(default)]
    pub agent: Option<String>,
    /// Why the last step ended (`stop`, `tool-calls`, ...); absent on failed messages.
    #[serde(default)]
    pub finish: Option<String>,
    /// The message's cost.
    #[serde(default)]
    pub cost: f64,
    /// The message's token counts.
    #[serde(default)]
    pub tokens: Tokens,
}

/// The info of a message, by its `role`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
#[non_exhaustive]
pub enum MessageInfo {
    /// A prompt.
    User(UserMessage),
    /// A model's answer.
    Assistant(Box<AssistantMessage>),
    /// A role this client does not know; the message's [`raw`](MessageWithParts::raw) JSON
    /// still has it.
    #[serde(other)]
    Other,
}

/// The fields of a message as they come over the wire, before the JSON is kept beside them.
#[derive(Deserialize)]
struct Wire<I> {
    info: I,
    #[serde(default)]
    parts: Vec<Part>,
}

/// A message with its parts, as `GET /session/{id}/message[/{messageID}]` answer it.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageWithParts {
    /// The message's info.
    pub info: MessageInfo,
    /// The message's parts, in order.
    pub parts: Vec<Part>,
    raw: Value,
}

impl MessageWithParts {
    /// The message id, unless the role is unknown.
    pub fn id(&self) -> Option<&str> {
        match &self.info {
            MessageInfo::User(user) => Some(&user.id),
            MessageInfo::Assistant(assistant) => Some(&assistant.id),
            MessageInfo::Other => self.raw.pointer("/info/id")?.as_str(),
        }
    }

    /// The assistant info, when this is an assistant message.
    pub fn as_assistant(&self) -> Option<&AssistantMessage> {
        match &self.info {
            MessageInfo::Assistant(assistant) => Some(assistant),
            _ => None,
        }
    }

    /// This message as an [`AssistantReply`], when it is an assistant message.
    pub fn into_assistant_reply(self) -> Option<AssistantReply> {
        match self.info {
            MessageInfo::Assistant(info) => Some(AssistantReply {
                info: *info,
                parts: self.parts,
                raw: self.raw,
            }),
            _ => None,
        }
    }

    /// The text of the message's text parts (see [`concat_text`]).
    pub fn text(&self) -> String {
        concat_text(&self.parts)
    }

    /// The JSON the server sent.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The JSON the server sent, taken out.
    pub fn into_raw(self) -> Value {
        self.raw
    }
}

impl<'de> Deserialize<'de> for MessageWithParts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let wire = Wire::<MessageInfo>::deserialize(&raw).map_err(D::Error::custom)?;
        Ok(MessageWithParts {
            info: wire.info,
            parts: wire.parts,
            raw,
        })
    }
}

impl Serialize for MessageWithParts {
    /// Serializes the JSON the server sent, unchanged.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// The assistant message a prompt produced: the answer of `POST /session/{id}/message`.
///
/// The server answers 200 even when the model failed; check [`error`](Self::error), or turn it
/// into an [`Error::Model`] with [`error_for_model`](Self::error_for_model).
#[derive(Clone, Debug, PartialEq)]
pub struct AssistantReply {
    /// The message's info.
    pub info: AssistantMessage,
    /// The message's parts, in order.
    pub parts: Vec<Part>,
    raw: Value,
}

impl AssistantReply {
    /// The message id (`msg_...`).
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Why the model call failed, when it did.
    pub fn error(&self) -> Option<&MessageError> {
        self.info.error.as_ref()
    }

    /// The reply itself when the model call succeeded, else [`Error::Model`].
    pub fn error_for_model(self) -> Result<Self, Error> {
        match self.info.error {
            Some(error) => Err(Error::Model(error)),
            None => Ok(self),
        }
    }

    /// The structured output as JSON, when there is one.
    pub fn structured_value(&self) -> Option<&Value> {
        self.info
            .structured
            .as_ref()
            .filter(|value| !value.is_null())
    }

    /// The structured output decoded as `T`.
    ///
    /// Fails with [`Error::Model`] when the model call failed, [`Error::NoStructuredOutput`] when
    /// there is no structured output, and [`Error::StructuredShape`] when it is not a `T`.
    pub fn structured<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if let Some(error) = self.error() {
            return Err(Error::Model(error.clone()));
        }
        let value = self
            .structured_value()
            .ok_or_else(|| Error::NoStructuredOutput {
                message_id: self.info.id.clone(),
            })?;
        T::deserialize(value).map_err(|source| Error::StructuredShape {
            message_id: self.info.id.clone(),
            source,
        })
    }

    /// The text of the reply's text parts (see [`concat_text`]), for extracting JSON from text.
    pub fn text(&self) -> String {
        concat_text(&self.parts)
    }

    /// The ids this reply makes known: its own and its user message's. Useful for
    /// [`Client::messages_or_known`](crate::Client::messages_or_known).
    pub fn message_ids(&self) -> Vec<&str> {
        let parent = self.info.parent_id.as_deref();
        parent.into_iter().chain([self.info.id.as_str()]).collect()
    }

    /// The JSON the server sent.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The JSON the server sent, taken out.
    pub fn into_raw(self) -> Value {
        self.raw
    }
}

impl<'de> Deserialize<'de> for AssistantReply {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let wire = Wire::<AssistantMessage>::deserialize(&raw).map_err(D::Error::custom)?;
        Ok(AssistantReply {
            info: wire.info,
            parts: wire.parts,
            raw,
        })
    }
}

impl Serialize for AssistantReply {
    /// Serializes the JSON the server sent, unchanged.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// The messages of a session, read as completely as the server allows: the answer of
/// [`Client::messages_or_known`](crate::Client::messages_or_known).
#[derive(Debug)]
pub struct MessageListing {
    /// The messages read: in the server's order when listed, else in the order of the known ids.
    pub messages: Vec<MessageWithParts>,
    /// `true` when the server listed the messages; `false` when they were read one by one.
    pub listed: bool,
    /// Known ids the server would not answer for, with its answer; empty when listed.
    pub unreadable: Vec<(String, Error)>,
}

impl MessageListing {
    /// Whether every message is here: listed by the server, or every known id was read.
    pub fn is_complete(&self) -> bool {
        self.listed || self.unreadable.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reply(info: Value) -> AssistantReply {
        serde_json::from_value(json!({"info": info, "parts": [
            {"type": "text", "text": "```json\n{\"a\":1}\n```"}
        ]}))
        .unwrap()
    }

    #[test]
    fn a_model_error_is_typed_and_readable() {
        let reply = reply(json!({
            "id": "msg_2", "role": "assistant",
            "error": {"name": "APIError", "data": {"message": "bad request", "statusCode": 400,
                      "isRetryable": false}}
        }));
        let error = reply.error().unwrap();
        assert_eq!(error.kind(), MessageErrorKind::Api);
        assert_eq!(error.status_code(), Some(400));
        assert_eq!(error.is_retryable(), Some(false));
        assert_eq!(error.to_string(), "APIError (HTTP 400): bad request");
        let err = reply.error_for_model().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the model call failed: APIError (HTTP 400): bad request"
        );
    }

    #[test]
    fn structured_output_decodes_into_the_callers_type() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Answer {
            answer: String,
        }
        let ok = reply(json!({"id": "msg_2", "structured": {"answer": "hi"}}));
        assert_eq!(
            ok.structured::<Answer>().unwrap(),
            Answer {
                answer: "hi".into()
            }
        );

        let wrong = reply(json!({"id": "msg_2", "structured": {"answer": 3}}));
        assert!(matches!(
            wrong.structured::<Answer>(),
            Err(Error::StructuredShape { .. })
        ));

        let none = reply(json!({"id": "msg_2", "structured": null}));
        let err = none.structured::<Answer>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "assistant message `msg_2` carries no structured output"
        );
    }

    #[test]
    fn the_reply_text_and_ids_are_at_hand() {
        let reply = reply(json!({"id": "msg_2", "parentID": "msg_1"}));
        assert_eq!(reply.text(), "```json\n{\"a\":1}\n```");
        assert_eq!(reply.message_ids(), ["msg_1", "msg_2"]);
    }

    #[test]
    fn unknown_roles_and_fields_are_tolerated_and_kept() {
        let raw = json!({"info": {"id": "msg_7", "role": "system", "new": 1}, "parts": []});
        let message: MessageWithParts = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(message.info, MessageInfo::Other);
        assert_eq!(message.id(), Some("msg_7"));
        assert_eq!(serde_json::to_value(&message).unwrap(), raw);
        assert!(message.into_assistant_reply().is_none());
    }
}
