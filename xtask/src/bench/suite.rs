//! `bench suite`: the example suite through the release runner, to see what the runner itself
//! adds to each eval beyond Docker and the model, and how much memory it holds.
//!
//! The suite is copied into a temp folder and run with `mock/echo` and `--verbose` at
//! concurrency 1, 2 and 4, each run with a private `TMPDIR`. Each eval's wall time is split from
//! the runner's trace lines ([`super::trace`] says how). The runner's peak memory is its own
//! `VmHWM`, polled from `/proc` while it runs: `/usr/bin/time` would report the largest of the
//! runner and the `docker` clients it waited for. One more run at concurrency 1 without
//! `--verbose` shows what the trace, the agent logs and the container logs cost in all.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::trace::{self, EvalTimes, Timeline};
use super::{Table, ms, verdict};
use crate::progress;

/// The concurrencies measured.
const CONCURRENCIES: [u16; 3] = [1, 2, 4];

/// The overhead goal: under this share of an eval's wall time, in percent.
const OVERHEAD_GOAL_PERCENT: f64 = 10.0;

/// The memory goal: under 50 MB (10^6 bytes), in KiB.
const PEAK_GOAL_KIB: u64 = 50_000_000 / 1024;

/// How often the runner's `/proc` status is read.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How many of the runner's last lines an error shows.
const TAIL_LINES: usize = 20;

/// One run of the runner, measured.
#[derive(Debug)]
struct Measured {
    concurrency: u16,
    verbose: bool,
    /// From the spawn to the exit.
    wall: Duration,
    /// The runner's `VmHWM`, in KiB.
    peak_kib: Option<u64>,
    /// Evals the runner reported done or errored.
    finished: usize,
    /// The finished evals that trace lines timed.
    evals: Vec<EvalTimes>,
    status: ExitStatus,
}

/// Builds the runner, runs the suite `runs` times per concurrency plus once without
/// `--verbose`, and prints the report.
pub fn run(root: &Path, runs: usize) -> anyhow::Result<()> {
    super::require_engine_and_image(root)?;
    let runner = crate::build::build(
        root,
        "evals-cli",
        crate::build::RUNNER,
        crate::build::Profile::Release,
    )?;
    let work = tempfile::Builder::new()
        .prefix("evals-bench-suite-")
        .tempdir()
        .context("cannot create a temp folder")?;
    copy_dir(
        &root.join("examples").join("evals"),
        &work.path().join("evals"),
    )?;
    println!("bench suite: `evals-runner run --model mock/echo` on examples/evals, release build");
    println!("machine: {}", super::machine());
    let mut measured = Vec::new();
    for concurrency in CONCURRENCIES {
        for index in 1..=runs {
            let run = run_once(&runner, work.path(), concurrency, true, index)?;
            report_run(&run);
            measured.push(run);
        }
    }
    let quiet = run_once(&runner, work.path(), 1, false, 1)?;
    summary(&measured, &quiet);
    Ok(())
}

/// Runs the runner once in `work` and times it from its stderr.
fn run_once(
    runner: &Path,
    work: &Path,
    concurrency: u16,
    verbose: bool,
    index: usize,
) -> anyhow::Result<Measured> {
    let name = format!(
        "c{concurrency}-{index}{}",
        if verbose { "" } else { "-quiet" }
    );
    let tmp = work.join(format!("tmp-{name}"));
    std::fs::create_dir(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
    let concurrency_arg = concurrency.to_string();
    let mut args = vec![
        "run",
        "--model",
        "mock/echo",
        "--concurrency",
        &concurrency_arg,
    ];
    let output = format!("out-{name}");
    args.extend(["--output", &output]);
    if verbose {
        args.push("--verbose");
    }
    progress!("bench", "suite: evals-runner {}", args.join(" "));

    let started = Instant::now();
    let mut child = Command::new(runner)
        .args(&args)
        .current_dir(work)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{}`", runner.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_peak(child.id(), Arc::clone(&stop));
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let (timeline, tail) = read_lines(stderr, started);
    let status = child.wait().context("cannot wait for evals-runner")?;
    let wall = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let peak_kib = peak.join().unwrap_or(None);
    // Exit 1 means some eval errored, which the report shows; anything else is a failed run.
    if !matches!(status.code(), Some(0 | 1)) {
        bail!(
            "evals-runner failed ({status}); its last lines:\n{}",
            tail.join("\n")
        );
    }
    Ok(Measured {
        concurrency,
        verbose,
        wall,
        peak_kib,
        finished: timeline.finished(),
        evals: timeline.finish(),
        status,
    })
}

/// Reads the runner's stderr to its end, timestamping each line as it arrives. Returns the
/// timeline and the last lines, for an error.
fn read_lines(stderr: impl std::io::Read, started: Instant) -> (Timeline, Vec<String>) {
    let mut reader = BufReader::new(stderr);
    let (mut timeline, mut tail) = (Timeline::default(), Vec::new());
    let mut buffer = Vec::new();
    while reader
        .read_until(b'\n', &mut buffer)
        .is_ok_and(|read| read > 0)
    {
        let at = started.elapsed();
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end();
        if let Some(parsed) = trace::parse(line) {
            if matches!(parsed.event, trace::Event::Done | trace::Event::Errored) {
                progress!("bench", "suite: {line}");
            }
            timeline.record(at, &parsed);
        }
        if tail.len() == TAIL_LINES {
            tail.remove(0);
        }
        tail.push(line.to_owned());
        buffer.clear();
    }
    (timeline, tail)
}

/// Polls the `VmHWM` of process `pid` until it exits or `stop` is set; returns the last value.
///
/// `VmHWM` only grows, so the last value read is the peak, short of what the process may add
/// in its final poll interval. A process that has exited but is not yet reaped has no `VmHWM`,
/// which ends the polling before its id can be reused.
fn watch_peak(pid: u32, stop: Arc<AtomicBool>) -> JoinHandle<Option<u64>> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut peak = None;
        while !stop.load(Ordering::SeqCst) {
            let read = std::fs::read_to_string(&path).ok();
            match read
                .as_deref()
                .and_then(|status| status_kib(status, "VmHWM"))
            {
                Some(kib) => peak = Some(kib),
                None if peak.is_some() => break,
                None => {}
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        peak
    })
}

/// The value in KiB of field `key` (such as `VmHWM`) of a `/proc/<pid>/status` text.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| {
        line.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let mut words = line.split_whitespace().skip(1);
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// Copies the folder `from` to `to`, which must not exist, files and folders only.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir(to).with_context(|| format!("cannot create `{}`", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot read `{}`", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy `{}`", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The mean overhead share of `evals`, in percent.
fn mean_overhead_percent(evals: &[EvalTimes]) -> Option<f64> {
    let shares: Vec<f64> = evals.iter().map(EvalTimes::overhead_percent).collect();
    (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64)
}

fn report_run(run: &Measured) {
    println!();
    println!(
        "concurrency {}: runner wall {}, peak {}, exit {}",
        run.concurrency,
        ms(run.wall),
        kib(run.peak_kib),
        run.status
            .code()
            .map_or("signal".into(), |code| code.to_string())
    );
    let mut table = Table::new([
        "eval", "wall", "ready", "turn", "removed", "overhead", "share", "before", "after",
        "cleanup", "rest",
    ]);
    for eval in &run.evals {
        let errored = if eval.errored { " (errored)" } else { "" };
        table.row([
            format!("{}{errored}", eval.eval),
            ms(eval.wall),
            ms(eval.ready),
            ms(eval.turn),
            ms(eval.removed),
            ms(eval.overhead()),
            format!("{:.1}%", eval.overhead_percent()),
            ms(eval.before),
            ms(eval.after),
            ms(eval.cleanup),
            ms(eval.rest()),
        ]);
    }
    table.print();
    if let Some(mean) = mean_overhead_percent(&run.evals) {
        println!("mean overhead share: {mean:.1}%");
    }
}

fn summary(measured: &[Measured], quiet: &Measured) {
    println!();
    println!("summary");
    let mut table = Table::new([
        "concurrency",
        "verbose",
        "evals",
        "runner wall",
        "mean overhead",
        "max overhead",
        "peak",
    ]);
    for run in measured.iter().chain([quiet]) {
        let shares = run.evals.iter().map(EvalTimes::overhead_percent);
        let max = shares.fold(None, |max: Option<f64>, share| {
            Some(max.map_or(share, |m| m.max(share)))
        });
        let percent = |value: Option<f64>| value.map_or_else(|| "-".into(), |v| format!("{v:.1}%"));
        table.row([
            run.concurrency.to_string(),
            if run.verbose { "yes" } else { "no" }.to_owned(),
            run.finished.to_string(),
            ms(run.wall),
            percent(mean_overhead_percent(&run.evals)),
            percent(max),
            kib(run.peak_kib),
        ]);
    }
    table.print();
    println!();
    verdicts(measured, quiet);
}

fn verdicts(measured: &[Measured], quiet: &Measured) {
    let worst_mean = measured
        .iter()
        .filter_map(|run| mean_overhead_percent(&run.evals))
        .fold(f64::NAN, f64::max);
    println!(
        "overhead: worst mean share over the runs {worst_mean:.1}% (goal < {OVERHEAD_GOAL_PERCENT}%: {})",
        verdict(worst_mean < OVERHEAD_GOAL_PERCENT)
    );
    let worst_peak = measured
        .iter()
        .chain([quiet])
        .filter_map(|run| run.peak_kib)
        .max();
    println!(
        "memory: highest runner peak {} (goal < 50 MB = {PEAK_GOAL_KIB} KiB: {})",
        kib(worst_peak),
        verdict(worst_peak.is_some_and(|peak| peak < PEAK_GOAL_KIB))
    );
    println!(
        "wall = first `docker run` request (container-ready line − its took) to the `done` line; \
         overhead = wall − ready − turn (sum of phase took) − removed; before/after/cleanup/rest \
         split the overhead (see `xtask/src/bench/trace.rs`); peak = the runner's own VmHWM, \
         docker clients excluded"
    );
}

fn kib(value: Option<u64>) -> String {
    value.map_or_else(|| "unknown".into(), |kib| format!("{kib} KiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str =
        "Name:\tevals-runner\nVmPeak:\t  900000 kB\nVmHWM:\t   23456 kB\nVmRSS:\t   20000 kB\n";

    #[test]
    fn status_fields_are_read_in_kib() {
        assert_eq!(status_kib(STATUS, "VmHWM"), Some(23456));
        assert_eq!(status_kib(STATUS, "VmRSS"), Some(20000));
    }

    #[test]
    fn a_missing_field_is_none() {
        assert_eq!(
            status_kib("Name:\tzombie\nState:\tZ (zombie)\n", "VmHWM"),
            None
        );
        assert_eq!(status_kib(STATUS, "VmHW"), None);
    }

    #[test]
    fn the_mean_overhead_is_over_evals() {
        let eval = |wall, ready| EvalTimes {
            wall: Duration::from_millis(wall),
            ready: Duration::from_millis(ready),
            ..EvalTimes::default()
        };
        // 10% and 30% overhead.
        let evals = [eval(1000, 900), eval(1000, 700)];
        let mean = mean_overhead_percent(&evals).unwrap();
        assert!((mean - 20.0).abs() < 1e-9);
        assert_eq!(mean_overhead_percent(&[]), None);
    }

    #[test]
    fn the_runners_stderr_becomes_a_timeline() {
        let stderr = "[opencode-trace][worker 1/1][e][solver] container-ready took=5ms\n\
                      noise\n[opencode-docker] done    e\n";
        let (timeline, tail) = read_lines(stderr.as_bytes(), Instant::now());
        let evals = timeline.finish();
        assert_eq!(evals.len(), 1);
        assert_eq!(evals[0].ready, Duration::from_millis(5));
        assert_eq!(tail.len(), 3);
    }
}
