//! `cargo xtask bench`: the runner's performance goals, measured.
//!
//! Three benchmarks, each printing a table and a verdict per goal on standard output (progress
//! goes to standard error):
//!
//! - [`start`]: a container started through the runner's own code against a bare `docker run`
//!   of the same container with a tight health-poll loop, and the time to remove it.
//! - [`sse`]: the event-stream decoder's throughput, and its peak memory at 10 and 100 MB.
//! - [`suite`]: the example suite through the release runner at concurrency 1, 2 and 4: the
//!   runner's own share of each eval's wall time, and its peak memory.
//!
//! These measure; they are never timed tests. A missed goal is reported, not an error: the
//! command fails only when a measurement cannot be made.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

pub mod sse;
pub mod start;
pub mod suite;
pub mod trace;

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;

use crate::{docker, image};

/// Which benchmark to run.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Bench {
    /// Container start through the runner's code against a bare `docker run` with a tight
    /// health poll (goal: ratio ≤ 1.05), and container removal (goal: under 1 s).
    ///
    /// Runner and bare starts alternate, after one warm-up pair that is not counted. Every
    /// container is removed.
    Start {
        /// Counted starts per side (at least 10 for the goal's median).
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// Event-stream decoding of 10 MB and 100 MB, one process each (goals: ≥ 300 MB/s, and a
    /// peak memory at 100 MB at most 1 MiB above the one at 10 MB).
    ///
    /// Then runs the crate's `cargo bench`, which also decodes each frame into a typed event.
    Sse {
        /// Processes per size.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The example suite through the release runner with `mock/echo` at concurrency 1, 2 and 4
    /// (goals: runner overhead under 10% of each eval's wall time, runner peak memory under
    /// 50 MB).
    Suite {
        /// Runs per concurrency.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
}

/// Runs `bench` from the workspace `root`, printing its report.
pub fn run(root: &Path, bench: &Bench) -> anyhow::Result<()> {
    match *bench {
        Bench::Start { runs } => start::run(root, at_least_one(runs)?),
        Bench::Sse { runs } => sse::run(root, at_least_one(runs)?),
        Bench::Suite { runs } => suite::run(root, at_least_one(runs)?),
    }
}

fn at_least_one(runs: usize) -> anyhow::Result<usize> {
    if runs == 0 {
        bail!("`--runs` must be at least 1");
    }
    Ok(runs)
}

/// The median of `values`: the middle one, or the mean of the two middle ones; `None` when
/// there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// [`median`] of durations.
pub fn median_duration(values: &[Duration]) -> Option<Duration> {
    let seconds: Vec<f64> = values.iter().map(Duration::as_secs_f64).collect();
    median(&seconds).map(Duration::from_secs_f64)
}

/// `duration` in whole milliseconds, as the tables show it.
pub fn ms(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// How a goal is reported.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// A table with aligned columns, printed on standard output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Self {
            rows: vec![header.map(String::from).to_vec()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows.push(cells.into_iter().collect());
    }

    /// The table as text: each column as wide as its widest cell, two spaces apart, no
    /// trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|column| {
                let cells = self.rows.iter().filter_map(|row| row.get(column));
                cells.map(|cell| cell.chars().count()).max().unwrap_or(0)
            })
            .collect();
        let lines = self.rows.iter().map(|row| {
            let cells = row.iter().zip(&widths);
            let padded: Vec<String> = cells
                .map(|(cell, &width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_owned()
        });
        lines.map(|line| line + "\n").collect()
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Fails unless the Docker Engine answers and the OpenCode image exists: a benchmark never
/// builds it, since a build would run in the middle of what it measures.
pub fn require_engine_and_image(root: &Path) -> anyhow::Result<()> {
    docker::up(root)?;
    if docker::inspect(image::TAG)?.is_none() {
        bail!(
            "no image `{}`; build it first with `cargo xtask image`",
            image::TAG
        );
    }
    Ok(())
}

/// The machine, for the report: processor count, kernel, and the load averages now (over 1, 5
/// and 15 minutes), since anything else running on it skews every figure.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease");
    let load = read("/proc/loadavg");
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{cores} cores, Linux {}, load average {}",
        kernel.trim(),
        load.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 10.0]), Some(3.5));
    }

    #[test]
    fn no_values_have_no_median() {
        assert_eq!(median(&[]), None);
        assert_eq!(median_duration(&[]), None);
    }

    #[test]
    fn durations_have_medians_too() {
        let values = [300, 100, 200].map(Duration::from_millis);
        assert_eq!(median_duration(&values), Some(Duration::from_millis(200)));
    }

    #[test]
    fn tables_align_their_columns() {
        let mut table = Table::new(["eval", "wall"]);
        table.row(["01-slugify".into(), "4 s".into()]);
        table.row(["x".into(), "12 s".into()]);
        assert_eq!(
            table.render(),
            "eval        wall\n01-slugify  4 s\nx           12 s\n"
        );
    }

    #[test]
    fn zero_runs_are_refused() {
        assert!(at_least_one(0).is_err());
        assert_eq!(at_least_one(3).unwrap(), 3);
    }
}
