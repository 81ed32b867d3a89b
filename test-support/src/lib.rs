//! What the workspace's Docker tests share, so each states its rule once: whether the engine and
//! the local image are here (skip with a reason, or fail under `REQUIRE_DOCKER=1`), names that
//! never collide with a real run's, and a guard that removes a test's containers however the
//! test ends.
//!
//! Only tests depend on this crate. It runs the docker client itself, plainly, so that it never
//! depends on the crates it helps test.
//!
//! ```no_run
//! if !evals_test_support::docker_ready(evals_test_support::IMAGE) {
//!     return; // Skipped, with the reason printed.
//! }
//! let _guard = evals_test_support::ContainerGuard::new(["my-test-container"]);
//! ```

// A test helper may run the docker client directly: it must not depend on the crates it tests.
#![allow(clippy::disallowed_methods)]

use std::hash::{BuildHasher, RandomState};
use std::process::Command;

/// The local OpenCode image the tests run, built by `cargo xtask image` and never pulled.
pub const IMAGE: &str = "evals-opencode:1.18.33";

/// Set to `1` where a test that would skip for want of Docker must fail instead (CI).
pub const REQUIRE_DOCKER_VAR: &str = "REQUIRE_DOCKER";

/// Whether the engine answers and `image` is present. When not, prints why the test is
/// skipped, or panics when [`REQUIRE_DOCKER_VAR`] is `1`.
pub fn docker_ready(image: &str) -> bool {
    let inspect = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]).output();
    let problem = match inspect {
        Ok(output) if output.status.success() => return true,
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        Err(err) => format!("cannot run `docker`: {err}"),
    };
    assert!(
        std::env::var(REQUIRE_DOCKER_VAR).as_deref() != Ok("1"),
        "{REQUIRE_DOCKER_VAR}=1 but Docker or the image `{image}` is unavailable ({problem}): \
         run `cargo xtask image`"
    );
    eprintln!("skipped: Docker or the image `{image}` is unavailable ({problem}); run `cargo xtask image`");
    false
}

/// `digits` random lowercase hex digits (at most 16), for run ids and container names no real
/// run or parallel test shares.
pub fn unique_hex(digits: usize) -> String {
    let value = RandomState::new().hash_one(std::process::id());
    format!("{value:016x}")[..digits.min(16)].to_owned()
}

/// Removes the named containers when dropped, so a failing test leaves none behind.
#[derive(Debug, Default)]
pub struct ContainerGuard(Vec<String>);

impl ContainerGuard {
    /// A guard for `names`.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    /// Adds a container to remove.
    pub fn push(&mut self, name: impl Into<String>) {
        self.0.push(name.into());
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker").args(["rm", "--force", "--volumes"]).args(&self.0).output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_hex_and_differ() {
        let (a, b) = (unique_hex(10), unique_hex(10));
        assert!(a.len() == 10 && a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
