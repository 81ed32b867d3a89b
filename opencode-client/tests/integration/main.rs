//! Tests of the OpenCode client: every real capture decodes, and the client behaves over HTTP
//! against a stand-in server on 127.0.0.1.

mod captures;
mod http;
mod standin;

/// The text of a capture under `tests/fixtures/`.
fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|err| panic!("{full}: {err}"))
}

/// The capture folders, in order.
const CAPTURES: [&str; 9] = [
    "01-basic",
    "03-structured",
    "04-error-http400",
    "05-error-malformed",
    "07-error-http500-exhausted",
    "08-abort",
    "13-permission-ask",
    "16-write-tool",
    "19-grep-tool",
];
