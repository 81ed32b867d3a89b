//! The server's configuration, start, address and stop: [`serve`] binds `127.0.0.1`, spawns
//! the HTTP loop and hands back a [`MockServer`], whose drop or [`MockServer::shutdown`] stops
//! it. The routes themselves live in the `routes` module.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::error::Error;
use crate::provider::opencode_provider_with_models;
use crate::record::{RecordedRequest, Recorder};
use crate::reply::Reply;
use crate::scenario::{SCENARIOS, SCRIPT_PREFIX, Scenario};
use crate::script::{Script, TurnCounter};

/// How long `slow` waits before its first byte unless the model id says otherwise.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(10);

/// How long [`MockServer::shutdown`] waits for open requests before it stops waiting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How to start the server.
#[derive(Debug, Clone)]
pub struct MockConfig {
    port: u16,
    slow_delay: Duration,
    scripts: BTreeMap<String, Script>,
}

impl Default for MockConfig {
    /// Any free port, the default `slow` delay, no scripts.
    fn default() -> Self {
        MockConfig {
            port: 0,
            slow_delay: DEFAULT_SLOW_DELAY,
            scripts: BTreeMap::new(),
        }
    }
}

impl MockConfig {
    /// Listen on this port of `127.0.0.1`; 0 lets the OS pick one.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The delay of the `slow` model id (`slow-<ms>` always says its own).
    pub fn with_slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay;
        self
    }

    /// Register a script, selected by the model id `script:<name>`.
    pub fn with_script(mut self, name: impl Into<String>, script: Script) -> Self {
        self.scripts.insert(name.into(), script);
        self
    }

    /// Load a script file, named by its file stem (`turns.json` is `script:turns`).
    pub fn with_script_file(self, path: &Path) -> Result<Self, Error> {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            let reason = "its file name cannot name a script".to_owned();
            return Err(Error::InvalidScript {
                origin: path.display().to_string(),
                reason,
            });
        };
        let name = name.to_owned();
        Ok(self.with_script(name, Script::load(path)?))
    }

    /// Load every `*.json` file of a folder as a script, as [`MockConfig::with_script_file`].
    pub fn with_script_dir(self, dir: &Path) -> Result<Self, Error> {
        let read_error = |source| Error::ReadScript {
            path: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.extension().is_some_and(|e| e == "json") {
                paths.push(path);
            }
        }
        paths.sort();
        paths
            .iter()
            .try_fold(self, |config, path| config.with_script_file(path))
    }
}

/// What the request handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) recorder: Recorder,
    scripts: RwLock<BTreeMap<String, Script>>,
    turns: TurnCounter,
    slow_delay: Duration,
    completions: AtomicU64,
    stop: watch::Receiver<bool>,
}

impl AppState {
    fn new(config: MockConfig, stop: watch::Receiver<bool>) -> Self {
        AppState {
            recorder: Recorder::default(),
            scripts: RwLock::new(config.scripts),
            turns: TurnCounter::default(),
            slow_delay: config.slow_delay,
            completions: AtomicU64::new(0),
            stop,
        }
    }

    /// The built-in scenario names, then `script:<name>` for each registered script.
    pub(crate) fn model_ids(&self) -> Vec<String> {
        let scripts = self.scripts.read().unwrap_or_else(PoisonError::into_inner);
        let builtins = SCENARIOS.iter().map(|s| (*s).to_owned());
        builtins
            .chain(scripts.keys().map(|name| format!("{SCRIPT_PREFIX}{name}")))
            .collect()
    }

    /// The scenario of a model id, when it names a built-in one or a registered script.
    pub(crate) fn scenario(&self, model_id: &str) -> Option<Scenario> {
        let scenario = Scenario::parse(model_id)?;
        if let Scenario::Script(name) = &scenario {
            let scripts = self.scripts.read().unwrap_or_else(PoisonError::into_inner);
            if !scripts.contains_key(name) {
                return None;
            }
        }
        Some(scenario)
    }

    /// The next turn of a script for one session.
    pub(crate) fn script_reply(&self, name: &str, session: Option<&str>) -> Reply {
        let scripts = self.scripts.read().unwrap_or_else(PoisonError::into_inner);
        match scripts.get(name) {
            Some(script) => script.reply(name, self.turns.advance(name, session)),
            None => Reply::http_error(404, format!("the mock script `{name}` does not exist")),
        }
    }

    fn register(&self, name: String, script: Script) {
        let mut scripts = self.scripts.write().unwrap_or_else(PoisonError::into_inner);
        scripts.insert(name, script);
    }

    pub(crate) fn slow_delay(&self) -> Duration {
        self.slow_delay
    }

    /// A number for each completion, so ids are unique within the server.
    pub(crate) fn next_completion(&self) -> u64 {
        self.completions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sleep for `delay`, unless the server stops first; `false` when it did.
    pub(crate) async fn wait(&self, delay: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            _ = stop.wait_for(|stopped| *stopped) => false,
        }
    }
}

/// Start the server on `127.0.0.1` and return once it listens.
pub async fn serve(config: MockConfig) -> Result<MockServer, Error> {
    let port = config.port;
    let bind_error = |source| Error::Bind { port, source };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;

    let (stop, stop_rx) = watch::channel(false);
    let state = Arc::new(AppState::new(config, stop_rx.clone()));
    let app = crate::routes::router(Arc::clone(&state));
    let stopped = async move {
        // Resolves when told to stop, or when the handle is gone and the sender with it.
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
    };
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
    });
    debug!(%addr, "mock model server listening");
    Ok(MockServer {
        addr,
        state,
        stop,
        task: Some(task),
    })
}

/// A running server. Dropping it stops the server in the background; [`MockServer::shutdown`]
/// stops it and waits.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockServer {
    /// The bound address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL, `http://127.0.0.1:<port>/v1`, as OpenCode's `options.baseURL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.snapshot()
    }

    /// Forget the requests received so far.
    pub fn clear_requests(&self) {
        self.state.recorder.clear();
    }

    /// Register (or replace) a script while the server runs; it answers as `script:<name>`.
    pub fn register_script(&self, name: impl Into<String>, script: Script) {
        self.state.register(name.into(), script);
    }

    /// The model ids this server answers: the built-in scenarios, then `script:<name>` for each
    /// script. `slow-<ms>` is answered too but not listed.
    pub fn model_ids(&self) -> Vec<String> {
        self.state.model_ids()
    }

    /// The OpenCode provider block for this server, listing [`MockServer::model_ids`].
    pub fn opencode_provider(&self) -> Value {
        opencode_provider_with_models(&self.base_url(), self.model_ids())
    }

    /// Stop accepting requests, let open ones finish for a short grace period, and wait for the
    /// server loop to end. Requests still waiting in `slow` are cut short.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.stop.send_replace(true);
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(result)) => result.map_err(|source| Error::Serve { source }),
            Ok(Err(join)) => Err(Error::Serve {
                source: io::Error::other(join),
            }),
            Err(_) => {
                debug!(addr = %self.addr, "open requests outlived the grace period; stopping anyway");
                task.abort();
                Ok(())
            }
        }
    }

    /// Serve until Ctrl-C, then shut down: the body of a standalone `mock-model` command.
    pub async fn run_until_ctrl_c(self) -> Result<(), Error> {
        tokio::signal::ctrl_c()
            .await
            .map_err(|source| Error::Signal { source })?;
        debug!(addr = %self.addr, "ctrl-c received; stopping the mock model server");
        self.shutdown().await
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
