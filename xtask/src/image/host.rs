//! The files the image takes from this machine: a static busybox, `rg`, the CA bundle, and the
//! shared libraries the binaries link. Debian's packages provide them; when one is missing and
//! xtask runs as root with `apt-get`, it installs them.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use duct::cmd;

use crate::{progress, vars};

/// Debian's packages that hold the host inputs.
pub const DEBIAN_PACKAGES: &[&str] = &["busybox-static", "ripgrep", "ca-certificates"];

/// Where Debian's packages put the host inputs.
const BUSYBOX: &str = "/bin/busybox";
const RG: &str = "/usr/bin/rg";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The host inputs of the image, found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInputs {
    /// A statically linked busybox.
    pub busybox: PathBuf,
    /// ripgrep (dynamically linked on Debian: its libraries come from [`linked_libraries`]).
    pub rg: PathBuf,
    /// The CA certificates bundle.
    pub ca_bundle: PathBuf,
}

/// Finds the host inputs, installing Debian's packages first when one is missing and this
/// process may do so (root, `apt-get` on PATH).
pub fn locate() -> anyhow::Result<HostInputs> {
    let missing = missing_inputs();
    if missing.is_empty() {
        return Ok(found());
    }
    if !can_install_packages() {
        let packages = DEBIAN_PACKAGES.join(" ");
        bail!(
            "missing on this machine: {}\nhint: install them (Debian: `apt-get install {packages}`)",
            missing.join(", ")
        );
    }
    install_packages(DEBIAN_PACKAGES)?;
    let still_missing = missing_inputs();
    if !still_missing.is_empty() {
        bail!(
            "still missing after installing Debian's packages: {}",
            still_missing.join(", ")
        );
    }
    Ok(found())
}

fn found() -> HostInputs {
    HostInputs {
        busybox: BUSYBOX.into(),
        rg: RG.into(),
        ca_bundle: CA_BUNDLE.into(),
    }
}

/// What is missing, each described for a person.
fn missing_inputs() -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(BUSYBOX).is_file() || !is_static(Path::new(BUSYBOX)) {
        missing.push(format!("a static busybox at `{BUSYBOX}` (busybox-static)"));
    }
    if !Path::new(RG).is_file() {
        missing.push(format!("`{RG}` (ripgrep)"));
    }
    if !Path::new(CA_BUNDLE).is_file() {
        missing.push(format!("`{CA_BUNDLE}` (ca-certificates)"));
    }
    missing
}

/// Whether this process runs as root and has `apt-get`.
pub fn can_install_packages() -> bool {
    let uid = cmd!("id", "-u").stderr_null().read().unwrap_or_default();
    uid.trim() == "0"
        && cmd!("apt-get", "--version")
            .stdout_null()
            .stderr_null()
            .run()
            .is_ok()
}

/// Installs Debian's `packages` with `apt-get` (after `apt-get update`).
pub fn install_packages(packages: &[&str]) -> anyhow::Result<()> {
    progress!("image", "installing Debian's {}", packages.join(" "));
    let update = cmd!("apt-get", "update", "-qq");
    let mut install_args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install_args.extend_from_slice(packages);
    let install = duct::cmd("apt-get", install_args);
    for step in [update, install] {
        step.env(vars::DEBIAN_FRONTEND, "noninteractive")
            .stdout_to_stderr()
            .run()
            .context("`apt-get` failed")?;
    }
    Ok(())
}

/// The permission bits of `path`, symbolic links followed.
pub fn mode(path: &Path) -> anyhow::Result<u32> {
    let metadata =
        fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(metadata.permissions().mode() & 0o7777)
}

/// Whether `binary` is statically linked: `ldd` finds nothing to load for it.
pub(crate) fn is_static(binary: &Path) -> bool {
    let output = cmd!("ldd", binary)
        .stderr_to_stdout()
        .unchecked()
        .read()
        .unwrap_or_default();
    output.contains("not a dynamic executable") || output.contains("statically linked")
}

/// The shared libraries `binary` links, the dynamic loader included, as absolute paths the way
/// the loader looks for them (`ldd`'s view).
pub fn linked_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = cmd!("ldd", binary)
        .stderr_to_stdout()
        .read()
        .with_context(|| format!("`ldd {}` failed", binary.display()))?;
    parse_ldd(&output)
}

/// Reads `ldd`'s output: `name => /path (addr)` lines and the loader's `/path (addr)` line;
/// the kernel's vDSO has no file and is left out. A library `ldd` cannot find is an error: the
/// binary would not start in the image.
fn parse_ldd(output: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut libraries = Vec::new();
    for line in output.lines() {
        let target = line
            .split_once("=>")
            .map_or(line, |(_, target)| target)
            .trim();
        if target.starts_with("not found") {
            bail!("`ldd` finds no file for `{}`", line.trim());
        }
        if let Some(path) = target
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_the_loader_but_not_the_vdso() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f12)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f34)\n";
        let libraries = parse_ldd(output).unwrap();
        let expected = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
        ];
        assert_eq!(libraries, expected.map(PathBuf::from));
    }

    #[test]
    fn a_library_ldd_cannot_find_is_an_error() {
        let error = parse_ldd("\tlibgone.so.1 => not found\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`libgone.so.1 => not found`"), "{error}");
    }

    #[test]
    fn a_static_binary_links_nothing() {
        assert!(
            parse_ldd("\tnot a dynamic executable\n")
                .unwrap()
                .is_empty()
        );
    }
}
