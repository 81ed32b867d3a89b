//! The wire form of an answer, as OpenAI's chat-completions API writes it: the chunks of an
//! event stream (a role chunk, content or tool-call deltas, a last chunk with `finish_reason`
//! and `usage`), a whole `chat.completion` object, and the error body.
//!
//! Content and tool-call arguments are split over several chunks on purpose: clients must
//! reassemble them, and a mock that always sent one piece would hide a client that does not.

use std::iter;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::reply::{Answer, ToolCall};

/// The data of the frame that ends an OpenAI event stream.
pub(crate) const DONE: &str = "[DONE]";
/// The data the `malformed` scenario sends: not JSON, as a broken upstream would.
pub(crate) const MALFORMED_DATA: &str = "{this is not json";

/// How many pieces a text or an arguments string is cut into.
const PIECES: usize = 3;
/// Fixed token counts, so usage is deterministic.
const PROMPT_TOKENS: u64 = 100;
const COMPLETION_TOKENS: u64 = 10;

/// What every chunk of one completion shares: its id, model and creation time.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    seq: u64,
    model: String,
    created: u64,
}

impl Envelope {
    /// The envelope of the server's `seq`-th completion, answering as `model`.
    pub(crate) fn new(seq: u64, model: &str) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Envelope {
            seq,
            model: model.to_owned(),
            created,
        }
    }

    fn id(&self) -> String {
        format!("chatcmpl-mock-{}", self.seq)
    }

    /// Tool call ids are unique per server, so they never collide inside a session.
    fn call_id(&self, index: usize) -> String {
        format!("call_mock_{}_{index}", self.seq)
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        })
    }
}

/// The chunks of a streamed answer, each the data of one `data:` frame (without `[DONE]`).
pub(crate) fn stream_chunks(envelope: &Envelope, answer: &Answer) -> Vec<Value> {
    let mut chunks = vec![envelope.chunk(json!({"role": "assistant"}), None)];
    match answer {
        Answer::Text(text) => {
            let deltas = split(text)
                .into_iter()
                .map(|piece| json!({"content": piece}));
            chunks.extend(deltas.map(|delta| envelope.chunk(delta, None)));
        }
        Answer::ToolCalls(calls) => {
            for (index, call) in calls.iter().enumerate() {
                chunks.extend(tool_call_chunks(envelope, index, call));
            }
        }
    }
    let mut last = envelope.chunk(json!({}), Some(answer.finish_reason()));
    last["usage"] = usage();
    chunks.push(last);
    chunks
}

/// A header chunk with the call's id, name and empty arguments, then the arguments in pieces.
fn tool_call_chunks(envelope: &Envelope, index: usize, call: &ToolCall) -> Vec<Value> {
    let head = json!({
        "index": index,
        "id": envelope.call_id(index),
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    });
    let pieces = split(&call.arguments).into_iter();
    let pieces = pieces.map(|piece| json!({"index": index, "function": {"arguments": piece}}));
    let deltas = iter::once(head).chain(pieces);
    deltas
        .map(|delta| envelope.chunk(json!({"tool_calls": [delta]}), None))
        .collect()
}

/// The whole `chat.completion` object of a non-streamed answer.
pub(crate) fn completion(envelope: &Envelope, answer: &Answer) -> Value {
    let message = match answer {
        Answer::Text(text) => json!({"role": "assistant", "content": text}),
        Answer::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(index, call)| {
                    json!({
                        "id": envelope.call_id(index),
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
            json!({"role": "assistant", "content": null, "tool_calls": calls})
        }
    };
    json!({
        "id": envelope.id(),
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason()}],
        "usage": usage(),
    })
}

/// An OpenAI-style error body: `{"error": {"message", "type", "code"}}`.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    let kind = if status < 500 {
        "invalid_request_error"
    } else {
        "server_error"
    };
    json!({"error": {"message": message, "type": kind, "code": format!("mock_{status}")}})
}

fn usage() -> Value {
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    })
}

/// `text` cut at character boundaries into at most [`PIECES`] pieces; none when empty.
fn split(text: &str) -> Vec<&str> {
    let size = text.chars().count().div_ceil(PIECES).max(1);
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .nth(size)
            .map_or(rest.len(), |(at, _)| at);
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            seq: 7,
            model: "echo".into(),
            created: 1,
        }
    }

    #[test]
    fn split_keeps_characters_whole_and_loses_nothing() {
        assert_eq!(split("héllo wörld"), ["héll", "o wö", "rld"]);
        assert_eq!(split("ab"), ["a", "b"]);
        assert!(split("").is_empty());
    }

    #[test]
    fn tool_call_stream_opens_with_id_and_name_then_sends_argument_pieces() {
        let call = ToolCall {
            name: "bash".into(),
            arguments: r#"{"command":"ls"}"#.into(),
        };
        let chunks = stream_chunks(&envelope(), &Answer::ToolCalls(vec![call]));
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();

        assert_eq!(deltas[0], &json!({"role": "assistant"}));
        let head = &deltas[1]["tool_calls"][0];
        assert_eq!(head["id"], "call_mock_7_0");
        assert_eq!(head["function"], json!({"name": "bash", "arguments": ""}));
        let arguments: String = deltas[2..deltas.len() - 1]
            .iter()
            .map(|d| {
                d["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(arguments, r#"{"command":"ls"}"#);

        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(last["usage"]["total_tokens"], 110);
    }

    #[test]
    fn completion_carries_text_and_finish_reason() {
        let body = completion(&envelope(), &Answer::Text("hi".into()));
        insta::assert_json_snapshot!(body, @r#"
        {
          "choices": [
            {
              "finish_reason": "stop",
              "index": 0,
              "message": {
                "content": "hi",
                "role": "assistant"
              }
            }
          ],
          "created": 1,
          "id": "chatcmpl-mock-7",
          "model": "echo",
          "object": "chat.completion",
          "usage": {
            "completion_tokens": 10,
            "prompt_tokens": 100,
            "total_tokens": 110
          }
        }
        "#);
    }

    #[test]
    fn error_body_types_client_and_server_errors() {
        assert_eq!(
            error_body(400, "bad")["error"]["type"],
            "invalid_request_error"
        );
        assert_eq!(error_body(503, "down")["error"]["type"], "server_error");
        assert_eq!(error_body(503, "down")["error"]["code"], "mock_503");
    }
}
