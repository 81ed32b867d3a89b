//! Ctrl-C and SIGTERM: stop starting calls, remove every container and temp directory of the
//! run, and exit 130 or 143. A second signal exits at once.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::call::Runtime;
use crate::error::{EXIT_INTERRUPTED, EXIT_TERMINATED};

/// How long an interrupted run waits for `docker run`s already under way, whose containers it
/// must then remove too.
const START_GRACE: Duration = Duration::from_secs(15);

/// Runs `work` until it ends or a signal arrives; on a signal, cleans up and returns its exit
/// code.
pub async fn until_interrupted(
    runtime: &Runtime,
    work: impl Future<Output = anyhow::Result<u8>>,
) -> anyhow::Result<u8> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let code = tokio::select! {
        outcome = work => return outcome,
        _ = interrupt.recv() => EXIT_INTERRUPTED,
        _ = terminate.recv() => EXIT_TERMINATED,
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        eprintln!(
            "[opencode-docker] second signal: exiting without cleaning up (`evals-runner clean` sweeps later)"
        );
        std::process::exit(i32::from(code));
    });
    runtime.cancelled.store(true, Ordering::SeqCst);
    let settings = &runtime.settings;
    eprintln!(
        "[opencode-docker] interrupted: removing the containers and temp directories of run {}",
        settings.run_id
    );
    wait_for_starts(runtime).await;
    if let Err(err) =
        crate::clean::sweep_run(&runtime.docker, &settings.temp_root, &settings.run_id).await
    {
        eprintln!("[opencode-docker] cleanup incomplete: {err:#}");
    }
    Ok(code)
}

/// Waits until no `docker run` is under way, at most [`START_GRACE`].
async fn wait_for_starts(runtime: &Runtime) {
    let deadline = tokio::time::Instant::now() + START_GRACE;
    while runtime.docker.runs_in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
