//! Per-call diagnostics: start and stop, phases and heartbeats.
//!
//! With `--verbose`, every model call of the runner (a solver or judge call for one eval,
//! against one OpenCode server in one container) is traced by a [`CallTrace`]. The trace takes
//! plain values and writes whole lines through a caller-given [`Sink`]; it learns what the
//! session is doing from a caller-given [`Probe`], so it never talks to OpenCode itself.
//!
//! # Line format
//!
//! Every line is a prefix, an event word, then `key=value` pairs:
//!
//! ```text
//! [opencode-trace][worker I/N][EVAL][LABEL] EVENT key=value ...
//! ```
//!
//! A value is written bare unless it is empty or holds whitespace, a control character, `"`,
//! `\` or `=`; then it is a double-quoted string with Rust's escapes (`"/tmp/my dir"`).
//! Durations are whole milliseconds with their unit (`elapsed=3000ms`); `elapsed` always counts
//! from the call's start, `took` from the phase's start. Reasons and error messages are
//! flattened to one line and cut at [`REASON_MAX_CHARS`] characters, text previews at
//! [`PREVIEW_MAX_CHARS`]; a cut ends with `…`.
//!
//! | event | keys |
//! |---|---|
//! | `start` | `model port timeout workspace prompt_bytes` (`timeout` is per phase) |
//! | `phase-start` | `phase elapsed` |
//! | `session` | `id elapsed`, once per call |
//! | `heartbeat` | `phase elapsed remaining`, a [`StatusSnapshot`] or `status=unknown reason` |
//! | `phase-end` | `phase outcome [reason] elapsed took` |
//! | `stop` | `outcome [reason] elapsed` |
//!
//! `phase` is `structured-output`, `json-fallback`, or `none` in a heartbeat outside a phase
//! (which then has no `remaining`). `outcome` is `completed`, `failed` (with `reason`),
//! `timed-out` or `aborted`. A snapshot is `status=idle|busy|retry|unknown` (a retry adds
//! `attempt` and `reason`), `messages=N`, and `activity=none|tool|text|reasoning|error` with
//! `tool` and `state`, `text`, or `error` beside it. For example:
//!
//! ```text
//! [opencode-trace][worker 1/4][basic/hello][solver] start model=mock/echo port=41234 timeout=120000ms workspace=/tmp/evals-opencode-abc prompt_bytes=1234
//! [opencode-trace][worker 1/4][basic/hello][solver] phase-start phase=structured-output elapsed=0ms
//! [opencode-trace][worker 1/4][basic/hello][solver] session id=ses_abc elapsed=250ms
//! [opencode-trace][worker 1/4][basic/hello][solver] heartbeat phase=structured-output elapsed=3000ms remaining=117000ms status=busy messages=2 activity=tool tool=bash state=running
//! [opencode-trace][worker 1/4][basic/hello][solver] phase-end phase=structured-output outcome=completed elapsed=4100ms took=4100ms
//! [opencode-trace][worker 1/4][basic/hello][solver] stop outcome=completed elapsed=4100ms
//! ```
//!
//! # Heartbeats
//!
//! A heartbeat is printed every [`HEARTBEAT_PERIOD`] after the start, at 3 s, 6 s, 9 s and so
//! on, by a tokio task the trace owns; [`CallTrace::stop`] and dropping the trace end it, and no
//! line follows either. Once the session id is known, the probe is asked about it
//! [`PROBE_TIMEOUT`] before each heartbeat is due; a probe that fails or has not answered by then
//! gives `status=unknown` with the reason, and the line is printed on time all the same.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use evals_trace::{
//!     Activity, CallInfo, CallTrace, Outcome, Phase, Probe, SessionStatus, Sink, StatusSnapshot,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let info = CallInfo {
//!     label: "solver".into(),
//!     eval_id: "basic/hello".into(),
//!     worker: 1,
//!     workers: 4,
//!     model: "mock/echo".into(),
//!     port: 41234,
//!     phase_timeout: Duration::from_secs(120),
//!     workspace: "/tmp/evals-opencode-abc".into(),
//!     prompt_bytes: 1234,
//! };
//! let sink: Sink = Arc::new(|line: &str| eprintln!("{line}"));
//! // The runner asks the OpenCode server here; this one always sees an idle session.
//! let probe = Probe::new(|_session_id: String| async {
//!     let snapshot =
//!         StatusSnapshot { status: SessionStatus::Idle, messages: 0, activity: Activity::None };
//!     Ok::<_, std::io::Error>(snapshot)
//! });
//!
//! let trace = CallTrace::start(&info, sink, probe);
//! trace.phase_start(Phase::StructuredOutput);
//! trace.session("ses_abc");
//! trace.phase_end(&Outcome::Completed);
//! trace.stop(&Outcome::Completed);
//! # }
//! ```

mod call;
mod format;

pub use call::{CallInfo, CallTrace, HEARTBEAT_PERIOD, PROBE_TIMEOUT, Probe, ProbeFuture, Sink};
pub use format::{
    Activity, Outcome, PREVIEW_MAX_CHARS, Phase, REASON_MAX_CHARS, SessionStatus, StatusSnapshot,
    ToolState,
};
