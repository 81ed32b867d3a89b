//! The runner's event watch against a stand-in OpenCode server that replays a real capture: a
//! permission request that would wait for a person is refused at once, and logged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use evals_cli::watch::Watch;
use evals_opencode_client::Client;
use evals_sse_logs::AgentLog;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PERMISSION_STREAM: &str =
    include_str!("../../sse-logs/tests/fixtures/13-permission-ask.events.sse");
const SESSION: &str = "ses_dc3e2ca03ffeBvOBf9VT2UijzZ";
const REQUEST: &str = "per_23c1d3dd1001RLLeOEUXY1BKVe";

/// Serves `GET /event` with the capture, and records every other request's line and body.
async fn stand_in(recorded: Arc<Mutex<Vec<String>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let read = socket.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
                if request.starts_with("GET /event") {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
                    socket.write_all(head.as_bytes()).await.ok();
                    socket.write_all(PERMISSION_STREAM.as_bytes()).await.ok();
                    tokio::time::sleep(Duration::from_secs(30)).await;
                } else {
                    let line = request.lines().next().unwrap_or_default().to_owned();
                    let body = request.split("\r\n\r\n").nth(1).unwrap_or_default();
                    recorded.lock().unwrap().push(format!("{line} {body}"));
                    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\ntrue";
                    socket.write_all(reply.as_bytes()).await.ok();
                }
            });
        }
    });
    format!("http://{address}")
}

/// Watches the stand-in's replayed stream until the refusal is sent and logged, returning the
/// requests the stand-in received and the lines the watch wrote.
async fn replay(log: Option<AgentLog>) -> (Vec<String>, Vec<String>) {
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let base = stand_in(recorded.clone()).await;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let lines = lines.clone();
        Arc::new(move |line: &str| lines.lock().unwrap().push(line.to_owned()))
    };
    let client = Client::new(&base, "pw").unwrap();
    let watch = Watch::start(client, log, sink, "[runner]".into());
    let refused = |lines: &[String]| lines.iter().any(|line| line.contains("refused"));
    for _ in 0..100 {
        if !recorded.lock().unwrap().is_empty() && refused(&lines.lock().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch.finish();
    let recorded = recorded.lock().unwrap().clone();
    let lines = lines.lock().unwrap().clone();
    (recorded, lines)
}

#[tokio::test]
async fn a_permission_request_is_refused_at_once_and_logged() {
    let (recorded, lines) = replay(Some(AgentLog::new("[agent] ", Some(SESSION)))).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(
        recorded[0].starts_with(&format!("POST /permission/{REQUEST}/reply HTTP/1.1")),
        "{recorded:?}"
    );
    let json = &recorded[0][recorded[0].find('{').unwrap()..];
    let body: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(body["reply"], "reject");
    let logged = |text: &str| lines.iter().any(|line| line.contains(text));
    assert!(
        logged("permission asked: external_directory /tmp/*"),
        "{lines:#?}"
    );
    assert!(
        logged("runner refused permission `external_directory` (/tmp/*)"),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_refusal_is_reported_even_without_agent_logs() {
    let (recorded, lines) = replay(None).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with(
            "[runner] refused permission `external_directory` (/tmp/*): nobody can answer"
        ),
        "{lines:#?}"
    );
}
