//! A typed HTTP client for the OpenCode 1.18 server (`opencode serve`).
//!
//! The runner starts one server per model call, always on loopback, with a password; this
//! crate is how it talks to that server: readiness probes, sessions, prompts (with structured
//! output), messages, status, abort, diff, replies to permission requests and questions, and
//! the raw bytes of the event stream. It does not parse the event stream (that belongs to
//! `sse-logs`) and it starts nothing.
//!
//! What this client knows about OpenCode 1.18 that its OpenAPI document does not say:
//!
//! - `POST /session/{id}/message` answers 200 even when the model failed; the failure is in
//!   [`AssistantReply::error`].
//! - After a prompt with a `format`, `GET /session/{id}/message` answers 400 for that session:
//!   [`Client::messages`] reports it as [`Error::MessagesUnlistable`], and
//!   [`Client::messages_or_known`] falls back on reading known messages one by one.
//! - Idle sessions are missing from `GET /session/status` ([`Client::session_status`]).
//!
//! Decoding is forgiving: unknown fields are ignored, unknown part types become
//! [`Part::Unknown`], unknown roles, statuses and error names have their own catch-alls. The
//! types a session snapshot stores ([`SessionInfo`], [`MessageWithParts`], [`AssistantReply`],
//! [`FileDiff`]) keep the JSON the server sent and serialize back to exactly that.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use evals_opencode_client::{Client, Error, ModelRef, PromptRequest};
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize)]
//! struct Answer {
//!     summary: String,
//! }
//!
//! async fn ask(password: &str) -> Result<String, Error> {
//!     let client = Client::new("http://127.0.0.1:4096", password)?;
//!     client.health(Duration::from_secs(2)).await?;
//!
//!     let session = client.create_session("solver: hello-world").await?;
//!     let schema = json!({
//!         "type": "object",
//!         "properties": {"summary": {"type": "string"}},
//!         "required": ["summary"]
//!     });
//!     let request = PromptRequest::text("Summarize the task.")
//!         .with_model(ModelRef::new("mock", "mock-model"))
//!         .with_json_schema(schema, 2);
//!     let reply = client.prompt(&session.id, &request).await?;
//!     let answer: Answer = reply.structured()?;
//!
//!     // The session's messages can no longer be listed; read the ones we know.
//!     let listing = client.messages_or_known(&session.id, reply.message_ids()).await?;
//!     assert!(!listing.listed);
//!     Ok(answer.summary)
//! }
//! ```

mod api;
mod ask;
mod client;
mod error;
mod lenient;
mod message;
mod part;
mod prompt;
mod session;

pub use ask::{
    PermissionReply, PermissionRequest, QuestionInfo, QuestionOption, QuestionRequest, ToolCallRef,
};
pub use client::{Client, DEFAULT_REQUEST_TIMEOUT, DEFAULT_USERNAME};
pub use error::{Error, MAX_BODY_CHARS};
pub use message::{
    AssistantMessage, AssistantReply, CacheTokens, MessageError, MessageErrorKind, MessageInfo,
    MessageListing, MessageTime, MessageWithParts, Tokens, UserMessage,
};
pub use part::{
    FilePart, Part, PartIds, PartTime, PatchPart, ReasoningPart, StepFinishPart, StepStartPart,
    TextPart, ToolPart, ToolState, ToolStatus, UnknownPart, concat_text,
};
pub use prompt::{ModelRef, OutputFormat, PartInput, PromptRequest};
pub use session::{FileDiff, Health, SessionInfo, SessionStatus, SessionTime};
