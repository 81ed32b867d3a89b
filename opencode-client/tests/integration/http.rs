//! The client over HTTP, against the stand-in server: authentication, endpoints and bodies,
//! error answers, the 400 after structured output, timeouts and the streamed event bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use evals_opencode_client::{
    Client, Error, MAX_BODY_CHARS, PermissionReply, PromptRequest, SessionStatus,
};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::fixture;
use crate::standin::{Recorded, Reply, StandIn};

const PASSWORD: &str = "s3cret";
/// `opencode:s3cret` in base64.
const DEFAULT_AUTH: &str = "Basic b3BlbmNvZGU6czNjcmV0";
/// `runner:s3cret` in base64.
const RUNNER_AUTH: &str = "Basic cnVubmVyOnMzY3JldA==";

const SESSION: &str = "ses_dc3e05759ffe2kRjq2BJby63z3";

fn json_reply(path: &str) -> Reply {
    Reply::Json(200, fixture(path))
}

/// Answers every endpoint the client knows with a capture or a plausible body.
fn opencode(request: &Recorded) -> Reply {
    let session = format!("/session/{SESSION}");
    let path = request.path.as_str();
    let sub = path.strip_prefix(&session);
    match (request.method.as_str(), path, sub) {
        ("GET", "/global/health", _) => {
            Reply::Json(200, r#"{"healthy":true,"version":"1.18.33"}"#.into())
        }
        ("POST", "/session", _) => json_reply("03-structured/session_create.json"),
        ("GET", "/session/status", _) => Reply::Json(
            200,
            format!(r#"{{"{SESSION}":{{"type":"retry","attempt":2,"message":"m","next":5}}}}"#),
        ),
        ("GET", "/permission", _) => Reply::Json(200, "[]".into()),
        ("GET", "/question", _) => Reply::Json(200, "[]".into()),
        ("POST", p, _) if p.starts_with("/permission/") || p.starts_with("/question/") => {
            Reply::Json(200, "true".into())
        }
        ("GET", "/event", _) => Reply::Stream {
            chunks: vec!["data: {}\n\n".into()],
            gate: Arc::new(Notify::new()),
        },
        (_, _, Some("")) => json_reply("03-structured/session_create.json"),
        ("POST", _, Some("/message")) => json_reply("03-structured/prompt_response.json"),
        ("POST", _, Some("/prompt_async")) => Reply::Empty(204),
        ("GET", _, Some("/message")) => {
            Reply::Json(400, fixture("03-structured/messages_answer_400.json"))
        }
        ("GET", _, Some(m)) if m.starts_with("/message/msg_23c1faf04") => {
            json_reply("03-structured/assistant_message.json")
        }
        ("GET", _, Some(m)) if m.starts_with("/message/") => {
            Reply::Json(400, fixture("03-structured/messages_answer_400.json"))
        }
        ("POST", _, Some("/abort")) => Reply::Json(200, "true".into()),
        ("GET", _, Some("/diff")) => Reply::Json(200, "[]".into()),
        _ => Reply::Json(
            404,
            r#"{"name":"NotFoundError","data":{"message":"no route"}}"#.into(),
        ),
    }
}

fn client(standin: &StandIn) -> Client {
    Client::new(&standin.base, PASSWORD).unwrap()
}

#[derive(Debug, Deserialize, PartialEq)]
struct Answer {
    answer: String,
    count: u32,
}

fn structured_request() -> PromptRequest {
    let captured: Value =
        serde_json::from_str(&fixture("03-structured/prompt_request.json")).unwrap();
    PromptRequest::text(captured["parts"][0]["text"].as_str().unwrap())
        .with_json_schema(captured["format"]["schema"].clone(), 1)
}

/// Calls every endpoint once, in a fixed order.
async fn call_everything(client: &Client) {
    let ask = PromptRequest::text("hi");
    client.health(Duration::from_secs(2)).await.unwrap();
    client.create_session("solver: one").await.unwrap();
    client.session(SESSION).await.unwrap();
    client.prompt(SESSION, &ask).await.unwrap();
    client.prompt_async(SESSION, &ask).await.unwrap();
    client.messages(SESSION).await.unwrap_err();
    client
        .message(SESSION, "msg_23c1faf04001NTAOXyyYc9VPuU")
        .await
        .unwrap();
    client.status().await.unwrap();
    client.abort(SESSION).await.unwrap();
    client.diff(SESSION).await.unwrap();
    client.permissions().await.unwrap();
    client
        .reply_permission("per_1", PermissionReply::Reject, Some("not here"))
        .await
        .unwrap();
    client.questions().await.unwrap();
    client
        .reply_question("que_1", &[vec!["A".to_owned()]])
        .await
        .unwrap();
    client.reject_question("que_2").await.unwrap();
    client
        .events()
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn every_request_carries_basic_auth_and_hits_its_endpoint() {
    let standin = StandIn::start(opencode).await;
    call_everything(&client(&standin)).await;

    let requests = standin.requests();
    for request in &requests {
        assert_eq!(
            request.authorization.as_deref(),
            Some(DEFAULT_AUTH),
            "{request:?}"
        );
    }
    let lines: Vec<String> = requests
        .iter()
        .map(|r| {
            format!("{} {} {}", r.method, r.path, r.body)
                .trim_end()
                .to_owned()
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"), @r#"
    GET /global/health
    POST /session {"title":"solver: one"}
    GET /session/ses_dc3e05759ffe2kRjq2BJby63z3
    POST /session/ses_dc3e05759ffe2kRjq2BJby63z3/message {"parts":[{"type":"text","text":"hi"}]}
    POST /session/ses_dc3e05759ffe2kRjq2BJby63z3/prompt_async {"parts":[{"type":"text","text":"hi"}]}
    GET /session/ses_dc3e05759ffe2kRjq2BJby63z3/message
    GET /session/ses_dc3e05759ffe2kRjq2BJby63z3/message/msg_23c1faf04001NTAOXyyYc9VPuU
    GET /session/status
    POST /session/ses_dc3e05759ffe2kRjq2BJby63z3/abort
    GET /session/ses_dc3e05759ffe2kRjq2BJby63z3/diff
    GET /permission
    POST /permission/per_1/reply {"reply":"reject","message":"not here"}
    GET /question
    POST /question/que_1/reply {"answers":[["A"]]}
    POST /question/que_2/reject
    GET /event
    "#);
}

#[tokio::test]
async fn a_custom_user_name_is_sent() {
    let standin = StandIn::start(opencode).await;
    let client = client(&standin).with_username("runner");
    client.health(Duration::from_secs(2)).await.unwrap();
    let _events = client.events().await.unwrap();
    for request in standin.requests() {
        assert_eq!(request.authorization.as_deref(), Some(RUNNER_AUTH));
    }
}

#[tokio::test]
async fn error_answers_carry_method_path_status_and_a_truncated_body() {
    let standin = StandIn::start(|_| Reply::Json(500, "é".repeat(2_000))).await;
    let err = client(&standin).session("ses_x").await.unwrap_err();
    let Error::Status {
        method,
        path,
        status,
        body,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*method, path.as_str(), *status),
        ("GET", "/session/ses_x", 500)
    );
    assert_eq!(body.chars().count(), MAX_BODY_CHARS);
    assert_eq!(err.status(), Some(500));
    assert!(
        err.to_string()
            .starts_with("`GET /session/ses_x` answered 500: éééé"),
        "{err}"
    );
}

#[tokio::test]
async fn a_structured_prompt_sends_the_format_and_returns_the_object() {
    let standin = StandIn::start(opencode).await;
    let reply = client(&standin)
        .prompt(SESSION, &structured_request())
        .await
        .unwrap();
    assert_eq!(
        reply.structured::<Answer>().unwrap(),
        Answer {
            answer: "hi".into(),
            count: 1
        }
    );

    let sent: Value = serde_json::from_str(&standin.requests()[0].body).unwrap();
    let captured: Value =
        serde_json::from_str(&fixture("03-structured/prompt_request.json")).unwrap();
    assert_eq!(sent, captured);
}

#[tokio::test]
async fn after_structured_output_messages_are_read_one_by_one() {
    let standin = StandIn::start(opencode).await;
    let client = client(&standin);
    let reply = client.prompt(SESSION, &structured_request()).await.unwrap();

    let err = client.messages(SESSION).await.unwrap_err();
    assert!(
        matches!(&err, Error::MessagesUnlistable { session_id, body }
        if session_id == SESSION && body.contains("OutputFormatJsonSchema")),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(400));

    // The user message is unreadable too in this stand-in; the assistant one is read.
    let listing = client
        .messages_or_known(SESSION, reply.message_ids())
        .await
        .unwrap();
    assert!(!listing.listed && !listing.is_complete());
    let ids: Vec<_> = listing.messages.iter().map(|m| m.id().unwrap()).collect();
    assert_eq!(ids, [reply.id()]);
    let (unreadable_id, unreadable_err) = &listing.unreadable[0];
    assert_eq!(
        (unreadable_id.as_str(), unreadable_err.status()),
        ("msg_23c1faab2001BcsnwvtRREFJSo", Some(400))
    );

    let structured = listing.messages[0].clone().into_assistant_reply().unwrap();
    assert_eq!(structured.structured::<Answer>().unwrap().count, 1);
}

#[tokio::test]
async fn a_listable_session_is_listed_by_the_server() {
    let standin = StandIn::start(|r| match r.path.ends_with("/message") {
        true => json_reply("01-basic/messages.json"),
        false => Reply::Json(404, String::new()),
    })
    .await;
    let listing = client(&standin)
        .messages_or_known("ses_1", ["msg_never_read"])
        .await
        .unwrap();
    assert!(listing.listed && listing.is_complete());
    assert_eq!(listing.messages.len(), 3);
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn a_failed_model_call_is_a_typed_error_in_a_200() {
    let standin = StandIn::start(|_| json_reply("04-error-http400/prompt_response.json")).await;
    let reply = client(&standin)
        .prompt("ses_1", &PromptRequest::text("hi"))
        .await
        .unwrap();
    assert_eq!(reply.error().and_then(|e| e.status_code()), Some(400));
    assert!(matches!(reply.structured::<Answer>(), Err(Error::Model(_))));
}

#[tokio::test]
async fn the_event_stream_yields_bytes_as_they_arrive() {
    let frames: Vec<String> = fixture("01-basic/events_head.sse")
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    let gate = Arc::new(Notify::new());
    let (chunks, server_gate) = (frames.clone(), gate.clone());
    let standin = StandIn::start(move |_| Reply::Stream {
        chunks: chunks.clone(),
        gate: server_gate.clone(),
    })
    .await;

    let mut events = Box::pin(client(&standin).events().await.unwrap());
    // The server holds the rest back until the first frame got through: a client that
    // buffered the body would wait forever here.
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap();
    assert_eq!(first.unwrap().unwrap(), frames[0].as_bytes());
    gate.notify_one();

    let mut rest = Vec::new();
    while let Some(chunk) = events.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(String::from_utf8(rest).unwrap(), frames[1..].concat());
}

#[tokio::test]
async fn an_event_stream_refused_is_an_error_at_once() {
    let standin = StandIn::start(|_| Reply::Json(401, "Unauthorized".into())).await;
    let Err(err) = client(&standin).events().await else {
        panic!("no error")
    };
    assert_eq!(
        (err.status(), err.to_string().as_str()),
        (Some(401), "`GET /event` answered 401: Unauthorized")
    );
}

#[tokio::test]
async fn a_hanging_health_probe_times_out_on_the_callers_deadline() {
    let standin = StandIn::start(|_| Reply::Hang).await;
    let started = Instant::now();
    let err = client(&standin)
        .health(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        err.to_string(),
        "`GET /global/health` timed out after 200ms"
    );
}

#[tokio::test]
async fn a_hanging_prompt_times_out_only_when_asked_to() {
    let standin = StandIn::start(|_| Reply::Hang).await;
    let client = client(&standin).with_request_timeout(Duration::from_millis(100));
    let request = PromptRequest::text("hi");

    let bounded = client.prompt_with_timeout("ses_1", &request, Duration::from_millis(200));
    assert!(bounded.await.unwrap_err().is_timeout());
    // Without a timeout of its own the prompt outlives the short request timeout.
    let unbounded =
        tokio::time::timeout(Duration::from_millis(500), client.prompt("ses_1", &request));
    assert!(unbounded.await.is_err(), "the prompt ended on its own");
}

#[tokio::test]
async fn undecodable_answers_name_the_endpoint() {
    let standin = StandIn::start(|_| Reply::Json(200, "<html>".into())).await;
    let err = client(&standin).diff("ses_1").await.unwrap_err();
    assert!(
        matches!(&err, Error::Decode { path, .. } if path == "/session/ses_1/diff"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "could not decode the answer of `GET /session/ses_1/diff`"
    );
}

#[tokio::test]
async fn a_session_missing_from_the_status_map_is_idle() {
    let standin = StandIn::start(opencode).await;
    let client = client(&standin);
    assert_eq!(
        client.session_status("ses_other").await.unwrap(),
        SessionStatus::Idle
    );
    let status = client.session_status(SESSION).await.unwrap();
    assert!(
        matches!(status, SessionStatus::Retry { attempt: 2, .. }),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = Client::new(&base, PASSWORD)
        .unwrap()
        .health(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport { method: "GET", .. }),
        "{err:?}"
    );
}
