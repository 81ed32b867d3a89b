//! `evals-runner run` as an unprivileged user of the `docker` group, the way most people run it.
//!
//! The agent runs as root inside its container, so what its tools write in the workspace is
//! owned by root on the host; the runner must still leave its temp root empty. The test needs
//! root (to make the user) and Docker with the local image: without root it is skipped with a
//! reason; without Docker it is skipped too, unless `REQUIRE_DOCKER=1`, under which it fails.

// This test drives the real binary, the docker client and the system's user tools.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use evals_test_support::{IMAGE, copy_tree, docker_ready};

/// The unprivileged user the runner runs as.
const USER: &str = "evals-tester";

/// Docker's socket, which members of the `docker` group must be able to use.
const SOCKET: &str = "/var/run/docker.sock";

/// Whether the test can run here; says why not, and panics under `REQUIRE_DOCKER=1` when only
/// Docker is missing.
fn can_run() -> bool {
    if !std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0) {
        eprintln!("skipped: making the user `{USER}` takes root");
        return false;
    }
    docker_ready(IMAGE)
}

/// Runs `program args`, returning its standard output; panics, with its output, on failure.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Makes `USER`, a member of `docker`, unless it exists; and lets that group use the socket.
fn ensure_user() {
    run("groupadd", &["-f", "docker"]);
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|output| output.status.success());
    if !exists {
        let shell = "/usr/sbin/nologin";
        let home = ["--no-create-home", "--home-dir", "/nonexistent"];
        run("useradd", &[&home[..], &["--shell", shell, USER]].concat());
    }
    run("usermod", &["--append", "--groups", "docker", USER]);

    // dockerd hands its socket to the `docker` group only when that group exists as the daemon
    // starts; a group made later, as above on a fresh machine, leaves the socket `root:root`
    // and its members unable to connect.
    let docker_gid: u32 = run("getent", &["group", "docker"])
        .split(':')
        .nth(2)
        .and_then(|gid| gid.parse().ok())
        .unwrap();
    let socket = std::fs::metadata(SOCKET).unwrap();
    if socket.gid() != docker_gid {
        run("chgrp", &["docker", SOCKET]);
    }
    if socket.mode() & 0o060 != 0o060 {
        run("chmod", &["g+rw", SOCKET]);
    }
}

/// Whether `USER`, in no group that owns them, may reach and run `path`.
fn reachable_by_others(path: &Path) -> bool {
    let executable = std::fs::metadata(path).is_ok_and(|meta| meta.mode() & 0o005 == 0o005);
    executable
        && path
            .ancestors()
            .skip(1)
            .all(|dir| std::fs::metadata(dir).is_ok_and(|meta| meta.mode() & 0o001 != 0))
}

/// The runner binary, copied under `dir` when the user could not run it where it was built.
fn runner_binary(dir: &Path) -> PathBuf {
    let built = Path::new(env!("CARGO_BIN_EXE_evals-runner"));
    if reachable_by_others(built) {
        return built.into();
    }
    let copy = dir.join("evals-runner");
    std::fs::copy(built, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

#[test]
fn an_unprivileged_docker_user_runs_a_tool_using_agent_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    ensure_user();
    let work = tempfile::tempdir().unwrap();
    let (repo, tmp, home) = (
        work.path().join("repo"),
        work.path().join("tmp"),
        work.path().join("home"),
    );
    copy_tree(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/evals")),
        &repo.join("evals"),
    );
    std::fs::create_dir(&tmp).unwrap();
    std::fs::create_dir(&home).unwrap();
    let runner = runner_binary(work.path());
    // Everything the user works in is its own; its temp root is private to it.
    run("chown", &["-R", &format!("{USER}:"), &path(work.path())]);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();

    let output = Command::new("runuser")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(&repo)
        .args(["-u", USER, "--", "env"])
        .arg(format!("HOME={}", path(&home)))
        .arg(format!("TMPDIR={}", path(&tmp)))
        .arg(&runner)
        .args(["run", "--model", "mock/tool-then-answer"])
        .args(["--pattern", "evals/strings/*", "--output", "out"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, Vec::<std::ffi::OsString>::new(), "{stderr}");
    // The agent's tool did write a file as root: the cleanup above had something to do.
    let snapshot =
        std::fs::read_to_string(repo.join("out/strings/01-slugify/opencode-session.solver.json"))
            .unwrap();
    assert!(snapshot.contains("tool-output.txt"), "{snapshot}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("out/manifest.json")).unwrap())
            .unwrap();
    let filter = format!(
        "label=evals-runner.run-id={}",
        manifest["runId"].as_str().unwrap()
    );
    assert_eq!(
        run("docker", &["ps", "--all", "--quiet", "--filter", &filter]),
        ""
    );
}

fn path(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}
