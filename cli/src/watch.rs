//! Watching one call's event stream: agent log lines, refusing whatever would wait on a person,
//! and the live state the `--verbose` heartbeat reports.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use evals_opencode_client::{Client, PermissionReply};
use evals_sse_logs::event::PartKind;
use evals_sse_logs::{AgentLog, Event, Incoming, ReaderOptions, read_events};
use evals_trace::{Activity, SessionStatus, StatusSnapshot, ToolState};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

/// Where finished log lines go.
pub type Lines = Arc<dyn Fn(&str) + Send + Sync>;

/// The message sent with a refused permission request.
const REFUSAL: &str = "this is an unattended evaluation run: nobody can answer, so it is refused";

/// A running watch of one server's events; [`Watch::finish`] ends it.
pub struct Watch {
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

struct Shared {
    log: Mutex<Option<AgentLog>>,
    live: Mutex<Live>,
    lines: Lines,
    refusal_prefix: String,
}

/// What the events said of the session so far.
#[derive(Default)]
struct Live {
    status: Option<SessionStatus>,
    messages: BTreeSet<String>,
    activity: Option<Activity>,
}

impl Watch {
    /// Starts reading `client`'s events. `log` renders agent lines when agent logs are on;
    /// refusals are always reported, on lines starting with `refusal_prefix`.
    pub fn start(
        client: Client,
        log: Option<AgentLog>,
        lines: Lines,
        refusal_prefix: String,
    ) -> Self {
        let shared = Arc::new(Shared {
            log: Mutex::new(log),
            live: Mutex::default(),
            lines,
            refusal_prefix,
        });
        let task = tokio::spawn(watch(client, shared.clone()));
        Self { task, shared }
    }

    /// Tells the renderer which session is the call's, printing what it held back.
    pub fn set_session(&self, session_id: &str) {
        let lines = self.shared.with_log(|log| log.set_session_id(session_id));
        self.shared.print(lines);
    }

    /// A probe for the trace heartbeat: the session as the events describe it.
    pub fn probe(&self) -> evals_trace::Probe {
        let shared = self.shared.clone();
        evals_trace::Probe::new(move |_session_id| {
            let snapshot = shared.snapshot();
            async move { Ok::<_, std::convert::Infallible>(snapshot) }
        })
    }

    /// The ids of every message the events have shown, in id order, which is creation order.
    pub fn message_ids(&self) -> Vec<String> {
        let live = self
            .shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.messages.iter().cloned().collect()
    }

    /// Stops reading and prints the text still held back.
    pub fn finish(self) {
        self.task.abort();
        let lines = self.shared.with_log(AgentLog::finish);
        self.shared.print(lines);
    }
}

impl Shared {
    fn snapshot(&self) -> StatusSnapshot {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        StatusSnapshot {
            status: live.status.clone().unwrap_or(SessionStatus::Unknown),
            messages: live.messages.len(),
            activity: live.activity.clone().unwrap_or(Activity::None),
        }
    }

    fn with_log(&self, render: impl FnOnce(&mut AgentLog) -> Vec<String>) -> Vec<String> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.as_mut().map(render).unwrap_or_default()
    }

    fn print(&self, lines: Vec<String>) {
        for line in lines {
            (self.lines)(&line);
        }
    }
}

async fn watch(client: Client, shared: Arc<Shared>) {
    let connect = {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move { client.events().await }
        }
    };
    let mut events = std::pin::pin!(read_events(connect, ReaderOptions::default()));
    while let Some(item) = events.next().await {
        match item {
            Ok(Incoming::Event(event)) => {
                record(&shared, &event);
                let lines = shared.with_log(|log| log.render(&event));
                shared.print(lines);
                refuse(&client, &shared, &event).await;
            }
            Ok(Incoming::Reconnecting { reason }) => {
                let lines = shared.with_log(|log| log.reconnecting(&reason));
                shared.print(lines);
            }
            Ok(_) => {}
            Err(err) if err.is_fatal() => {
                (shared.lines)(&format!(
                    "{} event stream lost: {err}",
                    shared.refusal_prefix
                ));
                return;
            }
            Err(err) => tracing::debug!(%err, "event skipped"),
        }
    }
}

/// Refuses a permission request or a question at once: nobody is there to answer it, and the
/// session would wait until its deadline.
async fn refuse(client: &Client, shared: &Shared, event: &Event) {
    let (what, outcome) = match event {
        Event::PermissionAsked(request) => {
            let what = format!(
                "permission `{}` ({})",
                request.permission,
                request.patterns.join(", ")
            );
            (
                what,
                client
                    .reply_permission(&request.id, PermissionReply::Reject, Some(REFUSAL))
                    .await,
            )
        }
        Event::QuestionAsked(request) => (
            "a question".to_owned(),
            client.reject_question(&request.id).await,
        ),
        _ => return,
    };
    let reason = match outcome {
        Ok(_) => "nobody can answer in an unattended run".to_owned(),
        Err(err) => format!("refusing failed: {err}"),
    };
    let lines = shared.with_log(|log| log.refusal(&what, &reason));
    if lines.is_empty() {
        (shared.lines)(&format!(
            "{} refused {what}: {reason}",
            shared.refusal_prefix
        ));
    }
    shared.print(lines);
}

/// Updates the live state from one event.
fn record(shared: &Shared, event: &Event) {
    let mut live = shared.live.lock().unwrap_or_else(PoisonError::into_inner);
    match event {
        Event::SessionStatus { status, .. } => live.status = Some(status_of(status)),
        Event::SessionIdle { .. } => live.status = Some(SessionStatus::Idle),
        Event::MessageUpdated { info, .. } => {
            live.messages.insert(info.id.clone());
            if let Some(error) = &info.error {
                live.activity = Some(error_activity(&error.name, error.message()));
            }
        }
        Event::SessionError {
            error: Some(error), ..
        } => {
            live.activity = Some(error_activity(&error.name, error.message()));
        }
        Event::MessagePartUpdated { part, .. } => {
            if let Some(activity) = part_activity(&part.kind) {
                live.activity = Some(activity);
            }
        }
        _ => {}
    }
}

fn status_of(status: &evals_sse_logs::event::SessionStatus) -> SessionStatus {
    match status {
        evals_sse_logs::event::SessionStatus::Idle => SessionStatus::Idle,
        evals_sse_logs::event::SessionStatus::Busy => SessionStatus::Busy,
        evals_sse_logs::event::SessionStatus::Retry { attempt, message } => SessionStatus::Retry {
            attempt: u32::try_from(*attempt).unwrap_or(u32::MAX),
            message: message.clone(),
        },
        _ => SessionStatus::Unknown,
    }
}

fn part_activity(kind: &PartKind) -> Option<Activity> {
    Some(match kind {
        PartKind::Text { text, .. } => Activity::Text(text.clone()),
        PartKind::Reasoning { text, .. } => Activity::Reasoning(text.clone()),
        PartKind::Tool { tool, state, .. } => Activity::Tool {
            tool: tool.clone(),
            state: tool_state(state),
        },
        _ => return None,
    })
}

fn tool_state(state: &evals_sse_logs::event::ToolState) -> ToolState {
    match state {
        evals_sse_logs::event::ToolState::Running { .. } => ToolState::Running,
        evals_sse_logs::event::ToolState::Completed { .. } => ToolState::Completed,
        evals_sse_logs::event::ToolState::Error { .. } => ToolState::Error,
        _ => ToolState::Pending,
    }
}

fn error_activity(name: &str, message: Option<&str>) -> Activity {
    Activity::Error {
        name: name.to_owned(),
        message: message.unwrap_or_default().to_owned(),
    }
}
