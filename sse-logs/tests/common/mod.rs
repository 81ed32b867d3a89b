//! The real OpenCode 1.18.33 event streams the integration tests read.

/// Every capture, in order.
pub const FIXTURES: [&str; 9] = [
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

/// The raw bytes of capture `name`'s event stream.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/{name}.events.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}
