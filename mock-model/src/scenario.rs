//! The built-in scenarios, chosen by the request's model id, and what each answers. Every
//! answer is a function of the request alone, so a scenario is deterministic; scripted
//! scenarios (see [`crate::Script`]) are the only ones that count requests.
//!
//! Title requests never reach these rules: the server answers them with a fixed title in every
//! scenario, as a real provider would answer them whatever the session is about.

use std::time::Duration;

use serde_json::{Value, json};

use crate::answer::{fenced_json, judge_answer, solver_answer};
use crate::prompt::{PromptFile, Requirement, parse_files, parse_requirements};
use crate::reply::Reply;
use crate::request::{ChatRequest, STRUCTURED_OUTPUT_TOOL};

/// The model ids of the built-in scenarios, as listed by `GET /v1/models` and put into the
/// OpenCode provider config. `slow` also answers as `slow-<ms>`, and scripts as `script:<name>`.
pub const SCENARIOS: [&str; 8] = [
    "echo",
    "keyword-judge",
    "no-structured",
    "tool-then-answer",
    "fail-400",
    "fail-500",
    "malformed",
    "slow",
];

/// The model id prefix that selects a scripted scenario: `script:<name>`.
pub const SCRIPT_PREFIX: &str = "script:";

const SLOW_PREFIX: &str = "slow-";

/// The command `tool-then-answer` runs through OpenCode's `bash` tool, in the workspace.
pub const TOOL_COMMAND: &str = "echo hello > tool-output.txt";

/// A scenario: how the server answers requests for one model id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// The solver's happy path: the input files back, through `StructuredOutput`.
    Echo,
    /// A judge that passes a requirement when its backtick-quoted names occur in the files.
    KeywordJudge,
    /// Never calls a tool; answers JSON in a fenced block, for the json-fallback path.
    NoStructured,
    /// A `bash` tool call first, then the answer once its result is back.
    ToolThenAnswer,
    /// HTTP 400 with an OpenAI-style error body.
    Fail400,
    /// HTTP 500, every time.
    Fail500,
    /// HTTP 200 with an event stream whose data is not JSON.
    Malformed,
    /// Waits before the first byte, then answers as `echo`; `None` takes the server's default.
    Slow(Option<Duration>),
    /// A scripted scenario, by script name.
    Script(String),
}

impl Scenario {
    /// The scenario a model id selects, or `None` when it names none. Whether a named script
    /// exists is the server's business, not the parser's.
    pub fn parse(model_id: &str) -> Option<Self> {
        if let Some(name) = model_id.strip_prefix(SCRIPT_PREFIX) {
            return (!name.is_empty()).then(|| Scenario::Script(name.to_owned()));
        }
        if let Some(millis) = model_id.strip_prefix(SLOW_PREFIX) {
            let millis: u64 = millis.parse().ok()?;
            return Some(Scenario::Slow(Some(Duration::from_millis(millis))));
        }
        let scenario = match model_id {
            "echo" => Scenario::Echo,
            "keyword-judge" => Scenario::KeywordJudge,
            "no-structured" => Scenario::NoStructured,
            "tool-then-answer" => Scenario::ToolThenAnswer,
            "fail-400" => Scenario::Fail400,
            "fail-500" => Scenario::Fail500,
            "malformed" => Scenario::Malformed,
            "slow" => Scenario::Slow(None),
            _ => return None,
        };
        Some(scenario)
    }

    /// The model id that selects this scenario.
    pub fn model_id(&self) -> String {
        let id = match self {
            Scenario::Echo => "echo",
            Scenario::KeywordJudge => "keyword-judge",
            Scenario::NoStructured => "no-structured",
            Scenario::ToolThenAnswer => "tool-then-answer",
            Scenario::Fail400 => "fail-400",
            Scenario::Fail500 => "fail-500",
            Scenario::Malformed => "malformed",
            Scenario::Slow(None) => "slow",
            Scenario::Slow(Some(delay)) => return format!("{SLOW_PREFIX}{}", delay.as_millis()),
            Scenario::Script(name) => return format!("{SCRIPT_PREFIX}{name}"),
        };
        id.to_owned()
    }

    /// How long to wait before the first byte.
    pub(crate) fn delay(&self, slow_default: Duration) -> Duration {
        match self {
            Scenario::Slow(delay) => delay.unwrap_or(slow_default),
            _ => Duration::ZERO,
        }
    }

    /// The reply of a built-in scenario; scripts are answered by the server, which keeps
    /// their turn counters.
    pub(crate) fn reply(&self, request: &ChatRequest) -> Reply {
        match self {
            // A script reaching this point has no turn to play; echo keeps the answer sane.
            Scenario::Echo | Scenario::Slow(_) | Scenario::Script(_) => echo(request),
            Scenario::KeywordJudge => keyword_judge(request),
            Scenario::NoStructured => Reply::text(fenced_json(&payload(request))),
            Scenario::ToolThenAnswer => tool_then_answer(request),
            Scenario::Fail400 => Reply::http_error(400, "mock bad request (scenario fail-400)"),
            Scenario::Fail500 => {
                Reply::http_error(500, "mock upstream failure (scenario fail-500)")
            }
            Scenario::Malformed => Reply::Malformed,
        }
    }
}

/// The text that ends a turn once a tool result is back.
const DONE_TEXT: &str = "Done.";

fn echo(request: &ChatRequest) -> Reply {
    if request.ends_with_tool_result() {
        return Reply::text(DONE_TEXT);
    }
    if request.offers(STRUCTURED_OUTPUT_TOOL) {
        let files = latest_block(request, parse_files).unwrap_or_default();
        return Reply::tool_call(STRUCTURED_OUTPUT_TOOL, &solver_answer(&files));
    }
    Reply::text(echo_text(request))
}

/// `echo: ` and the first line of the latest user message, cut to a readable length.
fn echo_text(request: &ChatRequest) -> String {
    let latest = request.user_texts_latest_first().next().unwrap_or_default();
    let line: String = latest
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    format!("echo: {line}")
}

fn keyword_judge(request: &ChatRequest) -> Reply {
    if request.ends_with_tool_result() {
        return Reply::text(DONE_TEXT);
    }
    match judge_payload(request) {
        Some(payload) => structured_or_fenced(request, &payload),
        None => echo(request),
    }
}

fn tool_then_answer(request: &ChatRequest) -> Reply {
    match request.answered_tool() {
        Some("bash") => structured_or_fenced(request, &payload(request)),
        _ if request.ends_with_tool_result() => Reply::text(DONE_TEXT),
        _ => Reply::tool_call("bash", &bash_arguments()),
    }
}

/// The arguments of OpenCode's `bash` tool: `command` (required) and a `description`, the shape
/// OpenCode itself records for a bash call.
fn bash_arguments() -> Value {
    json!({"command": TOOL_COMMAND, "description": "Write tool-output.txt in the workspace"})
}

fn structured_or_fenced(request: &ChatRequest, payload: &Value) -> Reply {
    if request.offers(STRUCTURED_OUTPUT_TOOL) {
        Reply::tool_call(STRUCTURED_OUTPUT_TOOL, payload)
    } else {
        Reply::text(fenced_json(payload))
    }
}

/// The judge object when the prompt is a judge prompt, else the solver object.
fn payload(request: &ChatRequest) -> Value {
    judge_payload(request)
        .unwrap_or_else(|| solver_answer(&latest_block(request, parse_files).unwrap_or_default()))
}

fn judge_payload(request: &ChatRequest) -> Option<Value> {
    let requirements: Vec<Requirement> = latest_block(request, parse_requirements)?;
    let files: Vec<PromptFile> = latest_block(request, parse_files).unwrap_or_default();
    Some(judge_answer(&requirements, &files))
}

/// A block from the latest user message that holds one: a follow-up prompt in the same
/// session (the runner's json-fallback) need not repeat the files.
fn latest_block<T>(request: &ChatRequest, parse: fn(&str) -> Option<Vec<T>>) -> Option<Vec<T>> {
    request
        .user_texts_latest_first()
        .find_map(|text| parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{Answer, ToolCall};

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    fn tools(names: &[&str]) -> Value {
        let tools: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "function", "function": {"name": n}}))
            .collect();
        Value::Array(tools)
    }

    fn single_call(reply: Reply) -> (String, Value) {
        let Reply::Answer(Answer::ToolCalls(calls)) = reply else {
            panic!("{reply:?}")
        };
        let [ToolCall { name, arguments }] = calls.as_slice() else {
            panic!("{calls:?}")
        };
        (name.clone(), serde_json::from_str(arguments).unwrap())
    }

    #[test]
    fn every_builtin_model_id_round_trips() {
        for id in SCENARIOS.iter().copied().chain(["slow-250", "script:a"]) {
            assert_eq!(Scenario::parse(id).unwrap().model_id(), id);
        }
        assert_eq!(
            Scenario::parse("slow-3000"),
            Some(Scenario::Slow(Some(Duration::from_secs(3))))
        );
        for id in ["gpt-4", "slow-", "slow-x", "script:", ""] {
            assert_eq!(Scenario::parse(id), None, "{id}");
        }
    }

    #[test]
    fn echo_answers_structured_output_from_the_latest_files_block() {
        let body = json!({"model": "echo", "tools": tools(&["bash", "StructuredOutput"]),
        "messages": [
            {"role": "user", "content": "Do it.\n<files><file path=\"a.txt\">A</file></files>"},
            {"role": "user", "content": "Now as JSON, please."},
        ]});
        let (name, arguments) = single_call(Scenario::Echo.reply(&request(body)));
        assert_eq!(name, "StructuredOutput");
        assert_eq!(
            arguments["files"],
            json!([{"path": "a.txt", "content": "A"}])
        );
    }

    #[test]
    fn echo_without_the_tool_echoes_the_prompt_as_text() {
        let body = json!({"model": "echo", "tools": tools(&["bash"]),
            "messages": [{"role": "user", "content": "first line\nsecond"}]});
        assert_eq!(
            Scenario::Echo.reply(&request(body)),
            Reply::text("echo: first line")
        );
    }

    #[test]
    fn tool_then_answer_calls_bash_then_answers_after_its_result() {
        let first = json!({"model": "m", "tools": tools(&["bash", "StructuredOutput"]),
            "messages": [{"role": "user", "content": "<files><file path=\"f\">x</file></files>"}]});
        let (name, arguments) = single_call(Scenario::ToolThenAnswer.reply(&request(first)));
        assert_eq!(name, "bash");
        assert_eq!(arguments["command"], TOOL_COMMAND);

        let second = json!({"model": "m", "tools": tools(&["bash", "StructuredOutput"]),
        "messages": [
            {"role": "user", "content": "<files><file path=\"f\">x</file></files>"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "bash", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": ""},
        ]});
        let (name, arguments) = single_call(Scenario::ToolThenAnswer.reply(&request(second)));
        assert_eq!(name, "StructuredOutput");
        assert_eq!(arguments["files"][0]["path"], "f");
    }

    #[test]
    fn a_result_of_the_structured_output_call_ends_the_turn() {
        let body = json!({"model": "m", "tools": tools(&["bash", "StructuredOutput"]),
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "StructuredOutput", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "captured"},
        ]});
        let request = request(body);
        for scenario in [
            Scenario::Echo,
            Scenario::KeywordJudge,
            Scenario::ToolThenAnswer,
        ] {
            assert_eq!(
                scenario.reply(&request),
                Reply::text("Done."),
                "{scenario:?}"
            );
        }
    }

    #[test]
    fn fault_scenarios_answer_errors() {
        let body = request(json!({"model": "m", "messages": []}));
        assert!(matches!(
            Scenario::Fail400.reply(&body),
            Reply::HttpError { status: 400, .. }
        ));
        assert!(matches!(
            Scenario::Fail500.reply(&body),
            Reply::HttpError { status: 500, .. }
        ));
        assert_eq!(Scenario::Malformed.reply(&body), Reply::Malformed);
        assert_eq!(
            Scenario::Slow(None).delay(Duration::from_secs(10)),
            Duration::from_secs(10)
        );
        assert_eq!(
            Scenario::Echo.delay(Duration::from_secs(10)),
            Duration::ZERO
        );
    }
}
