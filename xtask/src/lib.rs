//! Project chores behind `cargo xtask`: the Docker Engine, the offline OpenCode image, the
//! one command that runs every check, and the benchmarks.
//!
//! The binary is a thin `clap` layer over these modules, and the integration tests call them
//! directly, so what the tests prove is what the commands do. Unlike the runner's own crates,
//! xtask spawns processes (`cargo`, `docker`, `npm`, `ldd`, `apt-get`) directly, through `duct`.
//!
//! ```no_run
//! use evals_xtask::image::{self, BuildOptions};
//!
//! // Builds `evals-opencode:1.18.33` unless the image with the same inputs is already there.
//! let outcome = image::ensure(&BuildOptions::from_env()?)?;
//! eprintln!("{} is {} (built now: {})", outcome.tag, outcome.id, outcome.built);
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod bench;
pub mod build;
pub mod checks;
pub mod docker;
pub mod image;
pub mod paths;
pub mod run;
pub mod runner_image;
pub mod vars;

/// Prints one progress line on standard error, prefixed with the task's name.
///
/// Standard output stays free for data; everything xtask says to a person goes here.
#[macro_export]
macro_rules! progress {
    ($task:literal, $($arg:tt)*) => {
        eprintln!(concat!("xtask ", $task, ": {}"), format_args!($($arg)*))
    };
}
