//! One model call's trace: its lines, its phase clock and its heartbeat task.
//!
//! A [`CallTrace`] writes every line through the caller's [`Sink`] and owns one tokio task that
//! prints a heartbeat every [`HEARTBEAT_PERIOD`] until the trace is stopped or dropped. The
//! session's state comes from the caller's [`Probe`], so this crate never talks to OpenCode.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until, timeout_at};
use tracing::debug;

use crate::format::{Millis, Outcome, Phase, Quoted, Reason, StatusSnapshot};

/// How often a running call prints a heartbeat.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(3);

/// How long a heartbeat waits for the probe before it reports `status=unknown`.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

// The probe runs inside the period, so it must be shorter than it.
const _: () = assert!(PROBE_TIMEOUT.as_nanos() < HEARTBEAT_PERIOD.as_nanos());

/// Where trace lines go: called once per line, without a trailing newline.
///
/// It is called while the trace holds its lock, so it must not call back into the trace.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// The future a [`Probe`] returns: a snapshot, or why there is none.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<StatusSnapshot, String>> + Send>>;

/// Asks, for a session id, what the session is doing now; called once per heartbeat.
///
/// It may be slow or fail: the heartbeat waits at most [`PROBE_TIMEOUT`] and then drops it.
pub struct Probe(Box<dyn Fn(String) -> ProbeFuture + Send + Sync>);

impl Probe {
    /// Wraps an async function of the session id; its error is shown through `Display`.
    pub fn new<F, Fut, E>(probe: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<StatusSnapshot, E>> + Send + 'static,
        E: fmt::Display,
    {
        Self(Box::new(move |session| {
            let answer = probe(session);
            Box::pin(async move { answer.await.map_err(|error| error.to_string()) })
        }))
    }
}

/// What the trace states about a call when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// Which kind of call: `solver`, `judge`.
    pub label: String,
    /// The eval's id.
    pub eval_id: String,
    /// The worker slot running the call, from 1.
    pub worker: usize,
    /// How many worker slots the run has.
    pub workers: usize,
    /// The model, `PROVIDER/MODEL`.
    pub model: String,
    /// The host port of the call's OpenCode server.
    pub port: u16,
    /// The timeout of each phase.
    pub phase_timeout: Duration,
    /// The session workspace on the host.
    pub workspace: PathBuf,
    /// The size of the prompt, in bytes.
    pub prompt_bytes: usize,
}

/// The trace of one model call: prints its lines and runs its heartbeat.
///
/// Dropping it, or [`CallTrace::stop`], ends the heartbeat task; no line follows either.
pub struct CallTrace {
    shared: Arc<Shared>,
    heartbeat: JoinHandle<()>,
}

/// What the call's methods and its heartbeat task both read.
struct Shared {
    prefix: String,
    sink: Sink,
    phase_timeout: Duration,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    phase: Option<(Phase, Instant)>,
    session: Option<String>,
    stopped: bool,
}

impl CallTrace {
    /// Prints the `start` line and starts the heartbeat; the call's clock starts now.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`] does.
    pub fn start(info: &CallInfo, sink: Sink, probe: Probe) -> Self {
        let shared = Arc::new(Shared {
            prefix: prefix(info),
            sink,
            phase_timeout: info.phase_timeout,
            started: Instant::now(),
            state: Mutex::default(),
        });
        shared.emit(&shared.lock(), format_args!("start {}", start_fields(info)));
        let heartbeat = tokio::spawn(heartbeat(Arc::clone(&shared), probe));
        Self { shared, heartbeat }
    }

    /// Prints `phase-start`; the phase's timeout counts from now.
    pub fn phase_start(&self, phase: Phase) {
        let mut state = self.shared.lock();
        if let Some((open, _)) = state.phase {
            debug!(%open, %phase, "a phase started before the open one ended; it replaces it");
        }
        state.phase = Some((phase, Instant::now()));
        let elapsed = Millis(self.shared.started.elapsed());
        self.shared.emit(
            &state,
            format_args!("phase-start phase={phase} elapsed={elapsed}"),
        );
    }

    /// Prints `phase-end` for the open phase with its outcome; ignored when no phase is open.
    pub fn phase_end(&self, outcome: &Outcome) {
        let mut state = self.shared.lock();
        let Some((phase, since)) = state.phase.take() else {
            debug!(%outcome, "a phase ended while none was open; nothing to print");
            return;
        };
        let (elapsed, took) = (
            Millis(self.shared.started.elapsed()),
            Millis(since.elapsed()),
        );
        let line = format_args!("phase-end phase={phase} {outcome} elapsed={elapsed} took={took}");
        self.shared.emit(&state, line);
    }

    /// Prints `session` the first time it is called; the probe is asked about this session.
    pub fn session(&self, id: &str) {
        let mut state = self.shared.lock();
        if let Some(known) = &state.session {
            debug!(
                known,
                id, "the session id is already known; printed once only"
            );
            return;
        }
        state.session = Some(id.to_owned());
        let elapsed = Millis(self.shared.started.elapsed());
        self.shared.emit(
            &state,
            format_args!("session id={} elapsed={elapsed}", Quoted(id)),
        );
    }

    /// Prints `stop` with the call's outcome and ends the heartbeat.
    pub fn stop(self, outcome: &Outcome) {
        let mut state = self.shared.lock();
        let elapsed = Millis(self.shared.started.elapsed());
        self.shared
            .emit(&state, format_args!("stop {outcome} elapsed={elapsed}"));
        state.stopped = true;
    }
}

impl Drop for CallTrace {
    fn drop(&mut self) {
        // The flag, set under the lock that every line is printed under, keeps out a heartbeat
        // that is already past its last await; the abort ends the task at its next one.
        self.shared.lock().stopped = true;
        self.heartbeat.abort();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a sink cannot leave the state half-written, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, state: &State, body: fmt::Arguments<'_>) {
        if !state.stopped {
            (self.sink)(&format!("{} {body}", self.prefix));
        }
    }

    /// Asks the probe about the session, giving up at `due`; the error says why there is no
    /// snapshot.
    async fn probe(&self, probe: &Probe, due: Instant) -> Result<StatusSnapshot, String> {
        let session = self.lock().session.clone();
        let Some(session) = session else {
            return Err("no session yet".to_owned());
        };
        match timeout_at(due, (probe.0)(session)).await {
            Ok(answer) => answer.map_err(|error| format!("probe failed: {error}")),
            Err(_) => Err(format!("probe timed out after {}", Millis(PROBE_TIMEOUT))),
        }
    }

    fn emit_heartbeat(&self, probed: &Result<StatusSnapshot, String>) {
        let state = self.lock();
        let elapsed = Millis(self.started.elapsed());
        let clock = match state.phase {
            Some((phase, since)) => {
                let remaining = Millis(self.phase_timeout.saturating_sub(since.elapsed()));
                format!("phase={phase} elapsed={elapsed} remaining={remaining}")
            }
            None => format!("phase=none elapsed={elapsed}"),
        };
        let status = match probed {
            Ok(snapshot) => snapshot.to_string(),
            Err(why) => format!("status=unknown reason={}", Reason(why)),
        };
        self.emit(&state, format_args!("heartbeat {clock} {status}"));
    }
}

/// Prints a heartbeat at every multiple of [`HEARTBEAT_PERIOD`] after the start, forever; the
/// trace aborts it.
///
/// The probe starts [`PROBE_TIMEOUT`] before each heartbeat is due and the line waits for the due
/// time, so a slow probe costs its answer, never the line's timing. The probe is bounded by a
/// timeout shorter than the period, so on a healthy runtime no tick is ever missed and the ticks
/// stay on the grid the interval was anchored to. Only a stalled runtime misses one; then
/// `Delay` prints one late heartbeat and waits a full period for the next, where the default
/// `Burst` would print a volley of catch-up lines and `Skip` one more line shortly after the late
/// one.
async fn heartbeat(shared: Arc<Shared>, probe: Probe) {
    let first_probe = shared.started + HEARTBEAT_PERIOD - PROBE_TIMEOUT;
    let mut ticks = interval_at(first_probe, HEARTBEAT_PERIOD);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let due = Instant::now() + PROBE_TIMEOUT;
        let probed = shared.probe(&probe, due).await;
        sleep_until(due).await;
        shared.emit_heartbeat(&probed);
    }
}

fn prefix(info: &CallInfo) -> String {
    let CallInfo {
        worker,
        workers,
        eval_id,
        label,
        ..
    } = info;
    format!("[opencode-trace][worker {worker}/{workers}][{eval_id}][{label}]")
}

fn start_fields(info: &CallInfo) -> String {
    format!(
        "model={} port={} timeout={} workspace={} prompt_bytes={}",
        Quoted(&info.model),
        info.port,
        Millis(info.phase_timeout),
        Quoted(&info.workspace.to_string_lossy()),
        info.prompt_bytes,
    )
}

#[cfg(test)]
mod tests {
    use std::future;

    use tokio::time::sleep;

    use super::*;
    use crate::format::{Activity, SessionStatus, ToolState};

    type Lines = Arc<Mutex<Vec<String>>>;

    const PREFIX: &str = "[opencode-trace][worker 1/4][basic/hello][solver] ";

    /// A sink that records each line behind the milliseconds since the test began.
    fn capture() -> (Sink, Lines) {
        let lines = Lines::default();
        let (recorded, began) = (Arc::clone(&lines), Instant::now());
        let sink: Sink = Arc::new(move |line: &str| {
            let at = began.elapsed().as_millis();
            recorded.lock().unwrap().push(format!("{at:>5} {line}"));
        });
        (sink, lines)
    }

    /// The lines printed so far, without the prefix every test's call shares.
    fn printed(lines: &Lines) -> String {
        lines.lock().unwrap().join("\n").replace(PREFIX, "")
    }

    fn info(phase_timeout: Duration) -> CallInfo {
        CallInfo {
            label: "solver".into(),
            eval_id: "basic/hello".into(),
            worker: 1,
            workers: 4,
            model: "mock/echo".into(),
            port: 41234,
            phase_timeout,
            workspace: "/tmp/evals-opencode-abc".into(),
            prompt_bytes: 1234,
        }
    }

    fn busy() -> StatusSnapshot {
        let activity = Activity::Tool {
            tool: "bash".into(),
            state: ToolState::Running,
        };
        StatusSnapshot {
            status: SessionStatus::Busy,
            messages: 2,
            activity,
        }
    }

    /// A probe that answers `busy()` after `delay`.
    fn probe_after(delay: Duration) -> Probe {
        Probe::new(move |_| async move {
            sleep(delay).await;
            Ok::<_, String>(busy())
        })
    }

    fn start(phase_timeout: Duration, probe: Probe) -> (CallTrace, Lines) {
        let (sink, lines) = capture();
        (CallTrace::start(&info(phase_timeout), sink, probe), lines)
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_prints_every_line_kind_on_a_three_second_cadence() {
        let (trace, lines) = start(Duration::from_secs(120), probe_after(Duration::ZERO));
        trace.phase_start(Phase::StructuredOutput);
        sleep(Duration::from_millis(250)).await;
        trace.session("ses_abc");
        trace.session("ses_other");
        sleep(Duration::from_millis(4750)).await;
        trace.phase_end(&Outcome::Failed(format!(
            "invalid object:\n{}",
            "x".repeat(170)
        )));
        trace.phase_start(Phase::JsonFallback);
        sleep(Duration::from_secs(5)).await;
        trace.phase_end(&Outcome::Completed);
        trace.stop(&Outcome::Completed);
        sleep(Duration::from_secs(10)).await;

        insta::assert_snapshot!(printed(&lines), @r#"
            0 start model=mock/echo port=41234 timeout=120000ms workspace=/tmp/evals-opencode-abc prompt_bytes=1234
            0 phase-start phase=structured-output elapsed=0ms
          250 session id=ses_abc elapsed=250ms
         3000 heartbeat phase=structured-output elapsed=3000ms remaining=117000ms status=busy messages=2 activity=tool tool=bash state=running
         5000 phase-end phase=structured-output outcome=failed reason="invalid object: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…" elapsed=5000ms took=5000ms
         5000 phase-start phase=json-fallback elapsed=5000ms
         6000 heartbeat phase=json-fallback elapsed=6000ms remaining=119000ms status=busy messages=2 activity=tool tool=bash state=running
         9000 heartbeat phase=json-fallback elapsed=9000ms remaining=116000ms status=busy messages=2 activity=tool tool=bash state=running
        10000 phase-end phase=json-fallback outcome=completed elapsed=10000ms took=5000ms
        10000 stop outcome=completed elapsed=10000ms
        "#);
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_from_the_phase_start_and_stops_at_zero() {
        let (trace, lines) = start(Duration::from_secs(4), probe_after(Duration::ZERO));
        trace.session("ses_abc");
        sleep(Duration::from_secs(1)).await;
        trace.phase_start(Phase::StructuredOutput);
        sleep(Duration::from_millis(5500)).await;
        trace.phase_end(&Outcome::TimedOut);
        trace.phase_start(Phase::JsonFallback);
        sleep(Duration::from_secs(3)).await;
        trace.stop(&Outcome::Aborted);

        insta::assert_snapshot!(printed(&lines), @r"
            0 start model=mock/echo port=41234 timeout=4000ms workspace=/tmp/evals-opencode-abc prompt_bytes=1234
            0 session id=ses_abc elapsed=0ms
         1000 phase-start phase=structured-output elapsed=1000ms
         3000 heartbeat phase=structured-output elapsed=3000ms remaining=2000ms status=busy messages=2 activity=tool tool=bash state=running
         6000 heartbeat phase=structured-output elapsed=6000ms remaining=0ms status=busy messages=2 activity=tool tool=bash state=running
         6500 phase-end phase=structured-output outcome=timed-out elapsed=6500ms took=5500ms
         6500 phase-start phase=json-fallback elapsed=6500ms
         9000 heartbeat phase=json-fallback elapsed=9000ms remaining=1500ms status=busy messages=2 activity=tool tool=bash state=running
         9500 stop outcome=aborted elapsed=9500ms
        ");
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_before_the_session_or_outside_a_phase_say_so() {
        let (trace, lines) = start(Duration::from_secs(120), probe_after(Duration::ZERO));
        sleep(Duration::from_secs(4)).await;
        drop(trace);

        insta::assert_snapshot!(printed(&lines).lines().nth(1).unwrap(), @r#" 3000 heartbeat phase=none elapsed=3000ms status=unknown reason="no session yet""#);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_probe_yields_unknown_and_the_heartbeat_stays_on_time() {
        let (trace, lines) = start(
            Duration::from_secs(120),
            probe_after(Duration::from_secs(5)),
        );
        trace.session("ses_abc");
        sleep(Duration::from_secs(7)).await;
        drop(trace);

        let heartbeats: Vec<_> = printed(&lines).lines().skip(2).map(str::to_owned).collect();
        insta::assert_snapshot!(heartbeats.join("\n"), @r#"
         3000 heartbeat phase=none elapsed=3000ms status=unknown reason="probe timed out after 1000ms"
         6000 heartbeat phase=none elapsed=6000ms status=unknown reason="probe timed out after 1000ms"
        "#);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_answering_within_its_second_is_reported_on_time() {
        let (trace, lines) = start(
            Duration::from_secs(120),
            probe_after(Duration::from_millis(900)),
        );
        trace.session("ses_abc");
        sleep(Duration::from_secs(4)).await;
        drop(trace);

        insta::assert_snapshot!(printed(&lines).lines().nth(2).unwrap(), @" 3000 heartbeat phase=none elapsed=3000ms status=busy messages=2 activity=tool tool=bash state=running");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_probe_yields_unknown_with_its_error() {
        let probe = Probe::new(|_| future::ready(Err::<StatusSnapshot, _>("connection refused")));
        let (trace, lines) = start(Duration::from_secs(120), probe);
        trace.session("ses_abc");
        sleep(Duration::from_secs(4)).await;
        drop(trace);

        insta::assert_snapshot!(printed(&lines).lines().nth(2).unwrap(), @r#" 3000 heartbeat phase=none elapsed=3000ms status=unknown reason="probe failed: connection refused""#);
    }

    #[tokio::test(start_paused = true)]
    async fn the_probe_is_asked_about_the_known_session() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        let probe = Probe::new(move |session| {
            seen.lock().unwrap().push(session);
            future::ready(Ok::<_, String>(busy()))
        });
        let (trace, _lines) = start(Duration::from_secs(120), probe);
        sleep(Duration::from_secs(4)).await;
        trace.session("ses_abc");
        sleep(Duration::from_secs(6)).await;
        drop(trace);

        assert_eq!(*asked.lock().unwrap(), ["ses_abc", "ses_abc"]);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_trace_ends_its_heartbeat_task() {
        let token = Arc::new(());
        let held = Arc::clone(&token);
        let probe = Probe::new(move |_| {
            let _held = &held;
            future::ready(Ok::<_, String>(busy()))
        });
        let (trace, lines) = start(Duration::from_secs(120), probe);
        trace.session("ses_abc");
        sleep(Duration::from_secs(7)).await;
        drop(trace);
        sleep(Duration::from_secs(30)).await;

        assert_eq!(
            Arc::strong_count(&token),
            1,
            "the task and its probe are gone"
        );
        let heartbeats = printed(&lines).matches(" heartbeat ").count();
        assert_eq!(
            heartbeats,
            2,
            "heartbeats at 3 s and 6 s only:\n{}",
            printed(&lines)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_the_trace_ends_its_heartbeat_task() {
        let token = Arc::new(());
        let held = Arc::clone(&token);
        let probe = Probe::new(move |_| {
            let _held = &held;
            future::ready(Ok::<_, String>(busy()))
        });
        let (trace, lines) = start(Duration::from_secs(120), probe);
        trace.session("ses_abc");
        sleep(Duration::from_secs(4)).await;
        trace.stop(&Outcome::Completed);
        sleep(Duration::from_secs(30)).await;

        assert_eq!(
            Arc::strong_count(&token),
            1,
            "the task and its probe are gone"
        );
        assert!(
            printed(&lines)
                .lines()
                .last()
                .unwrap()
                .contains(" stop outcome=completed ")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn values_with_spaces_are_quoted() {
        let (sink, lines) = capture();
        let mut info = info(Duration::from_secs(1));
        info.workspace = "/tmp/my evals/evals-opencode-abc".into();
        drop(CallTrace::start(&info, sink, probe_after(Duration::ZERO)));

        let raw = lines.lock().unwrap().join("\n");
        insta::assert_snapshot!(raw, @r#"    0 [opencode-trace][worker 1/4][basic/hello][solver] start model=mock/echo port=41234 timeout=1000ms workspace="/tmp/my evals/evals-opencode-abc" prompt_bytes=1234"#);
    }
}
