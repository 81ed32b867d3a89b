//! The pure half of a trace: the values its lines carry and how each one is written.
//!
//! Nothing here reads the clock or touches the runtime. The runner fills these values from what
//! it knows (OpenCode's session status and messages, its own phase results), and each one
//! displays as the `key=value` fragment it contributes to a line.

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

/// The most characters of a failure reason or error message a line keeps; more are cut.
pub const REASON_MAX_CHARS: usize = 160;

/// The most characters of a text or reasoning preview a heartbeat keeps; more are cut.
pub const PREVIEW_MAX_CHARS: usize = 60;

/// A step of a model call; each is bounded by the call's per-phase timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The prompt asking for the server's native JSON-schema output.
    StructuredOutput,
    /// The second prompt asking for plain JSON in the reply text.
    JsonFallback,
}

impl Phase {
    /// The phase's name in trace lines: `structured-output` or `json-fallback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::StructuredOutput => "structured-output",
            Phase::JsonFallback => "json-fallback",
        }
    }
}

impl Display for Phase {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a phase or a whole call ended.
///
/// Displays as `outcome=completed`, `outcome=failed reason="..."` (the reason cut at
/// [`REASON_MAX_CHARS`]), `outcome=timed-out` or `outcome=aborted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It produced what was asked.
    Completed,
    /// It ended with an error, described by the reason.
    Failed(String),
    /// The per-phase timeout ran out.
    TimedOut,
    /// It was cancelled from outside (an interrupt, a fail-fast run).
    Aborted,
}

impl Display for Outcome {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed => f.write_str("outcome=completed"),
            Outcome::Failed(reason) => write!(f, "outcome=failed reason={}", Reason(reason)),
            Outcome::TimedOut => f.write_str("outcome=timed-out"),
            Outcome::Aborted => f.write_str("outcome=aborted"),
        }
    }
}

/// A session's status as OpenCode's `GET /session/status` reports it.
///
/// Displays as `status=idle`, `status=busy`, `status=retry attempt=N reason="..."` or
/// `status=unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// No turn is running.
    Idle,
    /// A turn is running.
    Busy,
    /// OpenCode is retrying a failed model request on its own.
    Retry {
        /// Which retry this is, from 1.
        attempt: u32,
        /// Why the previous request failed.
        message: String,
    },
    /// The status could not be told.
    Unknown,
}

impl Display for SessionStatus {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SessionStatus::Idle => f.write_str("status=idle"),
            SessionStatus::Busy => f.write_str("status=busy"),
            SessionStatus::Retry { attempt, message } => {
                write!(
                    f,
                    "status=retry attempt={attempt} reason={}",
                    Reason(message)
                )
            }
            SessionStatus::Unknown => f.write_str("status=unknown"),
        }
    }
}

/// The state of a tool call, as OpenCode names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolState {
    /// Called but not started.
    Pending,
    /// Running now.
    Running,
    /// Finished with a result.
    Completed,
    /// Finished with an error.
    Error,
}

impl Display for ToolState {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ToolState::Pending => "pending",
            ToolState::Running => "running",
            ToolState::Completed => "completed",
            ToolState::Error => "error",
        })
    }
}

/// The latest thing the assistant did in a session.
///
/// Displays as `activity=none`, `activity=tool tool=NAME state=STATE`,
/// `activity=text text="..."`, `activity=reasoning text="..."` (previews cut at
/// [`PREVIEW_MAX_CHARS`]) or `activity=error error="NAME: MESSAGE"` (cut at [`REASON_MAX_CHARS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Nothing yet.
    None,
    /// A tool call.
    Tool {
        /// The tool's name, such as `bash`.
        tool: String,
        /// Where the call stands.
        state: ToolState,
    },
    /// Reply text.
    Text(String),
    /// Reasoning text.
    Reasoning(String),
    /// An error on the assistant message, such as OpenCode's `APIError`.
    Error {
        /// The error's name.
        name: String,
        /// The error's message.
        message: String,
    },
}

impl Display for Activity {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Activity::None => f.write_str("activity=none"),
            Activity::Tool { tool, state } => {
                write!(f, "activity=tool tool={} state={state}", Quoted(tool))
            }
            Activity::Text(text) => write!(f, "activity=text text={}", Preview(text)),
            Activity::Reasoning(text) => write!(f, "activity=reasoning text={}", Preview(text)),
            Activity::Error { name, message } => {
                write!(
                    f,
                    "activity=error error={}",
                    Reason(&format!("{name}: {message}"))
                )
            }
        }
    }
}

/// What a heartbeat reports about the session, as the runner's probe saw it.
///
/// Displays as `<status> messages=N <activity>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// The session's status.
    pub status: SessionStatus,
    /// How many messages the session holds.
    pub messages: usize,
    /// The latest assistant activity.
    pub activity: Activity,
}

impl Display for StatusSnapshot {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} messages={} {}",
            self.status, self.messages, self.activity
        )
    }
}

/// A value written bare when it is plain, or as a quoted, escaped string when it is empty or
/// holds whitespace, control characters, `"`, `\` or `=`, so every line splits into `key=value`
/// pairs.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let special =
            |c: char| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '=');
        if self.0.is_empty() || self.0.contains(special) {
            write!(f, "{:?}", self.0)
        } else {
            f.write_str(self.0)
        }
    }
}

/// A failure reason: flattened to one line, cut at [`REASON_MAX_CHARS`], quoted if needed.
pub(crate) struct Reason<'a>(pub(crate) &'a str);

impl Display for Reason<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        Quoted(&cut(self.0, REASON_MAX_CHARS)).fmt(f)
    }
}

/// A text preview: flattened to one line, cut at [`PREVIEW_MAX_CHARS`], always quoted.
struct Preview<'a>(&'a str);

impl Display for Preview<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", cut(self.0, PREVIEW_MAX_CHARS))
    }
}

/// A duration in whole milliseconds with its unit, `1500ms`.
pub(crate) struct Millis(pub(crate) Duration);

impl Display for Millis {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

/// Collapses every run of whitespace to one space, so a line stays one line, then keeps the
/// first `max` characters and marks a cut with `…`.
fn cut(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted() {
        assert_eq!(Quoted("mock/echo").to_string(), "mock/echo");
        assert_eq!(Quoted("/tmp/a b").to_string(), r#""/tmp/a b""#);
        assert_eq!(Quoted("").to_string(), r#""""#);
        assert_eq!(Quoted(r#"a"b\c"#).to_string(), r#""a\"b\\c""#);
        assert_eq!(Quoted("k=v").to_string(), r#""k=v""#);
    }

    #[test]
    fn cut_flattens_lines_and_marks_what_it_drops() {
        assert_eq!(cut("  one\n\ttwo  ", 10), "one two");
        assert_eq!(cut("abcdef", 6), "abcdef");
        assert_eq!(cut("abcdefg", 6), "abcdef…");
        assert_eq!(cut("ééééé", 2), "éé…");
    }

    #[test]
    fn failure_reasons_are_cut_at_160_characters() {
        let line = Outcome::Failed("x".repeat(200)).to_string();
        assert_eq!(line, format!("outcome=failed reason={}…", "x".repeat(160)));
    }

    #[test]
    fn outcomes_display_as_fragments() {
        assert_eq!(Outcome::Completed.to_string(), "outcome=completed");
        assert_eq!(Outcome::TimedOut.to_string(), "outcome=timed-out");
        assert_eq!(Outcome::Aborted.to_string(), "outcome=aborted");
        assert_eq!(
            Outcome::Failed("invalid object: missing `files`".into()).to_string(),
            r#"outcome=failed reason="invalid object: missing `files`""#
        );
    }

    #[test]
    fn statuses_display_as_fragments() {
        let retry = SessionStatus::Retry {
            attempt: 2,
            message: "upstream exploded".into(),
        };
        insta::assert_snapshot!(retry, @r#"status=retry attempt=2 reason="upstream exploded""#);
        assert_eq!(SessionStatus::Idle.to_string(), "status=idle");
        assert_eq!(SessionStatus::Busy.to_string(), "status=busy");
        assert_eq!(SessionStatus::Unknown.to_string(), "status=unknown");
    }

    #[test]
    fn activities_display_as_fragments() {
        let tool = Activity::Tool {
            tool: "bash".into(),
            state: ToolState::Running,
        };
        let text = Activity::Text(format!("Here is the plan:\n{}", "word ".repeat(20)));
        let error = Activity::Error {
            name: "APIError".into(),
            message: "bad request".into(),
        };
        let all = [
            Activity::None,
            tool,
            text,
            Activity::Reasoning("hmm".into()),
            error,
        ];
        let lines = all
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(lines, @r#"
        activity=none
        activity=tool tool=bash state=running
        activity=text text="Here is the plan: word word word word word word word word wo…"
        activity=reasoning text="hmm"
        activity=error error="APIError: bad request"
        "#);
    }

    #[test]
    fn a_snapshot_lists_status_messages_and_activity() {
        let snapshot = StatusSnapshot {
            status: SessionStatus::Busy,
            messages: 3,
            activity: Activity::Tool {
                tool: "write".into(),
                state: ToolState::Completed,
            },
        };
        insta::assert_snapshot!(snapshot, @"status=busy messages=3 activity=tool tool=write state=completed");
    }
}
