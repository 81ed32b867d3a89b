//! The built-in mock model behind real OpenCode in real Docker, driven through the runner's own
//! call machinery, so the test can read what the model received.

use std::sync::Arc;

use clap::Parser;
use evals_cli::args::{Cli, Command};
use evals_cli::call::{CallSpec, Runtime, call};
use evals_cli::host::Host;
use evals_cli::settings::Settings;
use evals_pipeline::prompt::{PromptFile, SolverOutput, solver_prompt, solver_schema};
use evals_test_support::{IMAGE, docker_ready};

/// A runtime for `model` whose host has an `auth.json` holding `key` for the mock provider.
async fn runtime(model: &str, key: &str, root: &std::path::Path) -> Runtime {
    let (home, tmp) = (root.join("home"), root.join("tmp"));
    std::fs::create_dir_all(home.join(".local/share/opencode")).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let auth = serde_json::json!({"mock": {"type": "api", "key": key}});
    std::fs::write(
        home.join(".local/share/opencode/auth.json"),
        auth.to_string(),
    )
    .unwrap();
    let env = [
        ("HOME", home.display().to_string()),
        ("TMPDIR", tmp.display().to_string()),
    ];
    let host = Host {
        env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        cwd: root.into(),
    };
    let cli = Cli::try_parse_from(["evals-runner", "run", "--model", model]).unwrap();
    let Command::Run(args) = cli.command else {
        unreachable!("the command line says run")
    };
    let settings = Settings::resolve(&args.model, &args.common, &host).unwrap();
    let progress = Arc::new(evals_cli::progress::Progress::new());
    Runtime {
        docker: evals_docker_exec::Docker::new("docker"),
        mock: Some(
            evals_mock_model::serve(evals_mock_model::MockConfig::default())
                .await
                .unwrap(),
        ),
        lines: Arc::new(|line: &str| eprintln!("{line}")),
        progress,
        cancelled: Default::default(),
        lock: evals_auth_isolation::RunLock::acquire(&tmp, &settings.run_id).unwrap(),
        settings,
    }
}

fn spec(files: Vec<PromptFile>) -> CallSpec {
    CallSpec {
        label: "solver",
        eval_id: "01-mock".into(),
        worker: (1, 1),
        call_number: 1,
        prompt: solver_prompt("Return the files.", &files),
        workspace_files: files,
        system: None,
        schema: solver_schema(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_runs_in_the_workspace_and_the_auth_copy_key_reaches_the_model() {
    if !docker_ready(IMAGE) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(
        "mock/tool-then-answer",
        "sk-mock-test-key-4711",
        root.path(),
    )
    .await;
    let files = vec![PromptFile {
        path: "a.ts".into(),
        content: "export const a = 1;\n".into(),
    }];
    let output = call(&runtime, &spec(files.clone()), SolverOutput::validate)
        .await
        .unwrap();
    assert_eq!(output.answer.files, files);

    let snapshot = output.snapshot.to_string();
    assert!(
        snapshot.contains(r#""tool":"bash""#),
        "no bash tool part: {snapshot}"
    );
    assert!(
        snapshot.contains("echo hello > tool-output.txt"),
        "{snapshot}"
    );
    let parts = output.snapshot["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|message| message["parts"].as_array().cloned().unwrap_or_default());
    let bash = parts
        .into_iter()
        .find(|part| part["tool"] == "bash")
        .unwrap();
    assert_eq!(bash["state"]["status"], "completed", "{bash}");

    let requests = runtime.mock.as_ref().unwrap().requests();
    let chats: Vec<_> = requests
        .iter()
        .filter(|request| request.path.ends_with("/chat/completions"))
        .collect();
    assert!(
        chats.len() >= 2,
        "a tool turn and an answer turn: {}",
        chats.len()
    );
    for request in chats {
        assert_eq!(request.bearer_token(), Some("sk-mock-test-key-4711"));
    }
    assert_eq!(
        std::fs::read_dir(root.path().join("tmp")).unwrap().count(),
        1,
        "only the run lock is left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_fails_with_400_ends_the_call_with_the_error() {
    if !docker_ready(IMAGE) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime("mock/fail-400", "sk-x", root.path()).await;
    let err = call(&runtime, &spec(vec![]), SolverOutput::validate)
        .await
        .err()
        .unwrap();
    let message = format!("{err:#}");
    assert!(
        message.contains("structured-output: the model failed: APIError"),
        "{message}"
    );
    assert!(
        message.contains("json-fallback: the model failed: APIError"),
        "{message}"
    );
}
