//! Decoder throughput on a real capture repeated to 10 MB and 100 MB, fed in 64 KiB chunks.
//!
//! `cargo bench -p evals-sse-logs` prints MB/s for frames alone and for frames decoded into
//! events. Peak memory is process-wide, so it is measured one size per process by the
//! `sse_bench` example (`cargo run --release -p evals-sse-logs --example sse_bench -- 100`).

// A bench's report is its output.
#![allow(clippy::print_stdout)]

mod common;

const MB: usize = 1_000_000;
const ROUNDS: usize = 5;

fn main() {
    // `cargo test --benches` runs this with `--test`-like flags; only `--bench` means measure.
    if !std::env::args().any(|arg| arg == "--bench") {
        common::run(MB, true);
        return;
    }
    for size in [10, 100] {
        for (label, events) in [("frames", false), ("frames+events", true)] {
            let passes: Vec<common::Pass> = (0..ROUNDS)
                .map(|_| common::run(size * MB, events))
                .collect();
            let mut speeds: Vec<f64> = passes.iter().map(common::Pass::mb_per_s).collect();
            speeds.sort_by(f64::total_cmp);
            let (median, best) = (speeds[ROUNDS / 2], speeds[ROUNDS - 1]);
            let frames = passes[0].frames;
            println!(
                "{size:>4} MB {label:<14} median {median:>6.0} MB/s, best {best:>6.0} MB/s ({frames} frames)"
            );
        }
    }
    // Process-wide, so it covers every size; the example measures one size per process.
    if let Some(kib) = common::peak_rss_kib() {
        println!("peak RSS of the whole bench: {kib} KiB");
    }
}
