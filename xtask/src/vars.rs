//! Every environment variable xtask reads or sets, in one place.

/// Set to `1` to make the Docker tests fail, instead of skipping, when no engine answers.
/// `cargo xtask test` sets it whenever the engine is up.
pub const REQUIRE_DOCKER: &str = "REQUIRE_DOCKER";

/// Base folder for caches (XDG); xtask keeps its own under `evals-runner/` in it.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";

/// The user's home; the cache falls back to `~/.cache` when `XDG_CACHE_HOME` is unset.
pub const HOME: &str = "HOME";

/// The cargo that runs xtask (set by `cargo run`); the checks run the same one.
pub const CARGO: &str = "CARGO";

/// Where cargo puts build output, when not `target/`.
pub const CARGO_TARGET_DIR: &str = "CARGO_TARGET_DIR";

/// Set to `true` for the test step, so `insta` fails on a snapshot mismatch instead of writing
/// a new one.
pub const CI: &str = "CI";

/// Set to `no` for the test step, for the same reason as [`CI`].
pub const INSTA_UPDATE: &str = "INSTA_UPDATE";

/// Tells `apt-get` not to ask questions when xtask installs a Debian package.
pub const DEBIAN_FRONTEND: &str = "DEBIAN_FRONTEND";

/// Whether [`REQUIRE_DOCKER`] is set to `1` in this process's environment.
pub fn docker_required() -> bool {
    std::env::var(REQUIRE_DOCKER).is_ok_and(|value| value == "1")
}
