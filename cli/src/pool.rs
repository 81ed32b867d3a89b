//! Running evals on a fixed number of workers, with retries, fail-fast, and results in eval order.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::progress::Progress;

/// The pause between two attempts at one eval.
pub const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Where one job runs: its worker slot and the run-wide number of the call it makes.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// The worker, from 1.
    pub worker: usize,
    /// How many workers there are.
    pub workers: usize,
    /// A number unique to this attempt within the run.
    pub call_number: usize,
}

/// How the pool runs.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Workers at once.
    pub concurrency: usize,
    /// Attempts per job in all.
    pub attempts: usize,
    /// Stop taking jobs once one has failed all its attempts.
    pub fail_fast: bool,
}

/// Runs `job` for every item on `options.concurrency` workers and returns, in item order, the
/// index and outcome of each item that was started. `progress` hears of each start and end,
/// naming items by `name`.
pub async fn run<I, T, J, F>(
    items: Vec<I>,
    options: PoolOptions,
    job: J,
    progress: Arc<Progress>,
    name: fn(&I) -> &str,
) -> Vec<(usize, anyhow::Result<T>)>
where
    I: Send + Sync + 'static,
    T: Send + 'static,
    J: Fn(Arc<I>, Slot) -> F + Send + Sync + 'static,
    F: Future<Output = anyhow::Result<T>> + Send,
{
    let items: Arc<Vec<Arc<I>>> = Arc::new(items.into_iter().map(Arc::new).collect());
    let workers = options.concurrency.clamp(1, items.len().max(1));
    let (next, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let job = Arc::new(job);
    progress.set_total(items.len());
    // A `JoinSet` aborts its tasks when dropped, so an interrupted run starts no new call.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 1..=workers {
        let (items, next, stop, job, progress) = (
            items.clone(),
            next.clone(),
            stop.clone(),
            job.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let mut done = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(index) else { break };
                progress.started();
                let outcome = attempts(options.attempts, &progress, name(item), |attempt| {
                    let call_number = index * options.attempts + attempt;
                    job(
                        item.clone(),
                        Slot {
                            worker,
                            workers,
                            call_number,
                        },
                    )
                })
                .await;
                progress.finished(name(item), &outcome);
                if outcome.is_err() && options.fail_fast {
                    stop.store(true, Ordering::SeqCst);
                }
                done.push((index, outcome));
            }
            done
        });
    }
    let mut finished = Vec::new();
    while let Some(done) = tasks.join_next().await {
        finished.extend(done.unwrap_or_default());
    }
    finished.sort_by_key(|(index, _)| *index);
    finished
}

/// Up to `attempts` tries of `attempt(n)`, [`RETRY_PAUSE`] apart.
async fn attempts<T, F>(
    attempts: usize,
    progress: &Progress,
    name: &str,
    attempt: impl Fn(usize) -> F,
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    let mut number = 1;
    loop {
        match attempt(number).await {
            Err(err) if number < attempts => {
                progress.line(&format!(
                    "[opencode-docker] {name}: attempt {number} of {attempts} failed, retrying in 5 s: {err:#}"
                ));
                tokio::time::sleep(RETRY_PAUSE).await;
                number += 1;
            }
            outcome => return outcome,
        }
    }
}
