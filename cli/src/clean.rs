//! `evals-runner clean`, which removes what dead runs left behind, and [`sweep_run`], a run's
//! own sweep on the way out.
//!
//! A run is alive while it holds its lock ([`evals_auth_isolation::RunLock`]) under one of the
//! temp roots. Everything else that carries a run id (containers labelled with it, temp
//! directories named with it, a lock file nobody holds) belongs to a dead run and goes. A run
//! whose containers exist but whose lock file is missing is dead too: the lock lives exactly as
//! long as the run, so the only way to lose it is to have ended.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use evals_auth_isolation::{
    Leftover, LeftoverKind, SweepError, is_run_id, leftovers, remove_leftover, run_is_alive,
};
use evals_docker_exec::{Docker, remove_run_containers, run_containers};

use crate::error::UserError;

/// What a clean or a sweep removed, and what it kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanReport {
    /// The containers removed.
    pub containers: Vec<String>,
    /// The temp directories removed.
    pub directories: Vec<PathBuf>,
    /// The lock files of dead runs removed.
    pub lock_files: Vec<PathBuf>,
    /// The runs found dead.
    pub dead_runs: Vec<String>,
    /// The runs found alive, left alone.
    pub live_runs: Vec<String>,
}

impl CleanReport {
    /// `removed 2 containers and 5 directories of 1 dead run; kept 1 live run`.
    pub fn summary(&self) -> String {
        format!(
            "removed {} and {} of {}; kept {}",
            count(self.containers.len(), "container"),
            count(self.directories.len(), "directory"),
            count(self.dead_runs.len(), "dead run"),
            count(self.live_runs.len(), "live run"),
        )
    }
}

/// `1 container`, `2 containers`, `0 directories`.
fn count(n: usize, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

/// Removes the containers and temp directories of every dead run, never touching a live one,
/// and prints one line per thing removed or kept, then [`CleanReport::summary`].
///
/// A run is alive when its lock is held under any of `temp_roots`, so pass every root a run may
/// use (the system temp directory and any `--host-tmpdir`). Removals that fail do not stop the
/// others; they are returned together as one error after the summary.
pub async fn clean(
    docker: &Docker,
    temp_roots: &[PathBuf],
    out: &mut (dyn Write + Send),
) -> anyhow::Result<CleanReport> {
    clean_runs(docker, temp_roots, None, out).await
}

/// [`clean`], limited to the runs in `only` when given.
pub async fn clean_runs(
    docker: &Docker,
    temp_roots: &[PathBuf],
    only: Option<&[&str]>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<CleanReport> {
    anyhow::ensure!(
        !temp_roots.is_empty(),
        "a clean needs at least one temp root"
    );
    let (containers, found) = survey(docker, temp_roots).await?;
    let runs: BTreeSet<&str> = containers
        .iter()
        .chain(found.iter().map(|leftover| &leftover.run_id))
        .map(String::as_str)
        .filter(|run_id| only.is_none_or(|only| only.contains(run_id)))
        .collect();
    let mut report = CleanReport::default();
    let mut failures = Vec::new();
    for run_id in runs {
        if !is_run_id(run_id) {
            // Only a label can carry such an id; whoever set it, it names no run of ours.
            print(
                out,
                format_args!("skipped label value `{run_id}`: not a run id"),
            )?;
        } else if temp_roots.iter().any(|root| run_is_alive(root, run_id)) {
            print(out, format_args!("kept live run {run_id}"))?;
            report.live_runs.push(run_id.into());
        } else {
            let swept = sweep(docker, run_id, &found).await;
            swept.print(out)?;
            report.dead_runs.push(run_id.into());
            failures.extend(swept.merge_into(&mut report));
        }
    }
    print(out, format_args!("{}", report.summary()))?;
    failed(failures).map(|()| report)
}

/// The run id of every container of the runner, and every leftover under `temp_roots`.
async fn survey(
    docker: &Docker,
    temp_roots: &[PathBuf],
) -> anyhow::Result<(Vec<String>, Vec<Leftover>)> {
    let containers = run_containers(docker, None).await.map_err(|err| {
        UserError::new(
            err,
            "start the Docker Engine, or pass `--docker PATH` to the client to use",
        )
    })?;
    let mut found = Vec::new();
    for root in temp_roots {
        found.extend(leftovers(root).map_err(|err| {
            UserError::new(err, "pass `--host-tmpdir` the directory the runs used")
        })?);
    }
    let run_ids = containers.into_iter().map(|container| container.run_id);
    Ok((run_ids.collect(), found))
}

/// Removes every container and temp directory of run `run_id` under `temp_root`, whether the
/// run is alive or not, and returns what it removed. The run's lock file stays while the run
/// holds it. Used by a run on its way out (Ctrl-C, SIGTERM); every removal is tried, and the
/// failures are returned together.
pub async fn sweep_run(
    docker: &Docker,
    temp_root: &Path,
    run_id: &str,
) -> anyhow::Result<CleanReport> {
    anyhow::ensure!(is_run_id(run_id), SweepError::InvalidRunId(run_id.into()));
    let found = leftovers(temp_root)?;
    let mut report = CleanReport::default();
    let failures = sweep(docker, run_id, &found).await.merge_into(&mut report);
    failed(failures).map(|()| report)
}

/// What the removal of one run's things did.
#[derive(Default)]
struct Swept {
    containers: Vec<String>,
    directories: Vec<PathBuf>,
    lock_files: Vec<PathBuf>,
    failures: Vec<anyhow::Error>,
}

/// Removes the containers of `run_id`, then its entries among `found`.
async fn sweep(docker: &Docker, run_id: &str, found: &[Leftover]) -> Swept {
    let mut swept = Swept::default();
    // Containers first: they have the directories mounted.
    match remove_run_containers(docker, run_id).await {
        Ok(names) => swept.containers = names,
        Err(err) => swept.failures.push(err.into()),
    }
    for leftover in found.iter().filter(|leftover| leftover.run_id == run_id) {
        match remove_leftover(leftover) {
            Ok(false) => {}
            Ok(true) if leftover.kind == LeftoverKind::Lock => {
                swept.lock_files.push(leftover.path.clone());
            }
            Ok(true) => swept.directories.push(leftover.path.clone()),
            Err(err) => swept.failures.push(err.into()),
        }
    }
    swept
}

impl Swept {
    /// One line per thing removed.
    fn print(&self, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        for name in &self.containers {
            print(out, format_args!("removed container {name}"))?;
        }
        for path in &self.directories {
            print(out, format_args!("removed directory {}", path.display()))?;
        }
        for path in &self.lock_files {
            print(out, format_args!("removed lock file {}", path.display()))?;
        }
        Ok(())
    }

    /// Adds what was removed to `report`, and hands back the failures.
    fn merge_into(self, report: &mut CleanReport) -> Vec<anyhow::Error> {
        report.containers.extend(self.containers);
        report.directories.extend(self.directories);
        report.lock_files.extend(self.lock_files);
        self.failures
    }
}

/// One line of output.
fn print(out: &mut (dyn Write + Send), line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    writeln!(out, "{line}").context("cannot write to standard output")
}

/// `Ok` without failures, else one error that lists them all.
fn failed(failures: Vec<anyhow::Error>) -> anyhow::Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = failures.iter().map(|err| format!("  {err:#}")).collect();
    let message = format!(
        "{} could not be removed:\n{}",
        count(failures.len(), "leftover"),
        lines.join("\n")
    );
    let hint = if failures.iter().any(is_permission_problem) {
        "what a container made as root can only be removed as root: run `sudo evals-runner clean`"
    } else {
        "see the causes above, then run `evals-runner clean` again"
    };
    Err(UserError::new(message, hint).into())
}

/// Whether `err` is a removal this user had no permission for.
fn is_permission_problem(err: &anyhow::Error) -> bool {
    match err.downcast_ref::<SweepError>() {
        Some(SweepError::ForeignEntry { .. }) => true,
        Some(SweepError::Remove { source, .. }) => {
            source.kind() == std::io::ErrorKind::PermissionDenied
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_in_words() {
        let mut report = CleanReport {
            containers: vec!["a".into(), "b".into()],
            directories: vec!["x".into(); 5],
            dead_runs: vec!["0a".into()],
            live_runs: vec!["1b".into()],
            ..CleanReport::default()
        };
        assert_eq!(
            report.summary(),
            "removed 2 containers and 5 directories of 1 dead run; kept 1 live run"
        );
        report.containers.truncate(1);
        report.directories.truncate(1);
        report.dead_runs.clear();
        report.live_runs.push("2c".into());
        assert_eq!(
            report.summary(),
            "removed 1 container and 1 directory of 0 dead runs; kept 2 live runs"
        );
    }

    #[test]
    fn failures_are_listed_with_a_hint_for_root_owned_files() {
        let foreign = SweepError::ForeignEntry {
            dir: "/tmp/evals-opencode-0a-x".into(),
            entry: "/tmp/evals-opencode-0a-x/node_modules".into(),
            owner: 0,
            source: std::io::ErrorKind::PermissionDenied.into(),
        };
        let err = failed(vec![foreign.into(), anyhow::anyhow!("docker said no")]).unwrap_err();
        let user = err.downcast_ref::<UserError>().unwrap();
        assert_eq!(
            user.message,
            "2 leftovers could not be removed:\n  cannot remove `/tmp/evals-opencode-0a-x`: \
             `/tmp/evals-opencode-0a-x/node_modules` in it belongs to uid 0, not to the \
             directory's owner; a container probably created it as root: permission denied\n  \
             docker said no"
        );
        assert!(
            user.hint
                .as_deref()
                .unwrap()
                .contains("sudo evals-runner clean")
        );
        assert!(failed(vec![]).is_ok());
    }
}
