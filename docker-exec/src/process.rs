//! The runner's one door to other processes: every `docker` invocation goes through [`Docker`].
//!
//! Values that must not appear on a command line (the server password, forwarded keys) are
//! handed over as [`Secret`]s and set in the child's environment only. Each invocation is logged
//! at `trace` level with its argv, which holds names, never values.

// This module is the single place allowed to spawn processes.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::trace;

/// A value that must never be printed: its `Debug` says `[redacted]`, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that hands it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A `docker` invocation that did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    /// The docker client could not be started at all.
    #[error("cannot run `{program}`")]
    Spawn {
        /// The docker client's path.
        program: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// Docker ran and failed; `stderr` is what it said.
    #[error("`docker {command}` failed: {stderr}")]
    Failed {
        /// The docker subcommand.
        command: String,
        /// Docker's own message, trimmed.
        stderr: String,
    },
}

/// The docker client, at a configurable path.
#[derive(Debug, Clone)]
pub struct Docker {
    program: PathBuf,
    /// `docker run` processes under way, shared by every clone.
    runs: Arc<AtomicUsize>,
}

impl Docker {
    /// A client that runs `program` (`docker` to look it up on `PATH`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            runs: Arc::default(),
        }
    }

    /// How many `docker run` processes are under way. They finish even when the caller stopped
    /// waiting, so an interrupted runner waits for zero before it sweeps containers away.
    pub fn runs_in_flight(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// The client's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs `docker <args>` with `env` added to the client's environment, and returns its
    /// standard output, trimmed. Blocking: call it from a blocking context.
    pub fn output(
        &self,
        args: &[OsString],
        env: &[(String, Secret)],
    ) -> Result<String, DockerError> {
        trace!(program = %self.program.display(), ?args, "docker");
        let is_run = args.first().is_some_and(|command| command == "run");
        let _counted = is_run.then(|| InFlight::enter(&self.runs));
        let mut expression = duct::cmd(self.program.as_os_str(), args)
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        for (name, value) in env {
            expression = expression.env(name, value.expose());
        }
        let output = expression
            .run()
            .map_err(|source| self.spawn_error(source))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned());
        }
        Err(DockerError::Failed {
            command: args
                .first()
                .map(|arg| arg.to_string_lossy().into_owned())
                .unwrap_or_default(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }

    /// [`Docker::output`] on tokio's blocking pool.
    pub async fn output_async(
        &self,
        args: Vec<OsString>,
        env: Vec<(String, Secret)>,
    ) -> Result<String, DockerError> {
        let docker = self.clone();
        tokio::task::spawn_blocking(move || docker.output(&args, &env))
            .await
            .unwrap_or_else(|join| {
                Err(DockerError::Failed {
                    command: "(task)".into(),
                    stderr: join.to_string(),
                })
            })
    }

    /// Runs `docker <args>` and calls `line` for each line it prints on stdout and stderr
    /// together, until it exits. Blocking: run it on a thread of its own.
    pub fn each_line(
        &self,
        args: &[OsString],
        mut line: impl FnMut(&str),
    ) -> Result<(), DockerError> {
        trace!(program = %self.program.display(), ?args, "docker (streamed)");
        let reader = duct::cmd(self.program.as_os_str(), args)
            .stderr_to_stdout()
            .unchecked()
            .reader()
            .map_err(|source| self.spawn_error(source))?;
        for text in BufReader::new(reader).lines() {
            match text {
                Ok(text) => line(&text),
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn spawn_error(&self, source: std::io::Error) -> DockerError {
        DockerError::Spawn {
            program: self.program.clone(),
            source,
        }
    }
}

/// One process counted in a shared counter until dropped, however its call ends.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `args` as the owned argv `Docker` takes.
pub fn args<const N: usize>(args: [&str; N]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("sk-123");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.expose(), "sk-123");
    }

    #[test]
    fn a_bare_program_name_is_looked_up_on_path() {
        let shell = Docker::new("sh");
        assert_eq!(
            shell.output(&args(["-c", "echo found"]), &[]).unwrap(),
            "found"
        );
    }

    #[test]
    fn secrets_reach_the_child_environment_only() {
        let shell = Docker::new("sh");
        let env = [("EVALS_TEST_SECRET".to_owned(), Secret::new("s3cret"))];
        let output = shell
            .output(&args(["-c", "printf %s \"$EVALS_TEST_SECRET\""]), &env)
            .unwrap();
        assert_eq!(output, "s3cret");
    }

    #[test]
    fn docker_runs_are_counted_only_while_they_run() {
        // `sh run` looks for a script named `run` and fails: the count must come back down
        // whether the process failed or could not start at all.
        let shell = Docker::new("sh");
        assert!(shell.output(&args(["run"]), &[]).is_err());
        assert_eq!(shell.runs_in_flight(), 0);
        let missing = Docker::new("/nonexistent/docker");
        assert!(missing.output(&args(["run"]), &[]).is_err());
        assert_eq!(missing.runs_in_flight(), 0);
    }

    #[test]
    fn a_missing_client_is_a_spawn_error_naming_it() {
        let docker = Docker::new("/nonexistent/docker");
        let err = docker.output(&args(["version"]), &[]).unwrap_err();
        assert!(matches!(err, DockerError::Spawn { .. }));
        assert!(
            err.to_string()
                .starts_with("cannot run `/nonexistent/docker`"),
            "{err}"
        );
    }
}
