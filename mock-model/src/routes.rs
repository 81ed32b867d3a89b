//! The HTTP routes: `POST /v1/chat/completions`, `GET /v1/models`, and a fallback that answers
//! everything else with an OpenAI-style 404. Every request is recorded before it is answered.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::debug;

use crate::chunks::{self, DONE, Envelope, MALFORMED_DATA};
use crate::record::RecordedRequest;
use crate::reply::{Reply, TITLE};
use crate::request::ChatRequest;
use crate::scenario::Scenario;
use crate::server::AppState;

/// The header OpenCode names its session in; scripts count turns per session.
const SESSION_HEADER: &str = "x-session-id";

type Shared = State<Arc<AppState>>;

/// The server's routes over shared state.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(chat_completions).fallback(not_found),
        )
        .route("/v1/models", get(list_models).fallback(not_found))
        .fallback(not_found)
        .with_state(state)
}

async fn chat_completions(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = header(&headers, SESSION_HEADER);
    let parsed = parse_chat(&body);
    let mut record = record_of(&method, &uri, &headers);
    if let Ok((request, value)) = &parsed {
        record = record.with_chat(request, value.clone(), session);
    }
    remember(&state, record);

    let request = match parsed {
        Ok((request, _)) => request,
        Err(message) => return error_response(400, &message),
    };
    let (delay, reply) = decide(&state, &request, session);
    if !delay.is_zero() && !state.wait(delay).await {
        return error_response(503, "the mock model server is stopping");
    }
    let envelope = Envelope::new(state.next_completion(), &request.model);
    render(reply, request.streams(), &envelope)
}

async fn list_models(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    remember(&state, record_of(&method, &uri, &headers));
    let models: Vec<Value> = state.model_ids().iter().map(|id| model_entry(id)).collect();
    Json(json!({"object": "list", "data": models})).into_response()
}

fn model_entry(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "evals-mock-model"})
}

async fn not_found(State(state): Shared, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    remember(&state, record_of(&method, &uri, &headers));
    let message = format!(
        "the mock model server has no route `{method} {}`",
        uri.path()
    );
    error_response(404, &message)
}

/// The request's JSON and its chat view, or why the body is neither.
fn parse_chat(body: &[u8]) -> Result<(ChatRequest, Value), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON: {e}"))?;
    let request = ChatRequest::deserialize(&value)
        .map_err(|e| format!("the request body is not a chat request: {e}"))?;
    Ok((request, value))
}

/// How long to wait, then what to answer.
fn decide(state: &AppState, request: &ChatRequest, session: Option<&str>) -> (Duration, Reply) {
    let Some(scenario) = state.scenario(&request.model) else {
        let message = format!(
            "the model `{}` does not exist on the mock model server",
            request.model
        );
        return (Duration::ZERO, Reply::http_error(404, message));
    };
    if request.is_title_request() {
        debug!(model = %request.model, "title request: answering the fixed title");
        return (Duration::ZERO, Reply::text(TITLE));
    }
    let reply = match &scenario {
        Scenario::Script(name) => state.script_reply(name, session),
        builtin => builtin.reply(request),
    };
    debug!(model = %request.model, reply = %reply.summary(), "scenario decided");
    (scenario.delay(state.slow_delay()), reply)
}

fn render(reply: Reply, stream: bool, envelope: &Envelope) -> Response {
    match reply {
        Reply::Answer(answer) if stream => sse(chunks::stream_chunks(envelope, &answer)
            .iter()
            .map(Value::to_string)),
        Reply::Answer(answer) => Json(chunks::completion(envelope, &answer)).into_response(),
        Reply::HttpError { status, message } => error_response(status, &message),
        Reply::Malformed if stream => sse([MALFORMED_DATA.to_owned()]),
        Reply::Malformed => ([(CONTENT_TYPE, "application/json")], MALFORMED_DATA).into_response(),
    }
}

/// An HTTP error with an OpenAI-style body.
fn error_response(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(chunks::error_body(status.as_u16(), message))).into_response()
}

/// An event stream of these `data:` frames, then `data: [DONE]`.
fn sse(frames: impl IntoIterator<Item = String>) -> Response {
    let frames = frames.into_iter().chain([DONE.to_owned()]);
    let events: Vec<Result<Event, Infallible>> =
        frames.map(|data| Ok(Event::default().data(data))).collect();
    Sse::new(futures_util::stream::iter(events)).into_response()
}

fn record_of(method: &Method, uri: &Uri, headers: &HeaderMap) -> RecordedRequest {
    RecordedRequest::new(
        method.as_str(),
        uri.path(),
        header(headers, AUTHORIZATION.as_str()),
    )
}

/// Record a request; the log says whether it carried credentials, never what they are.
fn remember(state: &AppState, record: RecordedRequest) {
    let authorization = if record.authorization.is_some() {
        "present"
    } else {
        "absent"
    };
    debug!(
        method = %record.method,
        path = %record.path,
        model = ?record.model,
        tools = record.tools.len(),
        authorization,
        "request received"
    );
    state.recorder.push(record);
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
