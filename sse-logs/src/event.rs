//! OpenCode's events, typed: the JSON `{type, properties}` of one frame as an [`Event`].
//!
//! Only what the agent log and the runner need is typed; every other event type arrives as
//! [`Event::Unknown`] with its properties kept as JSON. Unknown fields are ignored everywhere,
//! and a known type whose properties do not have the expected shape is demoted to
//! [`Event::Unknown`] rather than failing, so a newer server cannot break a run. The shapes
//! follow OpenCode 1.18's OpenAPI document (`components.schemas.Event*`).

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::debug;

/// Why a frame's data is not an OpenCode event at all.
#[derive(Debug, thiserror::Error)]
#[error("an event-stream frame is not an OpenCode event")]
pub struct EventError {
    #[source]
    source: serde_json::Error,
}

/// One event of OpenCode's `GET /event` stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `server.connected`: the first frame of every connection.
    ServerConnected,
    /// `server.heartbeat`: sent about every 10 seconds.
    ServerHeartbeat,
    /// `session.created`.
    SessionCreated(SessionInfo),
    /// `session.updated`: a session's title, tokens or summary changed.
    SessionUpdated(SessionInfo),
    /// `session.status`: busy, idle or waiting to retry.
    SessionStatus {
        /// The session.
        session_id: String,
        /// Its new status.
        status: SessionStatus,
    },
    /// `session.idle`: the session finished a turn (can arrive twice for one turn).
    SessionIdle {
        /// The session.
        session_id: String,
    },
    /// `session.error`: the turn failed.
    SessionError {
        /// The session, when the server names one.
        session_id: Option<String>,
        /// The error, when the server sends one.
        error: Option<ErrorInfo>,
    },
    /// `message.updated`: a user or assistant message was created or changed.
    MessageUpdated {
        /// The session.
        session_id: String,
        /// The message as it is now.
        info: MessageInfo,
    },
    /// `message.part.updated`: a part of a message was created or changed.
    MessagePartUpdated {
        /// The session.
        session_id: String,
        /// The part as it is now.
        part: Part,
    },
    /// `message.part.delta`: text appended to one field of a part while it streams.
    MessagePartDelta {
        /// The session.
        session_id: String,
        /// The message that holds the part.
        message_id: String,
        /// The part.
        part_id: String,
        /// The field the text is appended to (`text` in what OpenCode 1.18 sends).
        field: String,
        /// The appended text.
        delta: String,
    },
    /// `file.edited`: a tool changed a file (the path is as the server sees it).
    FileEdited {
        /// The file.
        file: String,
    },
    /// `permission.asked`: a tool waits for a person to allow something.
    PermissionAsked(PermissionRequest),
    /// `permission.replied`: a permission request was answered.
    PermissionReplied {
        /// The session.
        session_id: String,
        /// The request answered.
        request_id: String,
        /// `once`, `always` or `reject`.
        reply: String,
    },
    /// `question.asked`: the `question` tool waits for a person's answer.
    QuestionAsked(QuestionRequest),
    /// `question.replied`: a question was answered.
    QuestionReplied {
        /// The session.
        session_id: String,
        /// The request answered.
        request_id: String,
    },
    /// `question.rejected`: a question was refused.
    QuestionRejected {
        /// The session.
        session_id: String,
        /// The request refused.
        request_id: String,
    },
    /// `plugin.added`: a plugin was loaded.
    PluginAdded {
        /// The plugin's id.
        id: String,
    },
    /// One of the server's catalogue or installation notices: `catalog.updated`,
    /// `reference.updated`, `integration.updated`, `installation.updated`,
    /// `installation.update-available`, `models-dev.refreshed`.
    CatalogUpdated {
        /// The event type.
        kind: String,
    },
    /// Any other event type, or a known one whose properties did not have the expected shape.
    Unknown {
        /// The event type.
        kind: String,
        /// Its properties, as sent.
        properties: Value,
    },
}

/// The catalogue and installation notices folded into [`Event::CatalogUpdated`].
const CATALOG_KINDS: [&str; 6] = [
    "catalog.updated",
    "reference.updated",
    "integration.updated",
    "installation.updated",
    "installation.update-available",
    "models-dev.refreshed",
];

/// The frame's JSON before its properties are typed. The properties stay unparsed text until
/// their type is known, so a typed event is read once, straight into its struct, skipping the
/// fields it does not need; only an unknown event pays for a full JSON tree.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type")]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    properties: Option<&'a RawValue>,
}

impl Event {
    /// Decodes one frame's data, OpenCode's `{type, properties}` JSON.
    ///
    /// Fails only when the data is not JSON or has no string `type`; see the module docs for
    /// how unexpected shapes are handled.
    pub fn from_json(data: &str) -> Result<Event, EventError> {
        // OpenCode writes `type` before `properties`, so the properties can be typed as they are
        // read, in one pass. Anything else (another order, an unexpected shape) takes the
        // careful path, which keeps what it cannot type.
        if let Ok(OnePass(Some(event))) = serde_json::from_str::<OnePass>(data) {
            return Ok(event);
        }
        let raw: RawEvent = serde_json::from_str(data).map_err(|source| EventError { source })?;
        let properties = raw.properties.map_or("null", RawValue::get);
        let mut props = serde_json::Deserializer::from_str(properties);
        match Self::typed(&raw.kind, &mut props) {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Ok(Self::unknown(raw)),
            Err(error) => {
                debug!(kind = &*raw.kind, %error, "event properties of an unexpected shape");
                Ok(Self::unknown(raw))
            }
        }
    }

    fn unknown(raw: RawEvent<'_>) -> Event {
        let properties = raw.properties.map(|text| serde_json::from_str(text.get()));
        Event::Unknown {
            kind: raw.kind.into_owned(),
            properties: properties.and_then(Result::ok).unwrap_or(Value::Null),
        }
    }

    /// The typed event for `kind` read from `props`, or `None` for a type this crate does not
    /// type (whose properties are then left unread).
    fn typed<'de, D: Deserializer<'de>>(kind: &str, props: D) -> Result<Option<Event>, D::Error> {
        let event = match kind {
            "server.connected" => ignore(props, Event::ServerConnected)?,
            "server.heartbeat" => ignore(props, Event::ServerHeartbeat)?,
            "session.created" => Event::SessionCreated(SessionProps::deserialize(props)?.info),
            "session.updated" => Event::SessionUpdated(SessionProps::deserialize(props)?.info),
            "session.status" => StatusProps::deserialize(props)?.into(),
            "session.idle" => IdleProps::deserialize(props)?.into(),
            "session.error" => ErrorProps::deserialize(props)?.into(),
            "message.updated" => MessageProps::deserialize(props)?.into(),
            "message.part.updated" => PartProps::deserialize(props)?.into(),
            "message.part.delta" => DeltaProps::deserialize(props)?.into(),
            "file.edited" => FileProps::deserialize(props)?.into(),
            "permission.asked" => Event::PermissionAsked(PermissionRequest::deserialize(props)?),
            "permission.replied" => PermissionReplyProps::deserialize(props)?.into(),
            "question.asked" => Event::QuestionAsked(QuestionRequest::deserialize(props)?),
            "question.replied" => QuestionReplyProps::deserialize(props)?.replied(),
            "question.rejected" => QuestionReplyProps::deserialize(props)?.rejected(),
            "plugin.added" => Event::PluginAdded {
                id: PluginProps::deserialize(props)?.id,
            },
            _ if CATALOG_KINDS.contains(&kind) => {
                ignore(props, Event::CatalogUpdated { kind: kind.into() })?
            }
            _ => return Ok(None),
        };
        Ok(Some(event))
    }

    /// The session this event belongs to, when it names one.
    ///
    /// Server, plugin, catalogue and file events name none. For [`Event::Unknown`] it is the
    /// `sessionID` property, when that is a string.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Event::SessionCreated(info) | Event::SessionUpdated(info) => Some(&info.session_id),
            Event::SessionStatus { session_id, .. }
            | Event::SessionIdle { session_id }
            | Event::MessageUpdated { session_id, .. }
            | Event::MessagePartUpdated { session_id, .. }
            | Event::MessagePartDelta { session_id, .. }
            | Event::PermissionReplied { session_id, .. }
            | Event::QuestionReplied { session_id, .. }
            | Event::QuestionRejected { session_id, .. } => Some(session_id),
            Event::PermissionAsked(request) => Some(&request.session_id),
            Event::QuestionAsked(request) => Some(&request.session_id),
            Event::SessionError { session_id, .. } => session_id.as_deref(),
            Event::Unknown { properties, .. } => properties.get("sessionID")?.as_str(),
            Event::ServerConnected
            | Event::ServerHeartbeat
            | Event::FileEdited { .. }
            | Event::PluginAdded { .. }
            | Event::CatalogUpdated { .. } => None,
        }
    }
}

/// `event`, once the properties it does not need are read past.
fn ignore<'de, D: Deserializer<'de>>(props: D, event: Event) -> Result<Event, D::Error> {
    IgnoredAny::deserialize(props)?;
    Ok(event)
}

/// A frame decoded in one pass, or `None` when it must take the careful path: `properties`
/// came before `type`, or there was no `type`.
struct OnePass(Option<Event>);

impl<'de> Deserialize<'de> for OnePass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OnePassVisitor)
    }
}

struct OnePassVisitor;

impl<'de> Visitor<'de> for OnePassVisitor {
    type Value = OnePass;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an OpenCode event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OnePass, A::Error> {
        let (mut kind, mut event): (Option<Cow<'de, str>>, Option<Event>) = (None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match (&*key, &kind) {
                ("type", _) => kind = Some(map.next_value()?),
                ("properties", Some(known)) => {
                    event = Some(map.next_value_seed(PropertiesOf(known))?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(OnePass(match (kind, event) {
            (_, Some(event)) => Some(event),
            (Some(kind), None) => Event::typed(&kind, serde_json::Value::Null).ok().flatten(),
            (None, None) => None,
        }))
    }
}

/// Reads the properties of an event of a known type straight into the typed event, or into a
/// JSON tree for a type this crate does not type.
struct PropertiesOf<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for PropertiesOf<'_> {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, props: D) -> Result<Event, D::Error> {
        let kind = self.0;
        let known = KNOWN_KINDS.contains(&kind) || CATALOG_KINDS.contains(&kind);
        if known {
            return Event::typed(kind, props)?.ok_or_else(|| D::Error::custom("untyped kind"));
        }
        let properties = Value::deserialize(props)?;
        Ok(Event::Unknown {
            kind: kind.to_owned(),
            properties,
        })
    }
}

/// The event types [`Event::typed`] types.
const KNOWN_KINDS: [&str; 17] = [
    "server.connected",
    "server.heartbeat",
    "session.created",
    "session.updated",
    "session.status",
    "session.idle",
    "session.error",
    "message.updated",
    "message.part.updated",
    "message.part.delta",
    "file.edited",
    "permission.asked",
    "permission.replied",
    "question.asked",
    "question.replied",
    "question.rejected",
    "plugin.added",
];

/// A session as `session.created` and `session.updated` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SessionInfo {
    /// The session's id.
    #[serde(rename = "id")]
    pub session_id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
}

/// A session's status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum SessionStatus {
    /// Waiting for a prompt.
    Idle,
    /// Working on a turn.
    Busy,
    /// The model call failed and will be retried.
    Retry {
        /// The attempt that failed, from 1.
        attempt: u64,
        /// Why it failed.
        #[serde(default)]
        message: String,
    },
    /// A status this crate does not know.
    #[serde(other)]
    Other,
}

/// A failure OpenCode reports for a turn: `{name, data: {message}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ErrorInfo {
    /// The error's kind, such as `APIError` or `MessageAbortedError`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    data: ErrorData,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
struct ErrorData {
    #[serde(default)]
    message: Option<String>,
}

impl ErrorInfo {
    /// An error with this name and message.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        let data = ErrorData {
            message: Some(message.into()),
        };
        Self {
            name: name.into(),
            data,
        }
    }

    /// The error's message, when it has one.
    pub fn message(&self) -> Option<&str> {
        self.data.message.as_deref()
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// The prompt's sender.
    User,
    /// The agent.
    Assistant,
    /// A role this crate does not know.
    #[serde(other)]
    Other,
}

/// A message as `message.updated` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageInfo {
    /// The message's id.
    pub id: String,
    /// Who wrote it.
    pub role: Role,
    /// Why an assistant message failed, once it has.
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    /// Why an assistant message ended (`stop`, `tool-calls`, ...), once it has.
    #[serde(default)]
    pub finish: Option<String>,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The part's id.
    pub id: String,
    /// The message that holds it.
    pub message_id: String,
    /// What it is.
    pub kind: PartKind,
}

/// What a part is, with what the agent log shows of it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PartKind {
    /// Text of a message; `ended` once the text is complete.
    Text {
        /// The text so far.
        text: String,
        /// Whether the part is complete (it has an end time).
        ended: bool,
    },
    /// The model's reasoning; `ended` once it is complete.
    Reasoning {
        /// The reasoning so far.
        text: String,
        /// Whether the part is complete (it has an end time).
        ended: bool,
    },
    /// A tool call.
    Tool {
        /// The tool's name.
        tool: String,
        /// The call's id.
        call_id: String,
        /// Where the call is.
        state: ToolState,
    },
    /// The start of a model step.
    StepStart,
    /// The end of a model step.
    StepFinish {
        /// Why the step ended (`stop`, `tool-calls`, ...).
        reason: String,
        /// The tokens it used.
        tokens: Tokens,
    },
    /// Any other part type.
    Other {
        /// The part type.
        kind: String,
    },
}

/// Where a tool call is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ToolState {
    /// The model is still writing the call.
    Pending,
    /// The tool runs with this input.
    Running {
        /// The call's input.
        #[serde(default)]
        input: Value,
    },
    /// The tool finished.
    Completed {
        /// The call's input.
        #[serde(default)]
        input: Value,
        /// What it returned to the model.
        #[serde(default)]
        output: String,
    },
    /// The tool failed.
    Error {
        /// The call's input.
        #[serde(default)]
        input: Value,
        /// Why it failed.
        #[serde(default)]
        error: String,
    },
    /// A status this crate does not know.
    #[serde(other)]
    Other,
}

/// Token counts of a step. OpenCode sends JSON numbers; they are kept as sent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
pub struct Tokens {
    /// Prompt tokens.
    #[serde(default)]
    pub input: f64,
    /// Completion tokens.
    #[serde(default)]
    pub output: f64,
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning: f64,
    /// Cache reads and writes.
    #[serde(default)]
    pub cache: CacheTokens,
}

/// Cached prompt tokens of a step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
pub struct CacheTokens {
    /// Tokens read from the cache.
    #[serde(default)]
    pub read: f64,
    /// Tokens written to the cache.
    #[serde(default)]
    pub write: f64,
}

/// A tool's request for a person's permission.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PermissionRequest {
    /// The request's id, used to answer it.
    pub id: String,
    /// The session.
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// What is asked for, such as `external_directory` or `bash`.
    pub permission: String,
    /// The paths or commands it concerns.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Details the tool adds, such as the command.
    #[serde(default)]
    pub metadata: Value,
}

/// The `question` tool's request for a person's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QuestionRequest {
    /// The request's id, used to answer it.
    pub id: String,
    /// The session.
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// The questions asked.
    #[serde(default)]
    pub questions: Vec<Question>,
}

/// One question of a [`QuestionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Question {
    /// A short label.
    #[serde(default)]
    pub header: String,
    /// The whole question.
    #[serde(default)]
    pub question: String,
}

// The properties of each typed event, as sent; `Into<Event>` moves them into the variant.

#[derive(Deserialize)]
struct SessionProps {
    info: SessionInfo,
}

#[derive(Deserialize)]
struct StatusProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    status: SessionStatus,
}

impl From<StatusProps> for Event {
    fn from(p: StatusProps) -> Event {
        Event::SessionStatus {
            session_id: p.session_id,
            status: p.status,
        }
    }
}

#[derive(Deserialize)]
struct IdleProps {
    #[serde(rename = "sessionID")]
    session_id: String,
}

impl From<IdleProps> for Event {
    fn from(p: IdleProps) -> Event {
        Event::SessionIdle {
            session_id: p.session_id,
        }
    }
}

#[derive(Deserialize)]
struct ErrorProps {
    #[serde(rename = "sessionID", default)]
    session_id: Option<String>,
    #[serde(default)]
    error: Option<ErrorInfo>,
}

impl From<ErrorProps> for Event {
    fn from(p: ErrorProps) -> Event {
        Event::SessionError {
            session_id: p.session_id,
            error: p.error,
        }
    }
}

#[derive(Deserialize)]
struct MessageProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    info: MessageInfo,
}

impl From<MessageProps> for Event {
    fn from(p: MessageProps) -> Event {
        Event::MessageUpdated {
            session_id: p.session_id,
            info: p.info,
        }
    }
}

#[derive(Deserialize)]
struct PartProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    part: RawPart,
}

impl From<PartProps> for Event {
    fn from(p: PartProps) -> Event {
        Event::MessagePartUpdated {
            session_id: p.session_id,
            part: p.part.into(),
        }
    }
}

/// A part as sent: the fields every part has, and the type-specific rest.
#[derive(Deserialize)]
struct RawPart {
    id: String,
    #[serde(rename = "messageID")]
    message_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    time: Option<PartTime>,
    #[serde(default)]
    tool: String,
    #[serde(rename = "callID", default)]
    call_id: String,
    #[serde(default)]
    state: Option<ToolState>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    tokens: Tokens,
}

#[derive(Deserialize)]
struct PartTime {
    #[serde(default)]
    end: Option<u64>,
}

impl From<RawPart> for Part {
    fn from(raw: RawPart) -> Part {
        let ended = raw.time.is_some_and(|time| time.end.is_some());
        let kind = match raw.kind.as_str() {
            "text" => PartKind::Text {
                text: raw.text,
                ended,
            },
            "reasoning" => PartKind::Reasoning {
                text: raw.text,
                ended,
            },
            "tool" => PartKind::Tool {
                tool: raw.tool,
                call_id: raw.call_id,
                state: raw.state.unwrap_or(ToolState::Other),
            },
            "step-start" => PartKind::StepStart,
            "step-finish" => PartKind::StepFinish {
                reason: raw.reason,
                tokens: raw.tokens,
            },
            _ => PartKind::Other { kind: raw.kind },
        };
        Part {
            id: raw.id,
            message_id: raw.message_id,
            kind,
        }
    }
}

#[derive(Deserialize)]
struct DeltaProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "messageID")]
    message_id: String,
    #[serde(rename = "partID")]
    part_id: String,
    field: String,
    delta: String,
}

impl From<DeltaProps> for Event {
    fn from(p: DeltaProps) -> Event {
        Event::MessagePartDelta {
            session_id: p.session_id,
            message_id: p.message_id,
            part_id: p.part_id,
            field: p.field,
            delta: p.delta,
        }
    }
}

#[derive(Deserialize)]
struct FileProps {
    file: String,
}

impl From<FileProps> for Event {
    fn from(p: FileProps) -> Event {
        Event::FileEdited { file: p.file }
    }
}

#[derive(Deserialize)]
struct PermissionReplyProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "requestID")]
    request_id: String,
    reply: String,
}

impl From<PermissionReplyProps> for Event {
    fn from(p: PermissionReplyProps) -> Event {
        Event::PermissionReplied {
            session_id: p.session_id,
            request_id: p.request_id,
            reply: p.reply,
        }
    }
}

#[derive(Deserialize)]
struct QuestionReplyProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "requestID")]
    request_id: String,
}

impl QuestionReplyProps {
    fn replied(self) -> Event {
        Event::QuestionReplied {
            session_id: self.session_id,
            request_id: self.request_id,
        }
    }

    fn rejected(self) -> Event {
        Event::QuestionRejected {
            session_id: self.session_id,
            request_id: self.request_id,
        }
    }
}

#[derive(Deserialize)]
struct PluginProps {
    id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_kind_is_typed() {
        for kind in KNOWN_KINDS.iter().chain(&CATALOG_KINDS) {
            let typed = Event::typed(kind, Value::Null);
            assert!(
                !matches!(typed, Ok(None)),
                "`{kind}` is listed as known but not typed"
            );
        }
        assert!(matches!(
            Event::typed("no.such.kind", Value::Null),
            Ok(None)
        ));
    }

    #[test]
    fn properties_before_type_still_decode() {
        let event =
            Event::from_json(r#"{"properties":{"sessionID":"ses_1"},"type":"session.idle"}"#)
                .unwrap();
        assert_eq!(
            event,
            Event::SessionIdle {
                session_id: "ses_1".into()
            }
        );
    }

    #[test]
    fn unknown_kinds_keep_their_properties_in_one_pass() {
        let event =
            Event::from_json(r#"{"type":"x.y","properties":{"sessionID":"s","n":[1]}}"#).unwrap();
        assert_eq!(event.session_id(), Some("s"));
        let Event::Unknown { kind, properties } = event else {
            panic!("not unknown")
        };
        assert_eq!(
            (kind.as_str(), &properties["n"][0]),
            ("x.y", &Value::from(1))
        );
    }
    use serde_json::json;

    fn event(kind: &str, properties: Value) -> Event {
        Event::from_json(
            &json!({"id": "evt_1", "type": kind, "properties": properties}).to_string(),
        )
        .unwrap()
    }

    #[test]
    fn server_events_carry_no_session() {
        for kind in ["server.connected", "server.heartbeat"] {
            let decoded = event(kind, json!({}));
            assert_eq!(decoded.session_id(), None);
            assert!(!matches!(decoded, Event::Unknown { .. }), "{kind}");
        }
    }

    #[test]
    fn session_status_decodes_busy_idle_and_retry() {
        let retry =
            json!({"type": "retry", "attempt": 2, "message": "boom", "next": 1, "new": true});
        let decoded = event(
            "session.status",
            json!({"sessionID": "ses_1", "status": retry}),
        );
        let status = SessionStatus::Retry {
            attempt: 2,
            message: "boom".into(),
        };
        let expected = Event::SessionStatus {
            session_id: "ses_1".into(),
            status,
        };
        assert_eq!(decoded, expected);
        let busy = event(
            "session.status",
            json!({"sessionID": "s", "status": {"type": "busy"}}),
        );
        assert!(matches!(
            busy,
            Event::SessionStatus {
                status: SessionStatus::Busy,
                ..
            }
        ));
        let odd = event(
            "session.status",
            json!({"sessionID": "s", "status": {"type": "napping"}}),
        );
        assert!(matches!(
            odd,
            Event::SessionStatus {
                status: SessionStatus::Other,
                ..
            }
        ));
    }

    #[test]
    fn session_error_keeps_name_and_message() {
        let error = json!({"name": "APIError", "data": {"message": "bad", "statusCode": 400}});
        let decoded = event(
            "session.error",
            json!({"sessionID": "ses_1", "error": error}),
        );
        let Event::SessionError { session_id, error } = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(session_id.as_deref(), Some("ses_1"));
        let error = error.unwrap();
        assert_eq!(
            (error.name.as_str(), error.message()),
            ("APIError", Some("bad"))
        );
    }

    #[test]
    fn tool_parts_decode_each_state() {
        let states = [
            (
                json!({"status": "pending", "input": {}, "raw": ""}),
                ToolState::Pending,
            ),
            (
                json!({"status": "running", "input": {"a": 1}, "time": {"start": 1}}),
                ToolState::Running {
                    input: json!({"a": 1}),
                },
            ),
            (
                json!({"status": "completed", "input": {}, "output": "ok", "title": "t"}),
                ToolState::Completed {
                    input: json!({}),
                    output: "ok".into(),
                },
            ),
            (
                json!({"status": "error", "input": {}, "error": "no rg"}),
                ToolState::Error {
                    input: json!({}),
                    error: "no rg".into(),
                },
            ),
        ];
        for (state, expected) in states {
            let part = json!({"id": "prt_1", "messageID": "msg_1", "sessionID": "ses_1",
                "type": "tool", "tool": "grep", "callID": "call_1", "state": state});
            let decoded = event(
                "message.part.updated",
                json!({"sessionID": "ses_1", "part": part}),
            );
            let Event::MessagePartUpdated { part, .. } = decoded else {
                panic!()
            };
            let kind = PartKind::Tool {
                tool: "grep".into(),
                call_id: "call_1".into(),
                state: expected,
            };
            assert_eq!(part.kind, kind);
        }
    }

    #[test]
    fn text_parts_know_whether_they_ended() {
        let part = |time: Value| {
            let part = json!({"id": "p", "messageID": "m", "type": "reasoning", "text": "hm",
                "time": time});
            let decoded = event(
                "message.part.updated",
                json!({"sessionID": "s", "part": part}),
            );
            let Event::MessagePartUpdated { part, .. } = decoded else {
                panic!()
            };
            part.kind
        };
        let open = PartKind::Reasoning {
            text: "hm".into(),
            ended: false,
        };
        assert_eq!(part(json!({"start": 1})), open);
        let ended = PartKind::Reasoning {
            text: "hm".into(),
            ended: true,
        };
        assert_eq!(part(json!({"start": 1, "end": 2})), ended);
    }

    #[test]
    fn unknown_types_keep_their_properties_and_session() {
        let decoded = event("todo.updated", json!({"sessionID": "ses_9", "todos": []}));
        assert_eq!(decoded.session_id(), Some("ses_9"));
        assert!(matches!(decoded, Event::Unknown { ref kind, .. } if kind == "todo.updated"));
    }

    #[test]
    fn a_known_type_of_an_unexpected_shape_becomes_unknown() {
        let decoded = event("session.idle", json!({"session": "ses_1"}));
        assert!(matches!(decoded, Event::Unknown { ref kind, .. } if kind == "session.idle"));
    }

    #[test]
    fn catalogue_and_plugin_notices_are_typed() {
        assert_eq!(
            event("plugin.added", json!({"id": "core/x"})),
            Event::PluginAdded {
                id: "core/x".into()
            }
        );
        let decoded = event("installation.update-available", json!({"version": "2"}));
        assert!(matches!(decoded, Event::CatalogUpdated { .. }));
    }

    #[test]
    fn permission_and_question_events_decode() {
        let asked = json!({"id": "per_1", "sessionID": "ses_1", "permission": "bash",
            "patterns": ["rm *"], "metadata": {}, "always": [], "tool": {"messageID": "m", "callID": "c"}});
        let Event::PermissionAsked(request) = event("permission.asked", asked) else {
            panic!()
        };
        assert_eq!(
            (request.id.as_str(), request.patterns.as_slice()),
            ("per_1", &["rm *".to_owned()][..])
        );
        let question = json!({"id": "que_1", "sessionID": "ses_1",
            "questions": [{"question": "Which?", "header": "Pick", "options": []}]});
        let Event::QuestionAsked(request) = event("question.asked", question) else {
            panic!()
        };
        assert_eq!(request.questions[0].question, "Which?");
        let rejected = event(
            "question.rejected",
            json!({"sessionID": "ses_1", "requestID": "que_1"}),
        );
        assert_eq!(rejected.session_id(), Some("ses_1"));
    }

    #[test]
    fn data_that_is_not_an_event_is_an_error() {
        assert!(Event::from_json("not json").is_err());
        assert!(Event::from_json(r#"{"properties": {}}"#).is_err());
    }
}
