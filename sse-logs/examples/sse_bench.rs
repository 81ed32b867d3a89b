//! Decodes N MB (default 100) of a generated event stream, fed in 64 KiB chunks, and prints the
//! throughput and the process's peak memory (`VmHWM`).
//!
//! Run it once per size to compare peak memory, which is process-wide:
//! `cargo run --release -p evals-sse-logs --example sse_bench -- 10`, then `-- 100`. The
//! stream is generated as it is read, so a decoder that streams shows the same peak for both.

// An example's report is its output.
#![allow(clippy::print_stdout)]

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mb: usize = match std::env::args().nth(1).map(|arg| arg.parse()) {
        None => 100,
        Some(Ok(mb)) => mb,
        Some(Err(_)) => {
            eprintln!("usage: sse_bench [MEGABYTES]");
            std::process::exit(2);
        }
    };
    let pass = common::run(mb * 1_000_000, false);
    let peak = common::peak_rss_kib().map_or("unknown".into(), |kib| format!("{kib} KiB"));
    println!(
        "{mb} MB in {:.3} s: {:.0} MB/s, {} frames, peak RSS {peak}",
        pass.elapsed.as_secs_f64(),
        pass.mb_per_s(),
        pass.frames
    );
}
