//! The agent log of each real OpenCode 1.18.33 capture, line for line.
//!
//! The session id is given to the log only once `session.created` has gone by, as it is in a
//! run, where the id comes back from `POST /session` while events already flow.

use evals_sse_logs::decoder::Decoder;
use evals_sse_logs::event::Event;
use evals_sse_logs::render::{AgentLog, agent_prefix};

mod common;

use common::{FIXTURES, fixture};

fn events(name: &str) -> Vec<Event> {
    let bytes = fixture(name);
    let mut decoder = Decoder::default();
    let frames: Vec<_> = decoder.feed(&bytes).map(Result::unwrap).collect();
    frames
        .iter()
        .map(|frame| Event::from_json(&frame.data).unwrap())
        .collect()
}

fn agent_log(name: &str) -> String {
    let mut log = AgentLog::new(agent_prefix(1, 2, name), None);
    let mut lines = Vec::new();
    let mut known = false;
    for event in events(name) {
        lines.extend(log.render(&event));
        if let (Event::SessionCreated(info), false) = (&event, known) {
            lines.extend(log.set_session_id(&info.session_id));
            known = true;
        }
    }
    lines.extend(log.finish());
    lines.join("\n")
}

#[test]
fn every_fixture_renders_to_its_agent_log() {
    for name in FIXTURES {
        insta::assert_snapshot!(name, agent_log(name));
    }
}

#[test]
fn no_fixture_event_is_unknown_except_the_untyped_ones() {
    let untyped = ["session.diff", "file.watcher.updated"];
    for name in FIXTURES {
        for event in events(name) {
            if let Event::Unknown { kind, .. } = &event {
                assert!(untyped.contains(&kind.as_str()), "{name}: {kind}");
            }
        }
    }
}
