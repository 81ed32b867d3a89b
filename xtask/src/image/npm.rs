//! `npm install` of the pinned OpenCode packages into xtask's cache, outside the repository.
//!
//! The image takes the *baseline* linux-x64 build of OpenCode (no AVX2 needed), which npm ships
//! as a package of its own beside `opencode-ai`. Both are installed at the pinned version, and
//! the install counts as done only when `opencode-ai` itself pins that same baseline version,
//! so the binary is the one `npm install opencode-ai@VERSION` would choose on such a machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use duct::cmd;

use crate::progress;

/// The npm package of the OpenCode command line.
pub const PACKAGE: &str = "opencode-ai";

/// The npm package holding the baseline linux-x64 binary.
pub const BASELINE_PACKAGE: &str = "opencode-linux-x64-baseline";

/// Installs `opencode-ai@version` and its baseline binary under `cache_dir`, unless they are
/// there already, and returns the binary's path.
pub fn install(cache_dir: &Path, version: &str) -> anyhow::Result<PathBuf> {
    if std::env::consts::ARCH != "x86_64" {
        bail!(
            "the image holds the linux-x64 build of OpenCode; this machine is `{}`",
            std::env::consts::ARCH
        );
    }
    let dir = cache_dir.join(format!("npm/opencode-{version}"));
    if let Some(binary) = installed_binary(&dir, version) {
        progress!("image", "OpenCode {version} already in `{}`", dir.display());
        return Ok(binary);
    }
    run_npm_install(&dir, version)?;
    installed_binary(&dir, version).with_context(|| {
        format!(
            "npm installed `{PACKAGE}@{version}`, but `{}` holds no matching `{BASELINE_PACKAGE}`",
            dir.display()
        )
    })
}

fn run_npm_install(dir: &Path, version: &str) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    // A package.json of its own keeps npm from looking for one in the folders above.
    fs::write(dir.join("package.json"), "{\"private\": true}\n")
        .with_context(|| format!("cannot write `{}`", dir.display()))?;
    progress!(
        "image",
        "npm install {PACKAGE}@{version} {BASELINE_PACKAGE}@{version} in `{}`",
        dir.display()
    );
    let started = Instant::now();
    // `--omit=optional` skips the other platforms' builds `opencode-ai` lists (another 180 MB);
    // `--ignore-scripts` skips its postinstall, which only links a binary we do not use.
    cmd!(
        "npm",
        "install",
        "--omit=optional",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--save-exact",
        format!("{PACKAGE}@{version}"),
        format!("{BASELINE_PACKAGE}@{version}")
    )
    .dir(dir)
    .stdout_to_stderr()
    .run()
    .context("`npm install` failed\nhint: it needs Node.js with npm, and the npm registry")?;
    progress!(
        "image",
        "npm install done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The baseline binary under `dir`, when both packages are installed at `version` and
/// `opencode-ai` pins that baseline version.
fn installed_binary(dir: &Path, version: &str) -> Option<PathBuf> {
    let modules = dir.join("node_modules");
    let cli = read_json(&modules.join(PACKAGE).join("package.json"))?;
    let baseline = read_json(&modules.join(BASELINE_PACKAGE).join("package.json"))?;
    let pinned = cli["optionalDependencies"][BASELINE_PACKAGE].as_str();
    let matches =
        cli["version"] == version && baseline["version"] == version && pinned == Some(version);
    let binary = modules.join(BASELINE_PACKAGE).join("bin").join("opencode");
    (matches && binary.is_file()).then_some(binary)
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_install(dir: &Path, cli_version: &str, pinned: &str, baseline_version: &str) {
        let modules = dir.join("node_modules");
        let cli = serde_json::json!({
            "version": cli_version,
            "optionalDependencies": { BASELINE_PACKAGE: pinned },
        });
        fs::create_dir_all(modules.join(PACKAGE)).unwrap();
        fs::write(modules.join(PACKAGE).join("package.json"), cli.to_string()).unwrap();
        let bin = modules.join(BASELINE_PACKAGE).join("bin");
        fs::create_dir_all(&bin).unwrap();
        let baseline = serde_json::json!({ "version": baseline_version });
        fs::write(
            modules.join(BASELINE_PACKAGE).join("package.json"),
            baseline.to_string(),
        )
        .unwrap();
        fs::write(bin.join("opencode"), "").unwrap();
    }

    #[test]
    fn a_complete_install_gives_the_baseline_binary() {
        let dir = tempfile::tempdir().unwrap();
        fake_install(dir.path(), "1.2.3", "1.2.3", "1.2.3");
        let binary = installed_binary(dir.path(), "1.2.3").unwrap();
        assert!(binary.ends_with("node_modules/opencode-linux-x64-baseline/bin/opencode"));
    }

    #[test]
    fn another_version_is_not_the_install_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        fake_install(dir.path(), "1.2.3", "1.2.3", "1.2.3");
        assert_eq!(installed_binary(dir.path(), "1.2.4"), None);
    }

    #[test]
    fn a_baseline_the_cli_does_not_pin_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        fake_install(dir.path(), "1.2.3", "1.2.2", "1.2.3");
        assert_eq!(installed_binary(dir.path(), "1.2.3"), None);
    }

    #[test]
    fn an_empty_folder_has_no_install() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(installed_binary(dir.path(), "1.2.3"), None);
    }
}
