//! The `evals-runner` binary as a user meets it: output streams, exit codes, errors with hints.

// These tests run the real binary, as a user would; the runner's own code never spawns directly.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
}

/// Runs the binary in `dir` with a private temp root, returning its output and the temp root.
fn runner(dir: &Path, args: &[&str]) -> (Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_evals-runner"))
        .args(args)
        .current_dir(dir)
        .env("TMPDIR", tmp.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (output, tmp)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn dry_run_prints_one_json_line_per_eval_and_leaves_nothing() {
    let (output, tmp) = runner(examples(), &["run", "--model", "mock/echo", "--dry-run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let ids: Vec<_> = lines
        .iter()
        .map(|line| line["evalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["01-slugify", "02-group-by", "03-retry-with-backoff"]);
    for line in &lines {
        assert_eq!(line["argv"][0], "docker");
        assert!(
            line["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|name| name == "OPENCODE_SERVER_PASSWORD")
        );
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "a dry run creates no temp dir"
    );
}

#[test]
fn the_logging_settings_line_comes_first_on_stderr() {
    let (output, _tmp) = runner(
        examples(),
        &["run", "--model", "mock/echo", "--dry-run", "--agent-logs"],
    );
    let first = stderr(&output)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        first,
        "[opencode-docker] logging: server-log-level=DEBUG print-logs=on agent-logs=on verbose=off container-logs=on"
    );
}

#[test]
fn bad_input_exits_2_with_a_cause_and_a_hint() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &[
                "run",
                "--model",
                "mock/echo",
                "--dry-run",
                "--pattern",
                "nothing/*",
            ],
            "error: pattern `nothing/*` matches no eval folder",
            "hint: ",
        ),
        (
            &["run", "--model", "gpt-4", "--dry-run"],
            "error: model `gpt-4` is not of the form PROVIDER/MODEL",
            "hint: pass e.g.",
        ),
        (
            &["run", "--dry-run"],
            "error: the following required arguments were not provided",
            "--model <MODEL>",
        ),
        (
            &["run", "--model", "mock/echo", "--frobnicate"],
            "error: unexpected argument '--frobnicate'",
            "try '--help'",
        ),
        (
            &[
                "run",
                "--model",
                "openai/x",
                "--dry-run",
                "--host-tmpdir",
                "relative",
            ],
            "error: `--host-tmpdir` `relative` must be an absolute path",
            "hint: ",
        ),
        (
            &[
                "run",
                "--model",
                "mock/echo",
                "--dry-run",
                "--network",
                "bridge",
            ],
            "error: `mock/*` models are served",
            "hint: ",
        ),
        (
            &[
                "run",
                "--model",
                "openai/x",
                "--dry-run",
                "--auth-file",
                "/nonexistent/auth.json",
            ],
            "error: `--auth-file` `/nonexistent/auth.json` does not exist",
            "hint: ",
        ),
    ];
    for (args, cause, hint) in cases {
        let (output, tmp) = runner(examples(), args);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(cause), "{args:?}: {stderr}");
        assert!(stderr.contains(hint), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}

#[test]
fn invalid_environment_settings_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, value, cause) in [
        (
            "OPENCODE_SERVER_LOG_LEVEL",
            "verbose",
            "server log level `verbose` is not one of DEBUG, INFO, WARN, ERROR",
        ),
        (
            "OPENCODE_DOCKER_EXTRA_ENV_PREFIXES",
            "MY KEY",
            "entry `MY KEY` can never match a variable name",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_evals-runner"))
            .args(["run", "--model", "openai/x", "--dry-run"])
            .current_dir(examples())
            .env("TMPDIR", tmp.path())
            .env(name, value)
            .output()
            .unwrap();
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(cause) && stderr.contains("hint: "),
            "{stderr}"
        );
    }
}

#[test]
fn a_reserved_host_variable_is_dropped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_evals-runner"))
        .args(["run", "--model", "openai/x", "--dry-run"])
        .current_dir(examples())
        .env("TMPDIR", tmp.path())
        .env("OPENCODE_SERVER_PASSWORD", "host-secret-value")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), stderr(&output));
    assert!(
        stderr.contains("`OPENCODE_SERVER_PASSWORD` is ignored"),
        "{stderr}"
    );
    assert!(!stdout.contains("host-secret-value") && !stderr.contains("host-secret-value"));
}

#[test]
fn help_names_every_flag_of_run() {
    let (output, _tmp) = runner(examples(), &["run", "--help"]);
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--model",
        "--output",
        "--dry-run",
        "--pattern",
        "--concurrency",
        "--max-retries",
        "--fail-fast",
        "--timeout",
        "--agent-logs",
        "--verbose",
        "--host-tmpdir",
        "--network",
        "--opencode-config",
        "--auth-file",
        "--image",
        "--docker",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn mock_model_serves_the_models_listing_until_stopped() {
    use std::io::{BufRead, BufReader, Read, Write};

    let mut child = Command::new(env!("CARGO_BIN_EXE_evals-runner"))
        .args(["mock-model"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let base = first
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap();
    let address = base.trim_start_matches("http://").trim_end_matches("/v1");

    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /v1/models HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    for scenario in [
        "echo",
        "keyword-judge",
        "no-structured",
        "tool-then-answer",
        "fail-400",
    ] {
        assert!(
            response.contains(&format!("\"{scenario}\"")),
            "{scenario} missing: {response}"
        );
    }
}
