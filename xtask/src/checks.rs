//! `cargo xtask test`: everything CI checks, from one command.
//!
//! First what the Docker tests need, when this machine allows it: the engine (through
//! `.ci/docker-up`) and the OpenCode image. Then `cargo fmt --check`, clippy with warnings
//! denied, and the whole workspace's tests, with `REQUIRE_DOCKER=1` when the engine is up so
//! that no Docker test can skip silently, and `CI=true` so that snapshot mismatches fail.
//! Every step runs even when an earlier one failed, so one run shows every problem.

use std::path::Path;

use anyhow::{Context as _, bail};

use crate::image::{self, BuildOptions};
use crate::{docker, progress, vars};

/// One cargo invocation of the checks.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        args: &["fmt", "--all", "--check"],
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "test",
        args: &["test", "--workspace"],
    },
];

/// Runs every check from the workspace `root`; fails when any of them failed.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let docker_up = prepare_docker(root);
    if docker_up {
        image::ensure(&BuildOptions::from_env()?).context("cannot build the OpenCode image")?;
    }

    let mut failed = Vec::new();
    for step in STEPS {
        progress!("test", "cargo {}", step.args.join(" "));
        if !run_step(root, step, docker_up)? {
            failed.push(step.name);
        }
    }
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    progress!("test", "fmt, clippy and tests all green");
    Ok(())
}

/// Brings the engine up when it can; says what is missing when it cannot.
fn prepare_docker(root: &Path) -> bool {
    if docker::engine_answers() {
        return true;
    }
    progress!(
        "test",
        "no Docker Engine answers `docker info`; running .ci/docker-up"
    );
    match docker::up(root) {
        Ok(()) => true,
        Err(error) => {
            let action = if vars::docker_required() {
                "fail"
            } else {
                "be skipped"
            };
            progress!("test", "{error:#}; the Docker tests will {action}");
            progress!(
                "test",
                "hint: install Docker Engine (Debian: `apt-get install docker.io`), start \
                 `dockerd`, and check that `docker info` answers"
            );
            false
        }
    }
}

/// Runs one step; `Ok(false)` when cargo ran and reported a failure.
fn run_step(root: &Path, step: &Step, docker_up: bool) -> anyhow::Result<bool> {
    let cargo = std::env::var_os(vars::CARGO).unwrap_or_else(|| "cargo".into());
    let mut command = duct::cmd(cargo, step.args).dir(root).env(vars::CI, "true");
    command = command.env(vars::INSTA_UPDATE, "no");
    if docker_up {
        command = command.env(vars::REQUIRE_DOCKER, "1");
    }
    let output = command
        .unchecked()
        .run()
        .with_context(|| format!("cannot run cargo {}", step.name))?;
    Ok(output.status.success())
}
