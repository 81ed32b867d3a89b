//! What the workspace's Docker tests share, so each states its rule once: whether the engine and
//! the local image are here (skip with a reason, or fail under `REQUIRE_DOCKER=1`), names that
//! never collide with a real run's, a guard that removes a test's containers however the test
//! ends, a free loopback port, and a copy of a folder tree (the example suite a run works on).
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
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// The local OpenCode image the tests run, built by `cargo xtask image` and never pulled.
pub const IMAGE: &str = "evals-opencode:1.18.33";

/// Set to `1` where a test that would skip for want of Docker must fail instead (CI).
pub const REQUIRE_DOCKER_VAR: &str = "REQUIRE_DOCKER";

/// Whether the engine answers and `image` is present. When not, prints why the test is
/// skipped, or panics when [`REQUIRE_DOCKER_VAR`] is `1`.
pub fn docker_ready(image: &str) -> bool {
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output();
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
    eprintln!(
        "skipped: Docker or the image `{image}` is unavailable ({problem}); run `cargo xtask image`"
    );
    false
}

/// `digits` random lowercase hex digits (at most 16), for run ids and container names no real
/// run or parallel test shares.
pub fn unique_hex(digits: usize) -> String {
    let value = RandomState::new().hash_one(std::process::id());
    format!("{value:016x}")[..digits.min(16)].to_owned()
}

/// A loopback port that was free when asked. Nothing holds it afterwards: another process may
/// take it before the caller binds it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a loopback port");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// Copies the files under `from` to `to`, making `to` and the folders on the way; panics on any
/// failure, as a test's set-up should.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to)
        .unwrap_or_else(|err| panic!("cannot make `{}`: {err}", to.display()));
    let entries = std::fs::read_dir(from)
        .unwrap_or_else(|err| panic!("cannot list `{}`: {err}", from.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target)
                .unwrap_or_else(|err| panic!("cannot copy `{}`: {err}", path.display()));
        }
    }
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
            let _ = Command::new("docker")
                .args(["rm", "--force", "--volumes"])
                .args(&self.0)
                .output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_hex_and_differ() {
        let (a, b) = (unique_hex(10), unique_hex(10));
        assert!(
            a.len() == 10
                && a.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn a_copied_tree_holds_every_file_and_folder() {
        let root = std::env::temp_dir().join(format!("evals-test-support-{}", unique_hex(12)));
        let (from, to) = (root.join("from"), root.join("to/deep"));
        std::fs::create_dir_all(from.join("a/b")).unwrap();
        std::fs::write(from.join("top.txt"), "top").unwrap();
        std::fs::write(from.join("a/b/leaf.txt"), "leaf").unwrap();

        copy_tree(&from, &to);

        let read = |path: &str| std::fs::read_to_string(to.join(path)).ok();
        let copied = (read("top.txt"), read("a/b/leaf.txt"));
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(copied, (Some("top".into()), Some("leaf".into())));
    }
}
