//! The HTTP contract of the mock model server, driven with a real HTTP client over loopback and
//! with request bodies OpenCode 1.18.33 really sent (trimmed copies in `tests/fixtures/`).

// The helpers below are test code too: a failed unwrap there is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use evals_mock_model::{
    MockConfig, MockServer, SCENARIOS, Script, ScriptedError, ScriptedToolCall, TOOL_COMMAND, Turn,
    serve,
};
use serde_json::{Value, json};

const KEY: &str = "sk-mock-test-key";

const SOLVER_PROMPT: &str = "Add a greeting.\n\n<files>\n\
    <file path=\"App.tsx\">export default function App() {\n  return null;\n}\n</file>\n\
    <file path=\"src/util.ts\">export const x = \"</file> inside\";</file>\n</files>";

const JUDGE_PROMPT: &str = "Judge only from the submitted files.\n\n<requirements>\n\
    <requirement><id>renders-app</id><weight>1</weight>\
    <description>Must export `App`.</description></requirement>\n\
    <requirement><id>uses-flatlist</id><weight>2</weight>\
    <description>Must render `FlatList` with `getItemLayout`.</description></requirement>\n\
    </requirements>\n\n<files>\n\
    <file path=\"App.tsx\">export default function App() { return <FlatList />; }</file>\n</files>";

// ---- helpers ----------------------------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["body"].clone()
}

/// A fixture body aimed at `model`, with the last user message replaced by `prompt` if given.
fn fixture_for(name: &str, model: &str, prompt: Option<&str>) -> Value {
    let mut body = fixture(name);
    body["model"] = json!(model);
    if let Some(prompt) = prompt {
        let messages = body["messages"].as_array_mut().unwrap();
        let user = messages
            .iter_mut()
            .rev()
            .find(|m| m["role"] == "user")
            .unwrap();
        user["content"] = json!(prompt);
    }
    body
}

fn client() -> reqwest::Client {
    // Loopback only: never let a proxy from the environment see the traffic.
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(server: &MockServer, body: &Value) -> reqwest::Response {
    post_as(server, body, None).await
}

async fn post_as(server: &MockServer, body: &Value, session: Option<&str>) -> reqwest::Response {
    let url = format!("{}/chat/completions", server.base_url());
    let mut request = client().post(url).bearer_auth(KEY).json(body);
    if let Some(session) = session {
        request = request.header("x-session-id", session);
    }
    request.send().await.unwrap()
}

/// What a streamed answer reassembles to.
#[derive(Debug, Default)]
struct Streamed {
    text: String,
    /// (id, name, arguments) per tool call index.
    calls: Vec<(String, String, String)>,
    finish_reason: String,
    usage: Value,
}

impl Streamed {
    fn single_call(&self) -> (String, Value) {
        assert_eq!(self.calls.len(), 1, "{self:?}");
        let (_, name, arguments) = &self.calls[0];
        (name.clone(), serde_json::from_str(arguments).unwrap())
    }
}

/// The `data:` payloads of an event stream; fails unless every frame is exactly one `data:`
/// line and the last one is `[DONE]`.
fn frames(body: &str) -> Vec<String> {
    assert!(body.ends_with("\n\n"), "{body:?}");
    let frames: Vec<String> = body
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|frame| {
            assert!(!frame.contains('\n'), "one line per frame: {frame:?}");
            frame
                .strip_prefix("data: ")
                .expect("every frame is a data frame")
                .to_owned()
        })
        .collect();
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    frames
}

async fn stream(response: reqwest::Response) -> Streamed {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    reassemble(&frames(&response.text().await.unwrap()))
}

fn reassemble(frames: &[String]) -> Streamed {
    let mut streamed = Streamed::default();
    for frame in &frames[..frames.len() - 1] {
        let chunk: Value = serde_json::from_str(frame).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        let choice = &chunk["choices"][0];
        streamed.text += choice["delta"]["content"].as_str().unwrap_or_default();
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            add_call_delta(&mut streamed.calls, call);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            streamed.finish_reason = reason.to_owned();
            streamed.usage = chunk["usage"].clone();
        }
    }
    streamed
}

/// The first delta of a call carries its id and name; later ones only argument pieces.
fn add_call_delta(calls: &mut Vec<(String, String, String)>, delta: &Value) {
    let index = delta["index"].as_u64().unwrap() as usize;
    if index == calls.len() {
        let id = delta["id"]
            .as_str()
            .expect("the first delta names the call")
            .to_owned();
        let name = delta["function"]["name"].as_str().unwrap().to_owned();
        calls.push((id, name, String::new()));
    }
    calls[index].2 += delta["function"]["arguments"].as_str().unwrap_or_default();
}

async fn start() -> MockServer {
    serve(MockConfig::default()).await.unwrap()
}

// ---- the contract -----------------------------------------------------------------------------

#[tokio::test]
async fn models_lists_every_scenario_and_registered_script() {
    let server = start().await;
    server.register_script("demo", Script::new(vec![Turn::Text("hi".into())]).unwrap());

    let url = format!("{}/models", server.base_url());
    let listing: Value = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();

    let mut expected: Vec<&str> = SCENARIOS.to_vec();
    expected.push("script:demo");
    assert_eq!(ids, expected);
    assert_eq!(listing["object"], "list");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn echo_streams_structured_output_that_returns_the_input_files() {
    let server = start().await;
    let body = fixture_for("structured-request.json", "echo", Some(SOLVER_PROMPT));

    let streamed = stream(post(&server, &body).await).await;

    let (name, arguments) = streamed.single_call();
    assert_eq!(name, "StructuredOutput");
    assert_eq!(
        arguments["files"],
        json!([
            {"path": "App.tsx", "content": "export default function App() {\n  return null;\n}\n"},
            {"path": "src/util.ts", "content": "export const x = \"</file> inside\";"},
        ])
    );
    assert!(arguments["summary"].is_string());
    assert_eq!(streamed.finish_reason, "tool_calls");
    assert_eq!(
        streamed.usage,
        json!({"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110})
    );
    assert!(streamed.text.is_empty());
}

#[tokio::test]
async fn title_requests_get_a_short_title_in_every_scenario() {
    let server = start().await;
    for model in ["echo", "fail-400", "malformed", "keyword-judge"] {
        let streamed =
            stream(post(&server, &fixture_for("title-request.json", model, None)).await).await;
        assert_eq!(streamed.text, "Mock session", "{model}");
        assert_eq!(streamed.finish_reason, "stop");
        assert!(streamed.calls.is_empty());
    }
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.title && !r.offers_tools())
    );
}

#[tokio::test]
async fn echo_ends_the_turn_after_a_tool_result() {
    let server = start().await;
    let streamed = stream(
        post(
            &server,
            &fixture_for("tool-result-request.json", "echo", None),
        )
        .await,
    )
    .await;
    assert_eq!(streamed.text, "Done.");
    assert_eq!(streamed.finish_reason, "stop");
}

#[tokio::test]
async fn echo_without_the_structured_output_tool_answers_plain_text() {
    let server = start().await;
    let streamed =
        stream(post(&server, &fixture_for("tools-request.json", "echo", None)).await).await;
    assert_eq!(
        streamed.text,
        "echo: Create the file out.txt in the workspace containing the word hi, then say done."
    );
    assert_eq!(streamed.finish_reason, "stop");
}

#[tokio::test]
async fn non_streaming_requests_get_one_json_completion() {
    let server = start().await;
    let mut body = fixture_for("structured-request.json", "echo", Some(SOLVER_PROMPT));
    body["stream"] = json!(false);
    let response = post(&server, &body).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "StructuredOutput");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["files"][0]["path"], "App.tsx");

    // Without `stream` at all, the answer is JSON too.
    let body = json!({"model": "echo", "messages": [{"role": "user", "content": "hi there"}]});
    let completion: Value = post(&server, &body).await.json().await.unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "echo: hi there"
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn keyword_judge_passes_requirements_whose_names_are_in_the_files() {
    let server = start().await;
    let body = fixture_for(
        "structured-request.json",
        "keyword-judge",
        Some(JUDGE_PROMPT),
    );
    let (name, verdict) = stream(post(&server, &body).await).await.single_call();
    assert_eq!(name, "StructuredOutput");

    let rows = verdict["requirements"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "renders-app");
    assert_eq!(rows[0]["passed"], true);
    assert_eq!(rows[1]["id"], "uses-flatlist");
    assert_eq!(rows[1]["passed"], false);
    assert_eq!(
        rows[1]["reason"],
        "missing `getItemLayout`; found `FlatList`"
    );
    assert_eq!(
        rows[1]["evidence"],
        json!([
            "`FlatList` found in App.tsx",
            "`getItemLayout` not found in any file"
        ])
    );
    assert_eq!(rows[1]["confidence"], 0.9);

    // Without the tool, the same object arrives in a fenced block.
    let body = fixture_for("tools-request.json", "keyword-judge", Some(JUDGE_PROMPT));
    let streamed = stream(post(&server, &body).await).await;
    assert_eq!(fenced(&streamed.text), verdict);
    assert_eq!(streamed.finish_reason, "stop");
}

#[tokio::test]
async fn no_structured_answers_fenced_json_even_when_the_tool_is_offered() {
    let server = start().await;

    let solver = fixture_for(
        "structured-request.json",
        "no-structured",
        Some(SOLVER_PROMPT),
    );
    let streamed = stream(post(&server, &solver).await).await;
    assert!(streamed.calls.is_empty());
    assert_eq!(fenced(&streamed.text)["files"][1]["path"], "src/util.ts");

    let judge = fixture_for(
        "structured-request.json",
        "no-structured",
        Some(JUDGE_PROMPT),
    );
    let streamed = stream(post(&server, &judge).await).await;
    assert_eq!(
        fenced(&streamed.text)["requirements"][0]["id"],
        "renders-app"
    );
}

fn fenced(text: &str) -> Value {
    let inner = text
        .split("```json\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    serde_json::from_str(inner).unwrap()
}

#[tokio::test]
async fn tool_then_answer_runs_bash_then_answers_after_the_result() {
    let server = start().await;
    let mut body = fixture_for(
        "structured-request.json",
        "tool-then-answer",
        Some(SOLVER_PROMPT),
    );

    let first = stream(post(&server, &body).await).await;
    let (name, arguments) = first.single_call();
    assert_eq!(name, "bash");
    assert_eq!(arguments["command"], TOOL_COMMAND);
    assert!(arguments["description"].is_string());
    assert_eq!(first.finish_reason, "tool_calls");

    // Hand the call back the way OpenCode does (see tool-result-request.json).
    let (id, _, raw_arguments) = first.calls[0].clone();
    let messages = body["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": "", "tool_calls": [
        {"id": id, "type": "function", "function": {"name": "bash", "arguments": raw_arguments}}]}));
    messages.push(json!({"role": "tool", "tool_call_id": id, "content": "(no output)"}));

    let (name, answer) = stream(post(&server, &body).await).await.single_call();
    assert_eq!(name, "StructuredOutput");
    assert_eq!(answer["files"][0]["path"], "App.tsx");
}

#[tokio::test]
async fn fail_scenarios_answer_openai_error_bodies() {
    let server = start().await;
    let body = fixture_for("tools-request.json", "fail-400", None);
    let response = post(&server, &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fail-400")
    );

    let body = fixture_for("tools-request.json", "fail-500", None);
    for _ in 0..2 {
        let response = post(&server, &body).await;
        assert_eq!(response.status(), 500);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "server_error");
    }
}

#[tokio::test]
async fn malformed_streams_data_that_is_not_json() {
    let server = start().await;
    let response = post(
        &server,
        &fixture_for("tools-request.json", "malformed", None),
    )
    .await;
    assert_eq!(response.status(), 200);
    let frames = frames(&response.text().await.unwrap());
    assert_eq!(frames.len(), 2);
    assert!(
        serde_json::from_str::<Value>(&frames[0]).is_err(),
        "{frames:?}"
    );
}

#[tokio::test]
async fn slow_waits_before_the_first_byte_then_answers_as_echo() {
    let server = start().await;
    let body = fixture_for("structured-request.json", "slow-200", Some(SOLVER_PROMPT));
    let started = Instant::now();
    let response = post(&server, &body).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let (name, _) = stream(response).await.single_call();
    assert_eq!(name, "StructuredOutput");
}

#[tokio::test]
async fn slow_without_a_delay_uses_the_configured_default() {
    let server = serve(MockConfig::default().with_slow_delay(Duration::from_millis(150)))
        .await
        .unwrap();
    let started = Instant::now();
    let response = post(&server, &fixture_for("tools-request.json", "slow", None)).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_slow_request() {
    let server = start().await;
    let body = fixture_for("tools-request.json", "slow-60000", None);
    let url = format!("{}/chat/completions", server.base_url());
    let pending = tokio::spawn(async move { client().post(url).json(&body).send().await });
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    server.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let answer = pending.await.unwrap();
    assert!(answer.map_or(true, |r| r.status() == 503));
}

#[tokio::test]
async fn scripts_play_one_turn_per_request_per_session_and_skip_titles() {
    let script = Script::new(vec![
        Turn::ToolCalls(vec![ScriptedToolCall {
            name: "bash".into(),
            arguments: json!({"command": "ls"}),
        }]),
        Turn::Text("all done".into()),
        Turn::Error(ScriptedError {
            status: 429,
            message: Some("slow down".into()),
        }),
    ])
    .unwrap();
    let server = serve(MockConfig::default().with_script("flow", script))
        .await
        .unwrap();
    let body = fixture_for("tools-request.json", "script:flow", None);
    let title = fixture_for("title-request.json", "script:flow", None);

    let (name, arguments) = stream(post_as(&server, &body, Some("ses_a")).await)
        .await
        .single_call();
    assert_eq!(
        (name.as_str(), arguments),
        ("bash", json!({"command": "ls"}))
    );
    assert_eq!(
        stream(post_as(&server, &title, Some("ses_a")).await)
            .await
            .text,
        "Mock session"
    );
    assert_eq!(
        stream(post_as(&server, &body, Some("ses_a")).await)
            .await
            .text,
        "all done"
    );

    let error = post_as(&server, &body, Some("ses_a")).await;
    assert_eq!(error.status(), 429);
    assert_eq!(
        error.json::<Value>().await.unwrap()["error"]["message"],
        "slow down"
    );
    let exhausted = post_as(&server, &body, Some("ses_a")).await;
    assert_eq!(exhausted.status(), 400);

    // Another session starts from the first turn.
    let (name, _) = stream(post_as(&server, &body, Some("ses_b")).await)
        .await
        .single_call();
    assert_eq!(name, "bash");
}

#[tokio::test]
async fn script_files_load_from_a_folder_by_file_stem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hello.json"),
        r#"[{"text": "hello from a file"}]"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a script").unwrap();

    let config = MockConfig::default().with_script_dir(dir.path()).unwrap();
    let server = serve(config).await.unwrap();
    assert_eq!(
        server.model_ids().last().map(String::as_str),
        Some("script:hello")
    );
    let body = fixture_for("tools-request.json", "script:hello", None);
    assert_eq!(
        stream(post(&server, &body).await).await.text,
        "hello from a file"
    );

    std::fs::write(dir.path().join("broken.json"), "[{\"text\": 1}]").unwrap();
    let error = MockConfig::default()
        .with_script_dir(dir.path())
        .unwrap_err();
    assert!(error.to_string().contains("broken.json"), "{error}");
}

#[tokio::test]
async fn every_request_is_recorded_with_model_tools_and_authorization() {
    let server = start().await;
    post_as(
        &server,
        &fixture_for("structured-request.json", "echo", Some(SOLVER_PROMPT)),
        Some("ses_1"),
    )
    .await;
    client()
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let chat = &requests[0];
    assert_eq!(
        (chat.method.as_str(), chat.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(chat.model.as_deref(), Some("echo"));
    assert!(chat.offers_tool("StructuredOutput") && chat.offers_tool("bash"));
    assert_eq!(chat.tools.len(), 12);
    assert!(chat.stream && !chat.title);
    assert_eq!(chat.session_id.as_deref(), Some("ses_1"));
    assert_eq!(
        chat.authorization.as_deref(),
        Some("Bearer sk-mock-test-key")
    );
    assert_eq!(chat.bearer_token(), Some(KEY));
    assert!(chat.body.as_ref().unwrap()["messages"].is_array());
    assert!(!format!("{chat:?}").contains(KEY));

    let models = &requests[1];
    assert_eq!(
        (models.method.as_str(), models.path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(models.authorization, None);
    assert!(models.received_at >= chat.received_at);

    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn unknown_models_and_routes_get_404_and_bad_bodies_400() {
    let server = start().await;
    let unknown = post(&server, &json!({"model": "gpt-4", "messages": []})).await;
    assert_eq!(unknown.status(), 404);
    let missing_script = post(&server, &json!({"model": "script:nope", "messages": []})).await;
    assert_eq!(missing_script.status(), 404);

    let url = format!("{}/chat/completions", server.base_url());
    let not_json = client().post(&url).body("{oops").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    let no_model = client()
        .post(&url)
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_model.status(), 400);
    let wrong_method = client().get(&url).send().await.unwrap();
    assert_eq!(wrong_method.status(), 404);
    let elsewhere = client()
        .get(format!("http://{}/health", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);

    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths.len(),
        6,
        "every request is recorded, answered or not: {paths:?}"
    );
}

#[tokio::test]
async fn a_given_port_is_used_and_a_dropped_server_stops_listening() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let server = serve(MockConfig::default().with_port(port)).await.unwrap();
    assert_eq!(server.addr().to_string(), format!("127.0.0.1:{port}"));
    assert_eq!(server.base_url(), format!("http://127.0.0.1:{port}/v1"));
    let url = format!("{}/models", server.base_url());
    assert!(
        client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    drop(server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "still listening after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() {
    let first = start().await;
    let port = first.addr().port();
    let error = serve(MockConfig::default().with_port(port))
        .await
        .unwrap_err();
    assert!(
        matches!(error, evals_mock_model::Error::Bind { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("cannot listen on `127.0.0.1:{port}`")
    );
}
