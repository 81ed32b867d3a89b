//! Every capture of OpenCode 1.18.33 decodes into the client's types, and the types that keep
//! JSON give back exactly what was captured.

use std::path::Path;

use evals_opencode_client::{
    AssistantReply, MessageErrorKind, MessageInfo, MessageWithParts, Part, PermissionRequest,
    PromptRequest, SessionInfo, ToolStatus,
};
use serde::Deserialize;
use serde_json::Value;

use crate::{CAPTURES, fixture};

fn exists(path: &str) -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
        .exists()
}

fn decode<T: serde::de::DeserializeOwned>(path: &str) -> (T, Value) {
    let text = fixture(path);
    let typed = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"));
    (typed, serde_json::from_str(&text).unwrap())
}

/// One line per message: role, error name, and part kinds (tools with name and status).
fn outline(messages: &[MessageWithParts]) -> String {
    let lines: Vec<String> = messages.iter().map(outline_message).collect();
    lines.join(" | ")
}

fn outline_message(message: &MessageWithParts) -> String {
    let role = match &message.info {
        MessageInfo::User(_) => "user".to_owned(),
        MessageInfo::Assistant(info) => match &info.error {
            Some(error) => format!("assistant!{}", error.name),
            None => "assistant".to_owned(),
        },
        _ => "other".to_owned(),
    };
    let parts: Vec<String> = message.parts.iter().map(outline_part).collect();
    format!("{role}[{}]", parts.join(" "))
}

fn outline_part(part: &Part) -> String {
    match part {
        Part::Text(_) => "text".into(),
        Part::Reasoning(_) => "reasoning".into(),
        Part::Tool(tool) => format!("tool:{}:{:?}", tool.tool, tool.state.status),
        Part::StepStart(_) => "step-start".into(),
        Part::StepFinish(step) => format!("step-finish:{}", step.reason),
        Part::File(_) => "file".into(),
        Part::Patch(_) => "patch".into(),
        Part::Unknown(unknown) => format!("UNKNOWN:{}", unknown.kind),
        _ => "NEW".into(),
    }
}

#[test]
fn every_created_session_decodes_and_keeps_its_json() {
    for capture in CAPTURES {
        let path = format!("{capture}/session_create.json");
        let (session, raw): (SessionInfo, Value) = decode(&path);
        assert!(session.id.starts_with("ses_"), "{path}");
        assert_eq!(
            (session.version.as_str(), session.directory.as_str()),
            ("1.18.33", "/workspace")
        );
        assert!(session.time.created > 0 && session.title.starts_with("New session"));
        assert_eq!(serde_json::to_value(&session).unwrap(), raw, "{path}");
    }
}

#[test]
fn every_message_list_decodes_with_known_parts_only() {
    let mut outlines = Vec::new();
    for capture in CAPTURES
        .iter()
        .filter(|c| exists(&format!("{c}/messages.json")))
    {
        let path = format!("{capture}/messages.json");
        let (messages, raw): (Vec<MessageWithParts>, Value) = decode(&path);
        assert_eq!(serde_json::to_value(&messages).unwrap(), raw, "{path}");
        outlines.push(format!("{capture}: {}", outline(&messages)));
    }
    insta::assert_snapshot!(outlines.join("\n"), @r"
    01-basic: user[text] | assistant[step-start tool:bash:Completed step-finish:tool-calls] | assistant[step-start text step-finish:stop]
    04-error-http400: user[text] | assistant!APIError[]
    05-error-malformed: user[text] | assistant!UnknownError[step-start]
    07-error-http500-exhausted: user[text] | assistant!APIError[]
    08-abort: user[text] | assistant!MessageAbortedError[step-start text]
    13-permission-ask: user[text] | assistant[step-start tool:bash:Completed step-finish:tool-calls] | assistant[step-start text step-finish:stop]
    16-write-tool: user[text] | assistant[step-start tool:write:Completed step-finish:tool-calls] | assistant[step-start text step-finish:stop]
    19-grep-tool: user[text] | assistant[step-start tool:grep:Completed step-finish:tool-calls] | assistant[step-start text step-finish:stop]
    ");
}

#[test]
fn every_prompt_response_decodes_as_an_assistant_reply() {
    for capture in CAPTURES
        .iter()
        .filter(|c| exists(&format!("{c}/prompt_response.json")))
    {
        let path = format!("{capture}/prompt_response.json");
        let (reply, raw): (AssistantReply, Value) = decode(&path);
        assert!(reply.id().starts_with("msg_"), "{path}");
        assert_eq!(
            reply.info.parent_id.as_deref().map(|id| &id[..4]),
            Some("msg_")
        );
        assert_eq!(serde_json::to_value(&reply).unwrap(), raw, "{path}");
    }
}

#[test]
fn a_successful_reply_has_text_tokens_and_no_error() {
    let (reply, _): (AssistantReply, Value) = decode("01-basic/prompt_response.json");
    assert_eq!(reply.error(), None);
    assert_eq!(
        reply.text(),
        "Done: wrote /workspace/out.txt (fake model final answer)."
    );
    assert_eq!(
        (reply.info.tokens.total, reply.info.tokens.input),
        (110, 100)
    );
    assert_eq!(reply.info.finish.as_deref(), Some("stop"));
    assert_eq!(reply.info.time.completed, Some(1796304665799));
}

#[test]
fn model_failures_are_typed_errors_in_a_200_reply() {
    let (http400, _): (AssistantReply, Value) = decode("04-error-http400/prompt_response.json");
    let error = http400.error().unwrap();
    assert_eq!(error.kind(), MessageErrorKind::Api);
    assert_eq!(
        (error.status_code(), error.is_retryable()),
        (Some(400), Some(false))
    );
    assert_eq!(
        error.to_string(),
        "APIError (HTTP 400): fake bad request (scenario http400)"
    );

    let (malformed, _): (AssistantReply, Value) = decode("05-error-malformed/prompt_response.json");
    let error = malformed.error_for_model().unwrap_err().to_string();
    assert!(
        error.starts_with("the model call failed: UnknownError: JSON parsing failed"),
        "{error}"
    );
}

#[test]
fn aborted_and_exhausted_messages_carry_their_error_kind() {
    let (aborted, _): (Vec<MessageWithParts>, Value) = decode("08-abort/messages.json");
    let last = aborted.last().unwrap();
    let error = last.as_assistant().unwrap().error.as_ref().unwrap();
    assert_eq!(error.kind(), MessageErrorKind::Aborted);
    assert_eq!(last.text(), "tick 0 tick 1 tick 2 tick 3 ");

    let (exhausted, _): (Vec<MessageWithParts>, Value) =
        decode("07-error-http500-exhausted/messages.json");
    let error = exhausted[1].as_assistant().unwrap().error.clone().unwrap();
    assert_eq!(
        (error.status_code(), error.is_retryable()),
        (Some(500), Some(true))
    );
}

#[derive(Debug, Deserialize, PartialEq)]
struct Answer {
    answer: String,
    count: u32,
}

#[test]
fn structured_output_is_read_from_the_reply_and_from_the_single_message() {
    let (reply, _): (AssistantReply, Value) = decode("03-structured/prompt_response.json");
    let expected = Answer {
        answer: "hi".into(),
        count: 1,
    };
    assert_eq!(reply.structured::<Answer>().unwrap(), expected);
    let Part::Tool(tool) = &reply.parts[1] else {
        panic!("not a tool part")
    };
    assert_eq!(
        (tool.tool.as_str(), tool.state.status),
        ("StructuredOutput", ToolStatus::Completed)
    );

    let (message, _): (MessageWithParts, Value) = decode("03-structured/assistant_message.json");
    let from_message = message.into_assistant_reply().unwrap();
    assert_eq!(from_message.structured::<Answer>().unwrap(), expected);
    assert_eq!(from_message.id(), reply.id());
}

#[test]
fn the_message_list_400_names_the_format_field() {
    let body: Value =
        serde_json::from_str(&fixture("03-structured/messages_answer_400.json")).unwrap();
    assert_eq!(body["name"], "BadRequest");
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains(r#"["info"]["format"]"#)
    );
}

#[test]
fn abort_and_permission_replies_are_booleans() {
    let (aborted, _): (bool, Value) = decode("08-abort/abort_response.json");
    let (replied, _): (bool, Value) = decode("13-permission-ask/permission_reply_response.json");
    assert!(aborted && replied);
}

#[test]
fn a_permission_asked_event_carries_a_permission_request() {
    let (event, _): (Value, Value) = decode("13-permission-ask/permission_asked_event.json");
    let request = PermissionRequest::deserialize(&event["properties"]).unwrap();
    assert_eq!(request.id, "per_23c1d3dd1001RLLeOEUXY1BKVe");
    assert_eq!(
        (request.permission.as_str(), request.patterns.as_slice()),
        ("external_directory", &["/tmp/*".to_owned()][..])
    );
    assert_eq!(request.metadata["command"], "touch /tmp/outside.txt");
    assert_eq!(request.tool.unwrap().call_id, "call_03a765997a");
}

#[test]
fn a_plain_prompt_serializes_to_the_captured_body() {
    let (captured, _): (Value, Value) = decode("01-basic/prompt_request.json");
    let request = PromptRequest::text(
        "Create the file out.txt in the workspace containing the word hi, then say done.",
    );
    assert_eq!(serde_json::to_value(&request).unwrap(), captured);
}
