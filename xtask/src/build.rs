//! Building the workspace's own binaries with the cargo that runs xtask, for the chores that run
//! them: `run`, `runner-image` and the benchmarks.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::{paths, vars};

/// A cargo profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// `cargo build` (the default: faster to build, and the binary is what the tests run).
    #[default]
    Debug,
    /// `cargo build --release`.
    Release,
}

impl Profile {
    /// The profile's folder under the target folder, also its name.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// What to build of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A binary, by name.
    Bin(&'a str),
    /// An example, by name.
    Example(&'a str),
}

/// The runner's binary.
pub const RUNNER: Target<'static> = Target::Bin("evals-runner");

/// Builds `target` of `package` with `profile` and returns the path of the built file.
pub fn build(
    root: &Path,
    package: &str,
    target: Target<'_>,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os(vars::CARGO).unwrap_or_else(|| "cargo".into());
    let (kind, name) = match target {
        Target::Bin(name) => ("--bin", name),
        Target::Example(name) => ("--example", name),
    };
    let mut args = vec!["build", "--quiet", "-p", package, kind, name];
    if profile == Profile::Release {
        args.push("--release");
    }
    crate::progress!("build", "{name} ({}, `-p {package}`)", profile.dir_name());
    let status = duct::cmd(cargo, args)
        .dir(root)
        .unchecked()
        .run()
        .context("cannot run cargo")?
        .status;
    if !status.success() {
        bail!("building {name} failed ({status})");
    }
    let dir = paths::target_dir(root).join(profile.dir_name());
    Ok(match target {
        Target::Bin(name) => dir.join(name),
        Target::Example(name) => dir.join("examples").join(name),
    })
}
