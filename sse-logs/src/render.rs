//! The agent log of one model call: OpenCode events in, prefixed log lines out.
//!
//! [`AgentLog`] is a pure state machine. It prints nothing itself; each method returns the lines
//! it completed, already prefixed, and the caller writes them wherever its logs go. It keeps
//! only the call's own session: events of other sessions are dropped, and events that arrive
//! before the caller knows the session id are held back and replayed by
//! [`AgentLog::set_session_id`].
//!
//! One line per meaningful event: the session's creation, busy and idle transitions, retries,
//! errors, each state of each tool call, step boundaries with tokens, file edits, permission
//! and question requests. Streamed text and reasoning are gathered per part and printed as one
//! line when the part ends, when another part starts, before any other line, at idle and at
//! [`AgentLog::finish`]. Connection and heartbeat frames, plugin announcements and catalogue
//! notices print nothing.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;
use tracing::debug;

use crate::cut::{fold, preview};
use crate::event::{
    ErrorInfo, Event, Part, PartKind, PermissionRequest, QuestionRequest, Role, SessionInfo,
    SessionStatus, Tokens, ToolState,
};

/// The most characters of an error or retry message a line keeps.
pub const ERROR_MAX_CHARS: usize = 160;

/// The most characters of a tool's input, output or error, or of a text, a line keeps.
pub const PREVIEW_MAX_CHARS: usize = 240;

/// The most events held back while the session id is unknown; older ones are dropped first.
pub const EARLY_EVENTS_MAX: usize = 1024;

/// The prefix of the agent log lines of one eval on one worker slot (`worker` of `workers`),
/// ending with a space: `[opencode-docker][worker 1/4][my-eval][agent] `.
pub fn agent_prefix(worker: usize, workers: usize, eval_id: &str) -> String {
    format!("[opencode-docker][worker {worker}/{workers}][{eval_id}][agent] ")
}

/// What the session was last seen doing, to print each transition once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Unknown,
    Busy,
    Retrying,
    Idle,
}

/// A text or reasoning part still receiving text.
#[derive(Debug)]
struct OpenText {
    part_id: String,
    reasoning: bool,
    /// Where `pending` starts in the part's whole text: what came before is already printed.
    base: usize,
    pending: String,
}

/// The agent log of one model call; see the module docs.
#[derive(Debug)]
pub struct AgentLog {
    prefix: String,
    session_id: Option<String>,
    early: VecDeque<Event>,
    activity: Activity,
    user_messages: HashSet<String>,
    reasoning_parts: HashSet<String>,
    open_text: Option<OpenText>,
    /// For each text part printed at least once, how many bytes of its text are printed.
    printed: HashMap<String, usize>,
    /// The last state printed for each tool part.
    tool_states: HashMap<String, &'static str>,
}

impl AgentLog {
    /// A log whose lines all start with `prefix`, taken verbatim (see [`agent_prefix`]).
    ///
    /// With `session_id` unknown (`None`), events are held back until
    /// [`AgentLog::set_session_id`].
    pub fn new(prefix: impl Into<String>, session_id: Option<&str>) -> Self {
        Self {
            prefix: prefix.into(),
            session_id: session_id.map(str::to_owned),
            early: VecDeque::new(),
            activity: Activity::Unknown,
            user_messages: HashSet::new(),
            reasoning_parts: HashSet::new(),
            open_text: None,
            printed: HashMap::new(),
            tool_states: HashMap::new(),
        }
    }

    /// Names the call's session and renders the events held back until now.
    pub fn set_session_id(&mut self, session_id: &str) -> Vec<String> {
        self.session_id = Some(session_id.to_owned());
        let early = std::mem::take(&mut self.early);
        let mut out = Vec::new();
        for event in &early {
            out.extend(self.render(event));
        }
        out
    }

    /// The lines `event` completes: none for most events.
    ///
    /// Events that name another session are dropped. Events that name none (file edits, a
    /// `session.error` without a session) are taken as the call's own, since each call has its
    /// own server.
    pub fn render(&mut self, event: &Event) -> Vec<String> {
        let mut out = Vec::new();
        let Some(ours) = self.session_id.as_deref() else {
            self.hold_back(event);
            return out;
        };
        if event.session_id().is_some_and(|id| id != ours) {
            return out;
        }
        self.apply(event, &mut out);
        out
    }

    /// The line saying the runner refused something the agent asked for, such as a permission
    /// (`what`), and why; preceded by any text still open.
    pub fn refusal(&mut self, what: &str, reason: &str) -> Vec<String> {
        let mut out = Vec::new();
        let line = format!(
            "runner refused {what}: {}",
            preview(reason, PREVIEW_MAX_CHARS)
        );
        self.emit(&mut out, line);
        out
    }

    /// The line saying the event stream dropped and is being reconnected, and why.
    pub fn reconnecting(&mut self, reason: &str) -> Vec<String> {
        let mut out = Vec::new();
        let reason = preview(reason, ERROR_MAX_CHARS);
        self.emit(
            &mut out,
            format!("event stream dropped ({reason}), reconnecting"),
        );
        out
    }

    /// The lines still open at the end of the call: a text or reasoning part that never ended.
    pub fn finish(&mut self) -> Vec<String> {
        if !self.early.is_empty() {
            debug!(
                held = self.early.len(),
                "agent log ends before its session id was known"
            );
        }
        let mut out = Vec::new();
        self.flush_text(&mut out);
        out
    }

    fn hold_back(&mut self, event: &Event) {
        if prints_nothing(event) {
            return;
        }
        if self.early.len() == EARLY_EVENTS_MAX {
            debug!("too many events before the session id was known, dropping the oldest");
            self.early.pop_front();
        }
        self.early.push_back(event.clone());
    }

    fn apply(&mut self, event: &Event, out: &mut Vec<String>) {
        match event {
            Event::SessionCreated(info) => self.session_created(info, out),
            Event::SessionStatus { status, .. } => self.status(status, out),
            Event::SessionIdle { .. } => self.status(&SessionStatus::Idle, out),
            Event::SessionError { error, .. } => self.session_error(error.as_ref(), out),
            Event::MessageUpdated { info, .. } => self.message(&info.id, &info.role),
            Event::MessagePartUpdated { part, .. } => self.part(part, out),
            Event::MessagePartDelta {
                message_id,
                part_id,
                field,
                delta,
                ..
            } if field == "text" && !self.user_messages.contains(message_id) => {
                self.delta(part_id, delta, out)
            }
            Event::FileEdited { file } => self.emit(out, format!("file edited: {file}")),
            Event::PermissionAsked(request) => self.permission_asked(request, out),
            Event::PermissionReplied {
                request_id, reply, ..
            } => self.emit(
                out,
                format!("permission replied: {reply} (request {request_id})"),
            ),
            Event::QuestionAsked(request) => self.question_asked(request, out),
            Event::QuestionReplied { request_id, .. } => {
                self.emit(out, format!("question replied (request {request_id})"))
            }
            Event::QuestionRejected { request_id, .. } => {
                self.emit(out, format!("question rejected (request {request_id})"))
            }
            _ => {}
        }
    }

    /// Pushes one line, after the text still open so the lines keep the events' order.
    fn emit(&mut self, out: &mut Vec<String>, body: String) {
        self.flush_text(out);
        out.push(format!("{}{body}", self.prefix));
    }

    fn session_created(&mut self, info: &SessionInfo, out: &mut Vec<String>) {
        let title = preview(&info.title, ERROR_MAX_CHARS);
        self.emit(
            out,
            format!("session created: {} \"{title}\"", info.session_id),
        );
    }

    /// Prints busy when work starts and idle when it stops, once per transition; a retry
    /// prints its attempt, and the busy that follows a retry is the same work going on.
    fn status(&mut self, status: &SessionStatus, out: &mut Vec<String>) {
        let before = self.activity;
        match status {
            SessionStatus::Busy => {
                self.activity = Activity::Busy;
                if !matches!(before, Activity::Busy | Activity::Retrying) {
                    self.emit(out, "busy".into());
                }
            }
            SessionStatus::Idle => {
                self.activity = Activity::Idle;
                self.flush_text(out);
                if before != Activity::Idle {
                    self.emit(out, "idle".into());
                }
            }
            SessionStatus::Retry { attempt, message } => {
                self.activity = Activity::Retrying;
                let message = preview(message, ERROR_MAX_CHARS);
                self.emit(out, format!("retry attempt {attempt}: {message}"));
            }
            _ => {}
        }
    }

    fn session_error(&mut self, error: Option<&ErrorInfo>, out: &mut Vec<String>) {
        let line = match error {
            None => "session error".to_owned(),
            Some(error) => match error.message() {
                Some(message) => {
                    let message = preview(message, ERROR_MAX_CHARS);
                    format!("session error: {}: {message}", error.name)
                }
                None => format!("session error: {}", error.name),
            },
        };
        self.emit(out, line);
    }

    fn message(&mut self, id: &str, role: &Role) {
        // The prompt's own parts are the runner's words, not the agent's: they are not logged.
        if *role == Role::User {
            self.user_messages.insert(id.to_owned());
        }
    }

    fn part(&mut self, part: &Part, out: &mut Vec<String>) {
        if self.user_messages.contains(&part.message_id) {
            return;
        }
        if self
            .open_text
            .as_ref()
            .is_some_and(|open| open.part_id != part.id)
        {
            self.flush_text(out);
        }
        match &part.kind {
            PartKind::Text { text, ended } => self.text(&part.id, false, text, *ended, out),
            PartKind::Reasoning { text, ended } => self.text(&part.id, true, text, *ended, out),
            PartKind::Tool { tool, state, .. } => self.tool(&part.id, tool, state, out),
            PartKind::StepStart => self.emit(out, "step start".into()),
            PartKind::StepFinish { reason, tokens } => self.emit(
                out,
                format!("step finish: {reason} ({})", tokens_text(tokens)),
            ),
            _ => {}
        }
    }

    /// A text or reasoning part's whole text so far; printed now if the part ended.
    fn text(&mut self, id: &str, reasoning: bool, text: &str, ended: bool, out: &mut Vec<String>) {
        if reasoning {
            self.reasoning_parts.insert(id.to_owned());
        }
        let open = self.open_text.get_or_insert_with(|| OpenText {
            part_id: id.to_owned(),
            reasoning,
            base: self.printed.get(id).copied().unwrap_or(0),
            pending: String::new(),
        });
        open.pending = text.get(open.base..).unwrap_or_default().to_owned();
        if ended {
            self.flush_text(out);
        }
    }

    fn delta(&mut self, part_id: &str, delta: &str, out: &mut Vec<String>) {
        if let Some(open) = self
            .open_text
            .as_mut()
            .filter(|open| open.part_id == part_id)
        {
            open.pending.push_str(delta);
            return;
        }
        self.flush_text(out);
        self.open_text = Some(OpenText {
            part_id: part_id.to_owned(),
            reasoning: self.reasoning_parts.contains(part_id),
            base: self.printed.get(part_id).copied().unwrap_or(0),
            pending: delta.to_owned(),
        });
    }

    /// Prints the open text part, if it holds anything not printed yet.
    fn flush_text(&mut self, out: &mut Vec<String>) {
        let Some(open) = self.open_text.take() else {
            return;
        };
        self.printed
            .insert(open.part_id, open.base + open.pending.len());
        if fold(&open.pending).is_empty() {
            return;
        }
        let label = if open.reasoning { "reasoning" } else { "text" };
        let text = preview(&open.pending, PREVIEW_MAX_CHARS);
        out.push(format!("{}{label}: {text}", self.prefix));
    }

    /// Prints each state of a tool call once (OpenCode repeats `running` as metadata arrives).
    fn tool(&mut self, part_id: &str, tool: &str, state: &ToolState, out: &mut Vec<String>) {
        let (status, detail) = match state {
            ToolState::Pending => ("pending", String::new()),
            ToolState::Running { input } => ("running", input_text(input)),
            ToolState::Completed { output, .. } => ("completed", output.clone()),
            ToolState::Error { error, .. } => ("error", error.clone()),
            _ => return,
        };
        if self.tool_states.insert(part_id.to_owned(), status) == Some(status) {
            return;
        }
        let detail = preview(&detail, PREVIEW_MAX_CHARS);
        let line = if detail.is_empty() {
            format!("tool {tool} {status}")
        } else {
            format!("tool {tool} {status}: {detail}")
        };
        self.emit(out, line);
    }

    fn permission_asked(&mut self, request: &PermissionRequest, out: &mut Vec<String>) {
        let patterns = preview(&request.patterns.join(", "), PREVIEW_MAX_CHARS);
        let (permission, id) = (&request.permission, &request.id);
        self.emit(
            out,
            format!("permission asked: {permission} {patterns} (request {id})"),
        );
    }

    fn question_asked(&mut self, request: &QuestionRequest, out: &mut Vec<String>) {
        let first = request.questions.first();
        let text = first.map_or("", |q| {
            if q.question.is_empty() {
                &q.header
            } else {
                &q.question
            }
        });
        let more = match request.questions.len() {
            0 | 1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        let text = preview(text, PREVIEW_MAX_CHARS);
        let id = &request.id;
        self.emit(out, format!("question asked: {text}{more} (request {id})"));
    }
}

/// Whether `event` never prints, whatever its session.
fn prints_nothing(event: &Event) -> bool {
    matches!(
        event,
        Event::ServerConnected
            | Event::ServerHeartbeat
            | Event::SessionUpdated(_)
            | Event::PluginAdded { .. }
            | Event::CatalogUpdated { .. }
            | Event::Unknown { .. }
    )
}

/// A tool's input as compact JSON; nothing for an empty object.
fn input_text(input: &Value) -> String {
    match input {
        Value::Null => String::new(),
        Value::Object(map) if map.is_empty() => String::new(),
        other => other.to_string(),
    }
}

fn tokens_text(tokens: &Tokens) -> String {
    let Tokens {
        input,
        output,
        reasoning,
        cache,
    } = tokens;
    format!(
        "tokens: input {input}, output {output}, reasoning {reasoning}, cache read {}, write {}",
        cache.read, cache.write
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PREFIX: &str = "[p] ";

    fn event(kind: &str, properties: Value) -> Event {
        let data = json!({"type": kind, "properties": properties}).to_string();
        Event::from_json(&data).unwrap()
    }

    fn status(session: &str, status: Value) -> Event {
        event(
            "session.status",
            json!({"sessionID": session, "status": status}),
        )
    }

    fn part(session: &str, part: Value) -> Event {
        event(
            "message.part.updated",
            json!({"sessionID": session, "part": part, "time": 1}),
        )
    }

    fn text_part(id: &str, kind: &str, text: &str, ended: bool) -> Event {
        let time = if ended {
            json!({"start": 1, "end": 2})
        } else {
            json!({"start": 1})
        };
        part(
            "ses_a",
            json!({"id": id, "messageID": "msg_a", "type": kind, "text": text, "time": time}),
        )
    }

    fn delta(id: &str, text: &str) -> Event {
        event(
            "message.part.delta",
            json!({"sessionID": "ses_a", "messageID": "msg_a", "partID": id, "field": "text", "delta": text}),
        )
    }

    fn tool(state: Value) -> Event {
        part(
            "ses_a",
            json!({"id": "prt_t", "messageID": "msg_a", "type": "tool", "tool": "grep", "callID": "c", "state": state}),
        )
    }

    fn render_all(log: &mut AgentLog, events: &[Event]) -> Vec<String> {
        let mut lines: Vec<String> = events.iter().flat_map(|e| log.render(e)).collect();
        lines.extend(log.finish());
        lines
            .iter()
            .map(|l| l.strip_prefix(PREFIX).unwrap().to_owned())
            .collect()
    }

    fn render(events: &[Event]) -> Vec<String> {
        render_all(&mut AgentLog::new(PREFIX, Some("ses_a")), events)
    }

    #[test]
    fn other_sessions_are_dropped() {
        let events = [
            status("ses_b", json!({"type": "busy"})),
            status("ses_a", json!({"type": "busy"})),
        ];
        assert_eq!(render(&events), ["busy"]);
    }

    #[test]
    fn events_before_the_session_id_are_replayed_once_it_is_known() {
        let mut log = AgentLog::new(PREFIX, None);
        let info = json!({"id": "ses_a", "title": "t"});
        assert!(
            log.render(&event(
                "session.created",
                json!({"sessionID": "ses_a", "info": info})
            ))
            .is_empty()
        );
        assert!(
            log.render(&status("ses_b", json!({"type": "busy"})))
                .is_empty()
        );
        let lines = log.set_session_id("ses_a");
        assert_eq!(lines, ["[p] session created: ses_a \"t\""]);
        assert_eq!(
            log.render(&status("ses_a", json!({"type": "busy"}))),
            ["[p] busy"]
        );
    }

    #[test]
    fn idle_prints_once_per_transition() {
        let idle = status("ses_a", json!({"type": "idle"}));
        let session_idle = event("session.idle", json!({"sessionID": "ses_a"}));
        let busy = status("ses_a", json!({"type": "busy"}));
        let events = [
            busy.clone(),
            busy.clone(),
            idle.clone(),
            session_idle.clone(),
            idle,
            session_idle,
            busy,
        ];
        assert_eq!(render(&events), ["busy", "idle", "busy"]);
    }

    #[test]
    fn retries_print_their_attempt_and_the_busy_after_them_is_quiet() {
        let retry = |n: u64| {
            status(
                "ses_a",
                json!({"type": "retry", "attempt": n, "message": "boom", "next": 9}),
            )
        };
        let busy = status("ses_a", json!({"type": "busy"}));
        let events = [busy.clone(), retry(1), busy.clone(), retry(2), busy];
        assert_eq!(
            render(&events),
            ["busy", "retry attempt 1: boom", "retry attempt 2: boom"]
        );
    }

    #[test]
    fn session_errors_are_cut_at_160_characters() {
        let message = "x".repeat(500);
        let error = json!({"name": "APIError", "data": {"message": message}});
        let lines = render(&[event(
            "session.error",
            json!({"sessionID": "ses_a", "error": error}),
        )]);
        let expected = format!(
            "session error: APIError: {}…",
            "x".repeat(ERROR_MAX_CHARS - 1)
        );
        assert_eq!(lines, [expected]);
    }

    #[test]
    fn streamed_text_is_one_line_when_the_part_ends() {
        let events = [
            text_part("prt_1", "text", "", false),
            delta("prt_1", "Hello, "),
            delta("prt_1", "world\nagain"),
            text_part("prt_1", "text", "Hello, world\nagain", true),
        ];
        assert_eq!(render(&events), ["text: Hello, world again"]);
    }

    #[test]
    fn open_text_is_flushed_when_another_part_starts_or_another_line_prints() {
        let step = part(
            "ses_a",
            json!({"id": "prt_s", "messageID": "msg_a", "type": "step-start"}),
        );
        let events = [
            text_part("prt_1", "reasoning", "", false),
            delta("prt_1", "thinking"),
            step,
        ];
        assert_eq!(render(&events), ["reasoning: thinking", "step start"]);
        let error = json!({"name": "MessageAbortedError", "data": {"message": "Aborted"}});
        let events = [
            delta("prt_2", "tick 0 "),
            event(
                "session.error",
                json!({"sessionID": "ses_a", "error": error}),
            ),
            status("ses_a", json!({"type": "idle"})),
            text_part("prt_2", "text", "tick 0 ", true),
        ];
        assert_eq!(
            render(&events),
            [
                "text: tick 0",
                "session error: MessageAbortedError: Aborted",
                "idle"
            ]
        );
    }

    #[test]
    fn text_printed_early_continues_with_only_what_is_new() {
        let events = [
            delta("prt_1", "first half"),
            event("file.edited", json!({"file": "/w/a"})),
            delta("prt_1", " second half"),
            text_part("prt_1", "text", "first half second half", true),
        ];
        assert_eq!(
            render(&events),
            ["text: first half", "file edited: /w/a", "text: second half"]
        );
    }

    #[test]
    fn unended_text_is_flushed_by_finish() {
        assert_eq!(render(&[delta("prt_1", "partial")]), ["text: partial"]);
    }

    #[test]
    fn the_prompt_is_not_logged() {
        let user =
            json!({"id": "msg_u", "role": "user", "sessionID": "ses_a", "time": {"created": 1}});
        let prompt = json!({"id": "prt_u", "messageID": "msg_u", "type": "text", "text": "do it"});
        let events = [
            event(
                "message.updated",
                json!({"sessionID": "ses_a", "info": user}),
            ),
            part("ses_a", prompt),
        ];
        assert!(render(&events).is_empty());
    }

    #[test]
    fn each_tool_state_prints_once_with_a_preview() {
        let events = [
            tool(json!({"status": "pending", "input": {}, "raw": ""})),
            tool(json!({"status": "running", "input": {"pattern": "hi"}, "time": {"start": 1}})),
            tool(
                json!({"status": "running", "input": {"pattern": "hi"}, "metadata": {}, "time": {"start": 1}}),
            ),
            tool(
                json!({"status": "error", "input": {"pattern": "hi"}, "error": "ripgrep\nfailed", "time": {"start": 1, "end": 2}}),
            ),
        ];
        let expected = [
            "tool grep pending",
            "tool grep running: {\"pattern\":\"hi\"}",
            "tool grep error: ripgrep failed",
        ];
        assert_eq!(render(&events), expected);
    }

    #[test]
    fn tool_output_is_cut_at_240_characters() {
        let output = "é".repeat(1000);
        let lines = render(&[tool(
            json!({"status": "completed", "input": {}, "output": output, "title": "", "metadata": {}, "time": {"start": 1, "end": 2}}),
        )]);
        assert_eq!(
            lines[0].chars().count(),
            "tool grep completed: ".len() + PREVIEW_MAX_CHARS
        );
    }

    #[test]
    fn questions_and_refusals_print() {
        let asked = json!({"id": "que_1", "sessionID": "ses_a", "questions": [
            {"question": "Which file?", "header": "File", "options": []},
            {"question": "Why?", "header": "Why", "options": []}]});
        let mut log = AgentLog::new(PREFIX, Some("ses_a"));
        let mut lines = render_all(&mut log, &[event("question.asked", asked)]);
        lines.extend(log.refusal("question que_1", "nobody answers an unattended run"));
        assert_eq!(
            lines[0],
            "question asked: Which file? (+1 more) (request que_1)"
        );
        assert_eq!(
            lines[1],
            "[p] runner refused question que_1: nobody answers an unattended run"
        );
    }

    #[test]
    fn quiet_events_print_nothing() {
        let events = [
            event("server.connected", json!({})),
            event("server.heartbeat", json!({})),
            event("plugin.added", json!({"id": "core/x"})),
            event("catalog.updated", json!({})),
            event("session.diff", json!({"sessionID": "ses_a", "diff": []})),
        ];
        assert!(render(&events).is_empty());
    }

    #[test]
    fn the_prefix_helper_names_worker_and_eval() {
        assert_eq!(
            agent_prefix(2, 4, "basic"),
            "[opencode-docker][worker 2/4][basic][agent] "
        );
    }
}
