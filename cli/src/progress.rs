//! What a person watching a run sees: on a terminal, a progress bar with done, failed and
//! running counts; elsewhere, one plain line per finished eval. A short table ends the run.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The run's progress display; every log line goes through it so the bar is never torn.
pub struct Progress {
    bar: Option<ProgressBar>,
    failed: AtomicUsize,
    running: AtomicUsize,
}

impl Progress {
    /// A bar on standard error when it is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} evals  {msg}  {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            failed: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        }
    }

    /// Sets how many evals the run has.
    pub fn set_total(&self, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    /// Prints one log line above the bar.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Counts an eval that started.
    pub fn started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.redraw();
    }

    /// Reports one finished eval.
    pub fn finished<T>(&self, eval_id: &str, outcome: &anyhow::Result<T>) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Ok(_) => self.line(&format!("[opencode-docker] done    {eval_id}")),
            Err(err) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                self.line(&format!("[opencode-docker] errored {eval_id}: {err:#}"));
            }
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.redraw();
    }

    /// Removes the bar, before the closing table.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn redraw(&self) {
        if let Some(bar) = &self.bar {
            let (failed, running) = (
                self.failed.load(Ordering::SeqCst),
                self.running.load(Ordering::SeqCst),
            );
            bar.set_message(format!("failed {failed}  running {running}"));
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// `path` as a person would type it from `cwd`: relative when it lies under it, `.` for `cwd`
/// itself.
pub fn shown(path: &std::path::Path, cwd: &std::path::Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(relative) if relative.as_os_str().is_empty() => ".".into(),
        Ok(relative) => relative.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Prints `rows` as an aligned two-column table on standard error.
pub fn table(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    for (key, value) in rows {
        eprintln!("  {key:<width$}  {value}");
    }
}
