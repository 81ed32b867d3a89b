//! `evals-runner run` against real OpenCode in real Docker, with the built-in mock model.
//!
//! These tests need a Docker Engine and the local image (`cargo xtask image`). Without them they
//! say why and pass, unless `REQUIRE_DOCKER=1`, under which they fail instead.

// These tests drive the real binary and the docker client, as a user would.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use evals_test_support::{IMAGE, copy_tree};

/// One test at a time: each starts several OpenCode servers, and many at once on a small
/// machine would test its scheduler rather than the runner.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the one-at-a-time slot when Docker and the image are here; `None` (the test skips) when
/// they are not, and a panic under `REQUIRE_DOCKER=1`.
fn docker_ready() -> Option<std::sync::MutexGuard<'static, ()>> {
    let slot = || {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    evals_test_support::docker_ready(IMAGE).then(slot)
}

/// A copy of the example suite in a temp dir, with a private temp root beside it.
fn workdir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (repo, tmp) = (dir.path().join("repo"), dir.path().join("tmp"));
    copy_tree(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/evals")),
        &repo.join("evals"),
    );
    std::fs::create_dir_all(&tmp).unwrap();
    (dir, repo, tmp)
}

fn run(repo: &Path, tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evals-runner"))
        .args(args)
        .current_dir(repo)
        .env("TMPDIR", tmp)
        .env_remove("OPENCODE_SERVER_LOG_LEVEL")
        .output()
        .unwrap()
}

fn manifest(output_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(output_dir.join("manifest.json")).unwrap())
        .unwrap()
}

/// Nothing of any run is left: no labelled container, no temp directory.
fn assert_nothing_left(tmp: &Path, run_label_value: Option<&str>) {
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "temp root not empty"
    );
    if let Some(run) = run_label_value {
        let filter = format!("label=evals-runner.run-id={run}");
        let listed = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
            .unwrap();
        assert!(listed.stdout.is_empty(), "containers left for run {run}");
    }
}

fn run_id_of(stderr: &str) -> Option<String> {
    stderr
        .split("evals-opencode-")
        .nth(1)
        .map(|rest| rest.chars().take(10).collect())
}

#[test]
fn a_mock_run_writes_files_snapshots_and_the_manifest() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let output = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/echo",
            "--output",
            "out",
            "--concurrency",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    let out = repo.join("out");
    let manifest = manifest(&out);
    let keys: Vec<_> = manifest.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "evalCount",
            "evals",
            "evalsErrored",
            "evalsProcessed",
            "finishedAt",
            "pattern",
            "runId",
            "solverModel",
            "startedAt"
        ]
    );
    assert_eq!(
        (
            manifest["evalCount"].as_u64(),
            manifest["evalsErrored"].as_u64()
        ),
        (Some(3), Some(0))
    );
    let first = &manifest["evals"][0];
    assert_eq!(first["evalId"], "01-slugify");
    assert_eq!(first["generatedPath"], "strings/01-slugify");
    assert_eq!(first["outputFiles"], serde_json::json!(["slugify.ts"]));
    assert_eq!(
        first["solverSessionArtifactPath"],
        "out/strings/01-slugify/opencode-session.solver.json"
    );
    // `mock/echo` answers with the input files unchanged.
    let written =
        std::fs::read_to_string(out.join("async/03-retry-with-backoff/lib/sleep.ts")).unwrap();
    assert_eq!(
        written,
        std::fs::read_to_string(repo.join("evals/async/03-retry-with-backoff/app/lib/sleep.ts"))
            .unwrap()
    );
    let snapshot: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("strings/01-slugify/opencode-session.solver.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        snapshot["session"]["id"]
            .as_str()
            .unwrap()
            .starts_with("ses_")
    );
    assert_nothing_left(&tmp, None);
}

#[test]
fn a_model_error_fails_every_eval_with_exit_1_and_cleans_up() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let output = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/fail-400",
            "--output",
            "out",
            "--pattern",
            "evals/strings/*",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("errored 01-slugify") && stderr.contains("json-fallback"),
        "{stderr}"
    );
    let manifest = manifest(&repo.join("out"));
    assert_eq!(
        (
            manifest["evalsProcessed"].as_u64(),
            manifest["evalsErrored"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(manifest["evals"], serde_json::json!([]));
    assert_nothing_left(&tmp, run_id_of(&stderr).as_deref());
}

#[test]
fn the_json_fallback_rescues_a_model_without_structured_output() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let output = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/no-structured",
            "--output",
            "out",
            "--pattern",
            "evals/collections/*",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        manifest(&repo.join("out"))["evals"][0]["outputFiles"],
        serde_json::json!(["groupBy.ts"])
    );
    assert_nothing_left(&tmp, None);
}

/// The run id from the lock file a running runner holds in its temp root.
fn wait_for_run_id(tmp: &Path) -> String {
    for _ in 0..600 {
        let lock = std::fs::read_dir(tmp).unwrap().flatten().find_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            Some(
                name.strip_prefix("evals-opencode-run-")?
                    .strip_suffix(".lock")?
                    .to_owned(),
            )
        });
        if let Some(run_id) = lock {
            return run_id;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the runner never took its run lock");
}

fn containers_of(run_id: &str) -> usize {
    let filter = format!("label=evals-runner.run-id={run_id}");
    let listed = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout).lines().count()
}

#[test]
fn sigint_mid_run_removes_every_container_and_temp_dir() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let child = Command::new(env!("CARGO_BIN_EXE_evals-runner"))
        .args([
            "run",
            "--model",
            "mock/slow-30000",
            "--output",
            "out",
            "--concurrency",
            "3",
        ])
        .current_dir(&repo)
        .env("TMPDIR", &tmp)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run_id = wait_for_run_id(&tmp);
    let mut waited = 0;
    while containers_of(&run_id) < 3 {
        assert!(waited < 600, "the containers never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "removing the containers and temp directories of run {run_id}"
        )),
        "{stderr}"
    );
    assert_eq!(containers_of(&run_id), 0);
    assert_nothing_left(&tmp, Some(&run_id));
    for entry in std::fs::read_dir(repo.join("out"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().into_string().unwrap();
        assert!(
            !name.starts_with(".tmp-"),
            "a half-written file was left: {name}"
        );
    }
}

fn json_file(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn keys(value: &serde_json::Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn a_solver_run_then_a_judge_run_write_every_file_with_exact_fields() {
    let Some(_slot) = docker_ready() else { return };
    let (dir, repo, tmp) = workdir();
    let solved = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/echo",
            "--output",
            "generated/solver",
        ],
    );
    assert_eq!(
        solved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&solved.stderr)
    );
    let host_tmp = dir.path().join("host tmp");
    std::fs::create_dir(&host_tmp).unwrap();
    let judged = run(
        &repo,
        &tmp,
        &[
            "judge",
            "--model",
            "mock/keyword-judge",
            "--input",
            "generated/solver",
            "--host-tmpdir",
            host_tmp.to_str().unwrap(),
            "--agent-logs",
            "--verbose",
            "--concurrency",
            "1",
        ],
    );
    let stderr = String::from_utf8_lossy(&judged.stderr);
    assert_eq!(judged.status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .lines()
            .next()
            .unwrap()
            .contains("agent-logs=on verbose=on"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[01-slugify][agent] tool StructuredOutput completed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "[opencode-trace][worker 1/1][01-slugify][judge] start model=mock/keyword-judge"
        ),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&host_tmp).unwrap().count(),
        0,
        "--host-tmpdir left behind"
    );

    let generated = repo.join("generated");
    let summary = json_file(&generated.join("summary.json"));
    assert_eq!(
        keys(&summary),
        [
            "evalCount",
            "evalsErrored",
            "evalsProcessed",
            "finishedAt",
            "inputGeneratedArtifacts",
            "judgeModel",
            "pattern",
            "requirementsPassed",
            "requirementsTotal",
            "runId",
            "solverModel",
            "startedAt",
            "weightedAverageScore",
        ]
    );
    assert_eq!(summary["inputGeneratedArtifacts"], "generated/solver");
    assert_eq!(
        (
            summary["evalCount"].as_u64(),
            summary["requirementsTotal"].as_u64()
        ),
        (Some(3), Some(9))
    );
    let result = json_file(&generated.join("evals/strings/01-slugify.json"));
    assert_eq!(
        keys(&result),
        [
            "evalId",
            "evalPath",
            "judgeModel",
            "judgeSessionArtifactPath",
            "llmJudgeRequirements",
            "outputFiles",
            "score",
            "solverModel",
        ]
    );
    assert_eq!(
        result["judgeSessionArtifactPath"],
        "evals/strings/01-slugify.opencode-session.judge.json"
    );
    // The stub holds `slugify` and `string` but not `toLowerCase` or `replace`.
    assert_eq!(
        result["score"],
        serde_json::json!({"passedWeight": 1, "totalWeight": 4, "ratio": 0.25})
    );
    assert!(
        generated
            .join("evals/strings/01-slugify.opencode-session.judge.json")
            .is_file()
    );

    // A second judge run keeps the first summary as a backup.
    let again = run(
        &repo,
        &tmp,
        &[
            "judge",
            "--model",
            "mock/keyword-judge",
            "--input",
            "generated/solver",
            "--rerun-missing-judgements",
        ],
    );
    assert_eq!(again.status.code(), Some(0));
    let backups = std::fs::read_dir(&generated)
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("summary.backup.")
        });
    assert_eq!(backups.count(), 1);
    assert_nothing_left(&tmp, None);
}

#[test]
fn a_phase_timeout_aborts_the_session_and_cleans_up() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let output = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/slow-20000",
            "--timeout",
            "1500",
            "--output",
            "out",
            "--pattern",
            "evals/strings/*",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("structured-output: timed out after 1500 ms; the session was aborted"),
        "{stderr}"
    );
    assert_nothing_left(&tmp, None);
}

#[test]
fn model_paths_never_escape_the_output_folder() {
    let Some(_slot) = docker_ready() else { return };
    let (dir, repo, tmp) = workdir();
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    let answer = serde_json::json!([
        {"tool_calls": [{"name": "StructuredOutput", "arguments": {"summary": "s", "files": [
            {"path": "../../escaped.txt", "content": "x"},
            {"path": "/abs/rooted.txt", "content": "y"},
            {"path": "..\\..\\back.txt", "content": "z"}
        ]}}]},
        {"text": "done"}
    ]);
    std::fs::write(scripts.join("escape.json"), answer.to_string()).unwrap();
    let output = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/script:escape",
            "--mock-scripts",
            scripts.to_str().unwrap(),
            "--output",
            "out",
            "--pattern",
            "evals/strings/*",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let eval_out = repo.join("out/strings/01-slugify");
    for file in ["escaped.txt", "abs/rooted.txt", "back.txt"] {
        assert!(
            eval_out.join(file).is_file(),
            "{file} not written inside the eval's folder"
        );
    }
    for outside in [
        dir.path().join("escaped.txt"),
        repo.join("escaped.txt"),
        repo.join("out/escaped.txt"),
        PathBuf::from("/abs/rooted.txt"),
    ] {
        assert!(!outside.exists(), "{} was written", outside.display());
    }
    assert_eq!(
        manifest(&repo.join("out"))["evals"][0]["outputFiles"],
        serde_json::json!(["abs/rooted.txt", "back.txt", "escaped.txt"])
    );
}

#[test]
fn resume_redoes_nothing_that_is_done_and_one_bad_eval_errs_alone() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let first = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/echo",
            "--output",
            "out",
            "--pattern",
            "evals/strings/*",
        ],
    );
    assert_eq!(first.status.code(), Some(0));
    let done = repo.join("out/strings/01-slugify/opencode-session.solver.json");
    let before = std::fs::metadata(&done).unwrap().modified().unwrap();
    std::fs::write(
        repo.join("evals/collections/02-group-by/requirements.yaml"),
        "requirements: [\n",
    )
    .unwrap();

    let second = run(
        &repo,
        &tmp,
        &["run", "--model", "mock/echo", "--output", "out", "--resume"],
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("skipped 01-slugify (already done)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("errored 02-group-by: `") && stderr.contains("requirements.yaml`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::metadata(&done).unwrap().modified().unwrap(),
        before,
        "a done eval was redone"
    );
    let manifest = manifest(&repo.join("out"));
    let ids: Vec<_> = manifest["evals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|eval| eval["evalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["01-slugify", "03-retry-with-backoff"]);
    assert_eq!(
        (
            manifest["evalsProcessed"].as_u64(),
            manifest["evalsErrored"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_nothing_left(&tmp, None);
}

#[test]
fn server_logging_follows_the_environment() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let quiet = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/echo",
            "--output",
            "a",
            "--pattern",
            "evals/strings/*",
        ],
    );
    let quiet = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        quiet.contains("[container] opencode server listening"),
        "{quiet}"
    );
    assert!(
        !quiet.contains("[container] timestamp="),
        "logs printed without --print-logs: {quiet}"
    );
    assert!(!quiet.contains("[agent]"), "{quiet}");

    let printed = Command::new(env!("CARGO_BIN_EXE_evals-runner"))
        .args([
            "run",
            "--model",
            "mock/echo",
            "--output",
            "b",
            "--pattern",
            "evals/strings/*",
        ])
        .current_dir(&repo)
        .env("TMPDIR", &tmp)
        .env("OPENCODE_SERVER_PRINT_LOGS", "1")
        .env("OPENCODE_SERVER_LOG_LEVEL", "WARN")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stderr);
    assert!(
        printed
            .lines()
            .next()
            .unwrap()
            .contains("server-log-level=WARN print-logs=on"),
        "{printed}"
    );
    assert!(
        printed.contains("[container] timestamp=") && printed.contains("level=WARN"),
        "{printed}"
    );
    assert!(!printed.contains("level=INFO"), "{printed}");

    let silent = Command::new(env!("CARGO_BIN_EXE_evals-runner"))
        .args([
            "run",
            "--model",
            "mock/echo",
            "--output",
            "c",
            "--pattern",
            "evals/strings/*",
        ])
        .current_dir(&repo)
        .env("TMPDIR", &tmp)
        .env("OPENCODE_STREAM_CONTAINER_LOGS", "0")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&silent.stderr).contains("[container]"));
}

#[test]
fn one_requirement_can_be_judged_again_and_the_summary_is_rebuilt() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    let pattern = ["--pattern", "evals/strings/*"];
    let solved = run(
        &repo,
        &tmp,
        &[
            &[
                "run",
                "--model",
                "mock/echo",
                "--output",
                "generated/solver",
            ][..],
            &pattern,
        ]
        .concat(),
    );
    assert_eq!(solved.status.code(), Some(0));
    let judge = [
        "judge",
        "--model",
        "mock/keyword-judge",
        "--input",
        "generated/solver",
    ];
    assert_eq!(
        run(&repo, &tmp, &[&judge[..], &["--debug"]].concat())
            .status
            .code(),
        Some(0)
    );
    let debug = repo.join("generated/debug");
    let prompt = std::fs::read_to_string(debug.join("01-slugify.prompt.txt")).unwrap();
    assert!(
        prompt.contains("<requirement><id>lower-cases</id>"),
        "{prompt}"
    );
    assert!(json_file(&debug.join("01-slugify.output.json"))["requirements"].is_array());
    let result_path = repo.join("generated/evals/strings/01-slugify.json");
    let passed = |result: &serde_json::Value| -> Vec<bool> {
        result["llmJudgeRequirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["passed"].as_bool().unwrap())
            .collect()
    };
    assert_eq!(passed(&json_file(&result_path)), [true, false, false]);

    // The solver's file now lowers case and replaces; only `lower-cases` is judged again.
    let generated = repo.join("generated/solver/strings/01-slugify/slugify.ts");
    std::fs::write(
        &generated,
        "export function slugify(t: string): string { return t.toLowerCase().replace(/x/g, '-'); }",
    )
    .unwrap();
    let again = run(
        &repo,
        &tmp,
        &[
            &judge[..],
            &[
                "--rerun-requirements-file",
                "evals/strings/01-slugify/requirements.yaml",
                "--rerun-requirement-id",
                "lower-cases",
            ],
        ]
        .concat(),
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        passed(&json_file(&result_path)),
        [true, true, false],
        "only `lower-cases` may change"
    );
    let summary = json_file(&repo.join("generated/summary.json"));
    assert_eq!(
        (
            summary["requirementsPassed"].as_u64(),
            summary["weightedAverageScore"].as_f64()
        ),
        (Some(2), Some(0.5))
    );
    assert_nothing_left(&tmp, None);
}

#[test]
fn a_permission_request_from_a_live_server_is_refused_at_once() {
    let Some(_slot) = docker_ready() else { return };
    let (_dir, repo, tmp) = workdir();
    // An agent-level rule in the user's configuration outranks the runner's overlay, so this
    // makes the bash tool ask, as a user's file could.
    let ask = r#"{"agent": {"build": {"permission": {"bash": "ask"}}}}"#;
    std::fs::write(repo.join("ask.json"), ask).unwrap();
    let output = run(
        &repo,
        &tmp,
        &[
            "run",
            "--model",
            "mock/tool-then-answer",
            "--opencode-config",
            "ask.json",
            "--agent-logs",
            "--pattern",
            "evals/strings/*",
            "--output",
            "out",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("[agent] permission asked: bash echo hello > tool-output.txt"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[agent] runner refused permission `bash`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[agent] tool bash error: The user rejected permission"),
        "{stderr}"
    );
    assert_nothing_left(&tmp, None);
}
