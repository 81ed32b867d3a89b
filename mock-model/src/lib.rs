//! A scriptable OpenAI-compatible model server for offline runs.
//!
//! The server listens on `127.0.0.1` and speaks the part of OpenAI's chat-completions API that
//! OpenCode's `@ai-sdk/openai-compatible` provider uses: `POST /v1/chat/completions`, streamed
//! (`data:` frames, tool-call deltas, a last chunk with `finish_reason` and `usage`, then
//! `data: [DONE]`) or not, and `GET /v1/models`. The request's `model` picks a [`Scenario`]:
//! `echo`, `keyword-judge`, `no-structured`, `tool-then-answer`, the fault scenarios
//! `fail-400`, `fail-500`, `malformed` and `slow`/`slow-<ms>`, or a [`Script`] as
//! `script:<name>`. OpenCode's title requests (no tools, the title generator's system prompt)
//! get a fixed short title in every scenario. Every request is recorded and readable through
//! [`MockServer::requests`].
//!
//! OpenCode is pointed at it with [`opencode_provider`] under `provider.mock` and the model
//! `mock/<scenario>` ([`opencode_config`] builds that fragment whole).
//!
//! The crate owns the server and its answers; it starts no OpenCode and no container.
//!
//! ```
//! use evals_mock_model::{MockConfig, Script, Turn, serve};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let script = Script::new(vec![Turn::Text("hello".into())])?;
//! let server = serve(MockConfig::default().with_script("greet", script)).await?;
//!
//! let provider = server.opencode_provider();
//! assert_eq!(provider["npm"], "@ai-sdk/openai-compatible");
//! assert_eq!(provider["options"]["baseURL"], server.base_url());
//! assert!(server.model_ids().contains(&"script:greet".to_owned()));
//!
//! server.shutdown().await?;
//! # Ok::<(), evals_mock_model::Error>(())
//! # }).unwrap();
//! ```

mod answer;
mod chunks;
mod error;
pub mod prompt;
mod provider;
mod record;
mod reply;
mod request;
mod routes;
mod scenario;
mod script;
mod server;

pub use error::Error;
pub use provider::{
    PROVIDER_ID, PROVIDER_NPM, opencode_config, opencode_model, opencode_provider,
    opencode_provider_with_models,
};
pub use record::RecordedRequest;
pub use scenario::{SCENARIOS, SCRIPT_PREFIX, Scenario, TOOL_COMMAND};
pub use script::{Script, ScriptedError, ScriptedToolCall, Turn};
pub use server::{DEFAULT_SLOW_DELAY, MockConfig, MockServer, serve};
