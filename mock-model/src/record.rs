//! The record of every request the server received, for tests to read back.
//!
//! The `Authorization` header is kept as received, because proving that a key reached the
//! provider is the point; it is a secret all the same, so `Debug` redacts it and nothing logs it.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::Value;

use crate::request::ChatRequest;

/// One request as the server received it.
#[derive(Clone)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The body's `model`, for chat requests whose body parsed.
    pub model: Option<String>,
    /// The names of the offered tools, in order; empty when none were offered.
    pub tools: Vec<String>,
    /// Whether the request asked for an event stream.
    pub stream: bool,
    /// Whether it was OpenCode's title request.
    pub title: bool,
    /// The `x-session-id` header OpenCode sends, when present.
    pub session_id: Option<String>,
    /// The `Authorization` header, exactly as received. A secret: never log or print it.
    pub authorization: Option<String>,
    /// When the request arrived.
    pub received_at: SystemTime,
    /// The JSON body of a chat request, when it parsed.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// A record of the request line and headers; the chat fields stay empty.
    pub(crate) fn new(method: &str, path: &str, authorization: Option<&str>) -> Self {
        RecordedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            model: None,
            tools: Vec::new(),
            stream: false,
            title: false,
            session_id: None,
            authorization: authorization.map(str::to_owned),
            received_at: SystemTime::now(),
            body: None,
        }
    }

    /// The record with the fields a parsed chat request fills in.
    pub(crate) fn with_chat(
        self,
        request: &ChatRequest,
        body: Value,
        session: Option<&str>,
    ) -> Self {
        RecordedRequest {
            model: Some(request.model.clone()),
            tools: request.tool_names(),
            stream: request.streams(),
            title: request.is_title_request(),
            session_id: session.map(str::to_owned),
            body: Some(body),
            ..self
        }
    }

    /// Whether any tool was offered.
    pub fn offers_tools(&self) -> bool {
        !self.tools.is_empty()
    }

    /// Whether a tool of this name was offered.
    pub fn offers_tool(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t == name)
    }

    /// The token of a `Bearer` authorization, when there is one.
    pub fn bearer_token(&self) -> Option<&str> {
        self.authorization.as_deref()?.strip_prefix("Bearer ")
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authorization = self.authorization.as_ref().map(|_| "<redacted>");
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("model", &self.model)
            .field("tools", &self.tools)
            .field("stream", &self.stream)
            .field("title", &self.title)
            .field("session_id", &self.session_id)
            .field("authorization", &authorization)
            .field("received_at", &self.received_at)
            .field("body", &self.body.as_ref().map(|_| "<json>"))
            .finish()
    }
}

/// The shared, append-only list of records.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    records: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl Recorder {
    pub(crate) fn push(&self, record: RecordedRequest) {
        self.lock().push(record);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_authorization_value() {
        let record = RecordedRequest::new("POST", "/v1/chat/completions", Some("Bearer sk-secret"));
        let printed = format!("{record:?}");
        assert!(!printed.contains("sk-secret"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
        assert_eq!(record.bearer_token(), Some("sk-secret"));
    }
}
