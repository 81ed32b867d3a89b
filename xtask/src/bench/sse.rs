//! `bench sse`: the event-stream decoder's throughput and peak memory, from the crate's own
//! measurements.
//!
//! The `evals-sse-logs` example `sse_bench`, built in release, decodes frames only; each size
//! runs in a process of its own, because peak memory (`VmHWM`) is process-wide: a decoder that
//! streams shows the same peak for 10 MB as for 100 MB. The crate's `cargo bench` then gives
//! the median of five passes for frames alone and for frames decoded into typed events, the
//! work the runner does for agent logs.

use std::path::Path;
use std::sync::LazyLock;

use anyhow::{Context as _, bail};
use regex::Regex;

use super::{Table, median, verdict};
use crate::{progress, vars};

/// The sizes decoded, in MB.
const SIZES: [u32; 2] = [10, 100];

/// The throughput goal, in MB/s, at every size.
const THROUGHPUT_GOAL: f64 = 300.0;

/// How much more the peak at 100 MB may be than the peak at 10 MB, in KiB.
const PEAK_GROWTH_GOAL_KIB: f64 = 1024.0;

/// What one `sse_bench` process printed.
#[derive(Debug, Clone, PartialEq)]
pub struct SseRun {
    /// Megabytes decoded.
    pub mb: u32,
    /// Seconds the decoding took.
    pub seconds: f64,
    /// Decoding throughput, MB/s.
    pub mb_per_s: f64,
    /// Frames decoded.
    pub frames: u64,
    /// The process's peak resident memory, KiB.
    pub peak_kib: u64,
}

/// Builds the example, runs it `runs` times per size, sizes alternating, and prints the report.
pub fn run(root: &Path, runs: usize) -> anyhow::Result<()> {
    let example = crate::build::build(
        root,
        "evals-sse-logs",
        crate::build::Target::Example("sse_bench"),
        crate::build::Profile::Release,
    )?;
    let mut results = Vec::new();
    for _ in 0..runs {
        for mb in SIZES {
            let line = duct::cmd(&example, [mb.to_string()])
                .read()
                .with_context(|| format!("cannot run `{}`", example.display()))?;
            progress!("bench", "sse: {line}");
            results.push(parse(&line).with_context(|| format!("unexpected output: {line}"))?);
        }
    }
    report(&results, runs);
    let medians = cargo_bench(root)?;
    report_cargo_bench(&medians);
    Ok(())
}

/// One line of `cargo bench -p evals-sse-logs`: the median of its passes for one size and mode.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchMedian {
    /// Megabytes decoded per pass.
    pub mb: u32,
    /// `frames` or `frames+events`.
    pub mode: String,
    /// The median throughput, MB/s.
    pub median: f64,
    /// The best throughput, MB/s.
    pub best: f64,
}

/// Runs the crate's throughput bench and reads its medians.
fn cargo_bench(root: &Path) -> anyhow::Result<Vec<BenchMedian>> {
    let cargo = std::env::var_os(vars::CARGO).unwrap_or_else(|| "cargo".into());
    progress!(
        "bench",
        "sse: cargo bench -p evals-sse-logs --bench sse_throughput"
    );
    let args = [
        "bench",
        "--quiet",
        "-p",
        "evals-sse-logs",
        "--bench",
        "sse_throughput",
    ];
    let stdout = duct::cmd(cargo, args)
        .dir(root)
        .read()
        .context("`cargo bench -p evals-sse-logs` failed")?;
    let medians: Vec<BenchMedian> = stdout.lines().filter_map(parse_bench_line).collect();
    if medians.is_empty() {
        bail!("`cargo bench -p evals-sse-logs` printed no medians:\n{stdout}");
    }
    Ok(medians)
}

/// Reads `  N MB MODE  median M MB/s, best B MB/s (F frames)`.
pub fn parse_bench_line(line: &str) -> Option<BenchMedian> {
    static LINE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\s*(\d+) MB (\S+)\s+median\s+(\d+) MB/s, best\s+(\d+) MB/s")
            .expect("the pattern is valid")
    });
    let found = LINE.captures(line)?;
    Some(BenchMedian {
        mb: found[1].parse().ok()?,
        mode: found[2].to_owned(),
        median: found[3].parse().ok()?,
        best: found[4].parse().ok()?,
    })
}

fn report_cargo_bench(medians: &[BenchMedian]) {
    println!();
    println!("cargo bench -p evals-sse-logs (median of 5 passes per line, one process):");
    let mut table = Table::new(["size", "decoding", "median", "best", "goal ≥ 300 MB/s"]);
    for line in medians {
        table.row([
            format!("{} MB", line.mb),
            line.mode.clone(),
            format!("{:.0} MB/s", line.median),
            format!("{:.0} MB/s", line.best),
            verdict(line.median >= THROUGHPUT_GOAL).to_owned(),
        ]);
    }
    table.print();
    println!(
        "frames = SSE framing only; frames+events = each frame's JSON decoded into a typed event too"
    );
}

/// Reads `N MB in S s: T MB/s, F frames, peak RSS K KiB`, the example's one line.
pub fn parse(line: &str) -> anyhow::Result<SseRun> {
    static LINE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(\d+) MB in ([\d.]+) s: (\d+) MB/s, (\d+) frames, peak RSS (\d+) KiB$")
            .expect("the pattern is valid")
    });
    let Some(found) = LINE.captures(line.trim()) else {
        bail!("not the line `sse_bench` prints");
    };
    Ok(SseRun {
        mb: found[1].parse()?,
        seconds: found[2].parse()?,
        mb_per_s: found[3].parse()?,
        frames: found[4].parse()?,
        peak_kib: found[5].parse()?,
    })
}

fn report(results: &[SseRun], runs: usize) {
    println!(
        "bench sse: example `sse_bench` (release, frames only), {runs} process(es) per size, \
         64 KiB chunks"
    );
    println!("machine: {}", super::machine());
    println!();
    let mut table = Table::new(["size", "time", "throughput", "frames", "peak RSS"]);
    for result in results {
        table.row([
            format!("{} MB", result.mb),
            format!("{:.3} s", result.seconds),
            format!("{:.0} MB/s", result.mb_per_s),
            result.frames.to_string(),
            format!("{} KiB", result.peak_kib),
        ]);
    }
    table.print();
    println!();
    let medians: Vec<(u32, f64, f64)> = SIZES
        .iter()
        .map(|&mb| {
            let of = |value: fn(&SseRun) -> f64| {
                let values: Vec<f64> = results.iter().filter(|r| r.mb == mb).map(value).collect();
                median(&values).unwrap_or(f64::NAN)
            };
            (mb, of(|r| r.mb_per_s), of(|r| r.peak_kib as f64))
        })
        .collect();
    for &(mb, speed, peak) in &medians {
        println!(
            "{mb} MB: median {speed:.0} MB/s (goal ≥ {THROUGHPUT_GOAL} MB/s: {}), median peak {peak:.0} KiB",
            verdict(speed >= THROUGHPUT_GOAL)
        );
    }
    if let [(_, _, small), (_, _, large)] = medians[..] {
        let growth = large - small;
        println!(
            "peak at 100 MB minus peak at 10 MB (medians): {growth:+.0} KiB (goal ≤ +{PEAK_GROWTH_GOAL_KIB:.0} KiB: {})",
            verdict(growth <= PEAK_GROWTH_GOAL_KIB)
        );
    }
    println!(
        "throughput = bytes decoded / decoding time, as the example measures it; peak RSS = its VmHWM"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_line_is_parsed() {
        let run = parse("100 MB in 0.201 s: 497 MB/s, 81234 frames, peak RSS 2304 KiB\n").unwrap();
        assert_eq!(
            run,
            SseRun {
                mb: 100,
                seconds: 0.201,
                mb_per_s: 497.0,
                frames: 81234,
                peak_kib: 2304,
            }
        );
    }

    #[test]
    fn the_cargo_bench_lines_are_parsed() {
        let line = " 100 MB frames+events  median    167 MB/s, best    190 MB/s (436463 frames)";
        let median = parse_bench_line(line).unwrap();
        assert_eq!(
            median,
            BenchMedian {
                mb: 100,
                mode: "frames+events".into(),
                median: 167.0,
                best: 190.0,
            }
        );
        assert_eq!(
            parse_bench_line("peak RSS of the whole bench: 2416 KiB"),
            None
        );
    }

    #[test]
    fn an_unknown_peak_is_an_error() {
        assert!(parse("10 MB in 0.020 s: 500 MB/s, 10 frames, peak RSS unknown").is_err());
    }
}
