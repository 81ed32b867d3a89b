//! The runner's own image, `evals-runner:dev`: `evals-runner` in a container that drives the
//! host's Docker Engine through its mounted socket, the way a CI runner living in a container
//! would run it.
//!
//! Like the OpenCode image ([`crate::image`]), it is a root filesystem imported with `docker
//! import`, with no base image and no registry, and it is rebuilt only when its inputs hash
//! changes. Inside: the `evals-runner` binary built by cargo and the glibc libraries it links,
//! the `docker` client found on `PATH` (and its libraries, should it not be static), a sticky
//! `/tmp`, `/root` as home and `/etc/passwd`. Nothing in it speaks TLS, so it holds no CA
//! certificates. The entrypoint is `evals-runner`:
//!
//! ```text
//! docker run --rm --network host -v /var/run/docker.sock:/var/run/docker.sock \
//!     --mount type=bind,source=$HOSTTMP,target=$HOSTTMP -v $PWD:/work -w /work \
//!     evals-runner:dev run --model mock/echo --host-tmpdir $HOSTTMP
//! ```
//!
//! `--host-tmpdir` names a folder that exists on the host and is mounted at the same path, since
//! the engine resolves the runner's bind-mount sources on the host; host networking lets the
//! runner reach the OpenCode servers, and lets those reach the mock model the runner serves on
//! its loopback.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::build::{self, Profile};
use crate::image::rootfs::{Rootfs, Source};
use crate::image::{self, BuildOptions, ImageSpec, Outcome};

/// The image's tag.
pub const TAG: &str = "evals-runner:dev";

/// The runner inside the image, and the image's entrypoint.
pub const RUNNER_PATH: &str = "/usr/local/bin/evals-runner";

/// The docker client inside the image, found by the runner on `PATH` as `docker`.
pub const DOCKER_PATH: &str = "/usr/local/bin/docker";

/// The label holding the cargo profile the runner was built with, for people reading `docker
/// image inspect` (the binary itself is part of the inputs hash).
pub const PROFILE_LABEL: &str = "evals-runner.profile";

/// The image's environment: the client on `PATH`, and a home for the runner (where it looks for
/// `auth.json`) and for the client's config folder.
pub const ENVIRONMENT: &[(&str, &str)] =
    &[("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", "/root")];

/// How to build the runner's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerImageOptions {
    /// The cache where the tarball is written, and whether to build even when up to date.
    pub build: BuildOptions,
    /// The profile of the runner binary.
    pub profile: Profile,
}

impl RunnerImageOptions {
    /// Options with the usual cache folder, not forced, with a debug runner.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            build: BuildOptions::from_env()?,
            profile: Profile::default(),
        })
    }
}

/// Builds `evals-runner` from the workspace at `root`, then makes [`TAG`] point at an image of
/// it: imported unless the existing image carries the same inputs hash (or the options force a
/// build). Needs cargo, `ldd`, a `docker` client on `PATH` and the Docker Engine.
pub fn ensure(root: &Path, options: &RunnerImageOptions) -> anyhow::Result<Outcome> {
    let runner = build::build(root, "evals-cli", build::RUNNER, options.profile)?;
    let docker = find_on_path("docker")?;
    let rootfs = assemble(&runner, &docker)?;
    let spec = ImageSpec {
        tag: TAG,
        message: "evals-runner",
        labels: &[(PROFILE_LABEL, options.profile.dir_name())],
        changes,
    };
    image::ensure_image(&rootfs, &spec, &options.build)
}

/// The first executable file named `name` in a folder of `PATH`.
fn find_on_path(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    first_executable(std::env::split_paths(&path), name).with_context(|| {
        format!("no `{name}` on `PATH`\nhint: install the Docker client, or put it on `PATH`")
    })
}

fn first_executable(dirs: impl Iterator<Item = PathBuf>, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    dirs.map(|dir| dir.join(OsStr::new(name))).find(|file| {
        std::fs::metadata(file)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// The image's files: the two binaries and their libraries, and the layout around them.
fn assemble(runner: &Path, docker: &Path) -> anyhow::Result<Rootfs> {
    let mut rootfs = Rootfs::default();
    add_layout(&mut rootfs);
    rootfs.add(RUNNER_PATH, 0o755, Source::Host(runner.to_path_buf()));
    rootfs.add(DOCKER_PATH, 0o755, Source::Host(docker.to_path_buf()));
    for binary in [runner, docker] {
        image::add_linked_libraries(&mut rootfs, binary)?;
    }
    Ok(rootfs)
}

/// The folders and account files: a sticky `/tmp` (the runner's temp root when no
/// `--host-tmpdir` is given), root's home, and the account files the client and libc read.
fn add_layout(rootfs: &mut Rootfs) {
    rootfs.add("/tmp", 0o1777, Source::Dir);
    rootfs.add("/root", 0o700, Source::Dir);
    let passwd = b"root:x:0:0:root:/root:/sbin/nologin\n";
    rootfs.add("/etc/passwd", 0o644, Source::Bytes(passwd.to_vec()));
    rootfs.add("/etc/group", 0o644, Source::Bytes(b"root:x:0:\n".to_vec()));
}

/// The `docker import --change` instructions: environment, entrypoint and the given labels.
fn changes(labels: &[(&str, &str)]) -> Vec<String> {
    let env = ENVIRONMENT
        .iter()
        .map(|(name, value)| format!("ENV {name}={value}"));
    let labels = labels
        .iter()
        .map(|(name, value)| format!("LABEL {name}={value}"));
    let entrypoint = format!(r#"ENTRYPOINT ["{RUNNER_PATH}"]"#);
    env.chain([entrypoint]).chain(labels).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changes_set_the_environment_entrypoint_and_labels() {
        let changes = changes(&[("a.b", "c")]);
        let expected = [
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            "ENV HOME=/root",
            r#"ENTRYPOINT ["/usr/local/bin/evals-runner"]"#,
            "LABEL a.b=c",
        ];
        assert_eq!(changes, expected);
    }

    #[test]
    fn the_layout_holds_both_binaries_a_sticky_tmp_and_no_ca_bundle() {
        let rootfs = assemble(Path::new("/bin/true"), Path::new("/bin/true")).unwrap();
        let mode = |path: &str| {
            rootfs
                .entries()
                .find(|(p, _)| *p == path)
                .map(|(_, e)| e.mode)
        };
        assert_eq!(mode("tmp"), Some(0o1777));
        assert_eq!(mode("usr/local/bin/evals-runner"), Some(0o755));
        assert_eq!(mode("usr/local/bin/docker"), Some(0o755));
        assert_eq!(mode("etc/ssl/certs/ca-certificates.crt"), None);
        // `/bin/true` is dynamic on every glibc system: its loader comes along.
        assert!(rootfs.entries().any(|(path, _)| path.contains("ld-linux")));
    }

    #[test]
    fn the_first_executable_on_the_path_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, exec) = (dir.path().join("a"), dir.path().join("b"));
        for folder in [&plain, &exec] {
            std::fs::create_dir(folder).unwrap();
        }
        std::fs::write(plain.join("docker"), "").unwrap();
        let script = exec.join("docker");
        std::fs::write(&script, "").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

        let dirs = [plain, exec.clone(), dir.path().join("missing")];
        assert_eq!(first_executable(dirs.into_iter(), "docker"), Some(script));
    }
}
