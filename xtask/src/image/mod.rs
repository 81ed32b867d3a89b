//! The offline OpenCode image, `evals-opencode:1.18.33`: a root filesystem assembled from the
//! pinned npm package and a few Debian files, imported with `docker import` (no base image, no
//! registry, no builder), and built only when one of its inputs changed.
//!
//! Inside: the baseline linux-x64 OpenCode binary and the glibc libraries it links, a static
//! busybox as `/bin/sh`, `rg` and its libraries, the CA bundle, `/etc/passwd`, a sticky `/tmp`,
//! `/workspace`, and a config folder and environment that leave OpenCode nothing to fetch on its
//! own ([`recipe`] says which and why). The entrypoint is `opencode`, so the runner starts
//! `docker run ... evals-opencode:1.18.33 serve --hostname H --port P`.
//!
//! Up to date means: the image under [`TAG`] carries, in its [`INPUTS_HASH_LABEL`] label, the
//! hash of every file, mode and setting that would go into a new one.

mod host;
mod npm;
pub mod recipe;
pub mod rootfs;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use duct::cmd;

use crate::{docker, paths, progress};
use rootfs::{Rootfs, Source};

/// The OpenCode version the image holds.
pub const OPENCODE_VERSION: &str = "1.18.33";

/// The image's tag.
pub const TAG: &str = "evals-opencode:1.18.33";

/// The label holding the hash of the image's inputs.
pub const INPUTS_HASH_LABEL: &str = "evals-runner.inputs-hash";

/// The label holding the OpenCode version, for people reading `docker image inspect`.
pub const VERSION_LABEL: &str = "evals-runner.opencode-version";

/// How to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// xtask's cache, where the npm packages and the tarball go.
    pub cache_dir: PathBuf,
    /// Build even when the image is up to date.
    pub force: bool,
}

impl BuildOptions {
    /// Options with the usual cache folder ([`paths::cache_dir`]), not forced.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            cache_dir: paths::cache_dir()?,
            force: false,
        })
    }
}

/// What [`ensure`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The tag, [`TAG`].
    pub tag: String,
    /// The image id the tag points at.
    pub id: String,
    /// The hash of the inputs, as in the image's [`INPUTS_HASH_LABEL`] label.
    pub inputs_hash: String,
    /// Whether this call built the image (`false`: it was up to date).
    pub built: bool,
}

/// Makes [`TAG`] point at an image of the current inputs: builds it unless the existing image
/// carries the same inputs hash (or `options.force` is set). Needs the Docker Engine, npm and
/// its registry (once, to fill the cache), and Debian's busybox-static, ripgrep and
/// ca-certificates (installed when missing, if running as root with apt).
pub fn ensure(options: &BuildOptions) -> anyhow::Result<Outcome> {
    let rootfs = assemble(options)?;
    let spec = ImageSpec {
        tag: TAG,
        message: &format!("evals-runner OpenCode {OPENCODE_VERSION}"),
        labels: &[(VERSION_LABEL, OPENCODE_VERSION)],
        changes: recipe::changes,
    };
    ensure_image(&rootfs, &spec, options)
}

/// What an image is besides its root filesystem: the tag it goes under, the `docker import`
/// message, labels beyond the inputs hash, and the `--change` instructions for a set of labels.
pub(crate) struct ImageSpec<'a> {
    /// The tag to build.
    pub tag: &'a str,
    /// The commit message `docker import` records.
    pub message: &'a str,
    /// Labels set besides [`INPUTS_HASH_LABEL`]; they are not part of the hash.
    pub labels: &'a [(&'a str, &'a str)],
    /// The `--change` instructions (environment, entrypoint, ...) with the given labels.
    pub changes: fn(&[(&str, &str)]) -> Vec<String>,
}

/// Makes `spec.tag` point at an image of `rootfs`: imports it unless the existing image carries
/// the same inputs hash (or `options.force` is set); the image the tag left is removed when
/// nothing uses it.
pub(crate) fn ensure_image(
    rootfs: &Rootfs,
    spec: &ImageSpec<'_>,
    options: &BuildOptions,
) -> anyhow::Result<Outcome> {
    let inputs_hash = hash_inputs(rootfs, spec)?;
    let tag = spec.tag;

    let existing = docker::inspect(tag)?;
    let current = existing
        .as_ref()
        .filter(|image| !options.force && carries(image, &inputs_hash));
    if let Some(image) = current {
        progress!("image", "{tag} is up to date ({})", image.id);
        return Ok(outcome(tag, image.id.clone(), inputs_hash, false));
    }

    let id = build(rootfs, spec, &inputs_hash, options)?;
    report_size(tag, &id)?;
    // The image the tag pointed at before is now nameless; drop it unless something uses it.
    if let Some(old) = existing.filter(|old| old.id != id) {
        docker::remove_image_quietly(&old.id);
    }
    Ok(outcome(tag, id, inputs_hash, true))
}

fn outcome(tag: &str, id: String, inputs_hash: String, built: bool) -> Outcome {
    Outcome {
        tag: tag.into(),
        id,
        inputs_hash,
        built,
    }
}

/// Adds the shared libraries `binary` links (none for a static binary) to `rootfs`, each copied
/// as a plain file, with its mode, at the path the loader searches, whatever links lead there
/// on this machine.
pub(crate) fn add_linked_libraries(rootfs: &mut Rootfs, binary: &Path) -> anyhow::Result<()> {
    if host::is_static(binary) {
        return Ok(());
    }
    for library in host::linked_libraries(binary)? {
        let mode = host::mode(&library)?;
        let path = library.to_string_lossy().into_owned();
        rootfs.add(&path, mode, Source::Host(library));
    }
    Ok(())
}

/// Gathers every input into a root filesystem description (npm install first if needed).
fn assemble(options: &BuildOptions) -> anyhow::Result<Rootfs> {
    let binary = npm::install(&options.cache_dir, OPENCODE_VERSION)?;
    let host = host::locate()?;
    let mut rootfs = Rootfs::default();
    recipe::add_layout(&mut rootfs);
    rootfs.add(recipe::OPENCODE_PATH, 0o755, Source::Host(binary.clone()));
    rootfs.add(recipe::RG_PATH, 0o755, Source::Host(host.rg.clone()));
    rootfs.add(recipe::BUSYBOX_PATH, 0o755, Source::Host(host.busybox));
    rootfs.add(recipe::CA_BUNDLE_PATH, 0o644, Source::Host(host.ca_bundle));
    for binary in [&binary, &host.rg] {
        add_linked_libraries(&mut rootfs, binary)?;
    }
    Ok(rootfs)
}

/// The hash of the root filesystem and of the image's configuration (labels aside).
fn hash_inputs(rootfs: &Rootfs, spec: &ImageSpec<'_>) -> anyhow::Result<String> {
    let started = Instant::now();
    let inputs_hash = rootfs.inputs_hash(&(spec.changes)(&[]))?;
    let seconds = started.elapsed().as_secs_f64();
    progress!("image", "inputs hashed in {seconds:.1} s: {inputs_hash}");
    Ok(inputs_hash)
}

/// Whether `image` was built from inputs with this hash.
fn carries(image: &docker::ImageInfo, inputs_hash: &str) -> bool {
    let label = image.labels.get(INPUTS_HASH_LABEL);
    label.is_some_and(|hash| hash == inputs_hash)
}

/// Writes the tarball into the cache and imports it under `spec.tag`; returns the new image id.
fn build(
    rootfs: &Rootfs,
    spec: &ImageSpec<'_>,
    inputs_hash: &str,
    options: &BuildOptions,
) -> anyhow::Result<String> {
    let cache = &options.cache_dir;
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create `{}`", cache.display()))?;
    let tarball = tempfile::Builder::new()
        .prefix("evals-rootfs-")
        .suffix(".tar")
        .tempfile_in(cache)
        .context("cannot create the tarball file")?;

    let started = Instant::now();
    rootfs.write_tar(tarball.path())?;
    let seconds = started.elapsed().as_secs_f64();
    progress!("image", "root filesystem written in {seconds:.1} s");
    import(tarball.path(), spec, inputs_hash)
}

/// `docker import` of `tarball` under `spec.tag`, with its configuration and labels.
fn import(tarball: &Path, spec: &ImageSpec<'_>, inputs_hash: &str) -> anyhow::Result<String> {
    let started = Instant::now();
    let mut args = vec![
        "import".to_owned(),
        "--message".to_owned(),
        spec.message.to_owned(),
    ];
    let mut labels = vec![(INPUTS_HASH_LABEL, inputs_hash)];
    labels.extend_from_slice(spec.labels);
    for change in (spec.changes)(&labels) {
        args.extend(["--change".to_owned(), change]);
    }
    args.extend([tarball.to_string_lossy().into_owned(), spec.tag.to_owned()]);

    let id = cmd("docker", &args)
        .read()
        .context("`docker import` failed")?;
    let seconds = started.elapsed().as_secs_f64();
    progress!("image", "imported {} in {seconds:.1} s", spec.tag);
    Ok(id.trim().to_owned())
}

fn report_size(tag: &str, id: &str) -> anyhow::Result<()> {
    if let Some(image) = docker::inspect(id)? {
        progress!("image", "{tag} is {id} ({} MB)", image.size / 1_000_000);
    }
    Ok(())
}
