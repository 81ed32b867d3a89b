//! What the image is beyond the files taken from elsewhere: its environment and entrypoint, the
//! folders OpenCode expects, and the pre-filled config folder that leaves OpenCode's plugin
//! install nothing to do.
//!
//! `image/Dockerfile` at the repository root builds the same image from a base image; it copies
//! the config-folder files from `image/opencode-config/`, which this module embeds.
//!
//! Why the config folder is pre-filled: on the first session OpenCode (1.18) runs an npm
//! install of `@opencode-ai/plugin` into every writable config folder (`/root/.config/opencode`)
//! unless that folder already has a `node_modules` folder and a `package-lock.json` whose root
//! package lists every dependency `package.json` asks for. None of the runner's calls loads a
//! local plugin, so an empty `node_modules` and a lockfile that lists the plugin package are
//! enough: the install never starts, offline or not. The `.gitignore` is what OpenCode would
//! write there itself; having it keeps the folder usable if it is ever made read-only.

use super::rootfs::{Rootfs, Source};

/// The OpenCode binary inside the image, and the image's entrypoint.
pub const OPENCODE_PATH: &str = "/usr/local/bin/opencode";

/// Where `rg` goes: OpenCode looks it up on `PATH` before it would download one.
pub const RG_PATH: &str = "/usr/local/bin/rg";

/// The static busybox, which is also `/bin/sh` (OpenCode's shell tool runs `/bin/sh`).
pub const BUSYBOX_PATH: &str = "/bin/busybox";

/// The CA bundle, where Debian's OpenSSL and most TLS stacks look for it.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// OpenCode's global config folder in the image.
pub const CONFIG_DIR: &str = "/root/.config/opencode";

/// The image's environment. Each `OPENCODE_DISABLE_*` stops one thing OpenCode would otherwise
/// fetch on its own; `OPENCODE_DISABLE_PROJECT_CONFIG` keeps a `.opencode` folder or an
/// `opencode.json` inside the workspace (an eval's input files) from configuring the agent or
/// becoming one more folder to npm-install into. The runner's own overlay
/// (`OPENCODE_CONFIG_CONTENT`) and the global config folder still apply.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/root"),
    ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
    ("OPENCODE_DISABLE_MODELS_FETCH", "1"),
    ("OPENCODE_DISABLE_LSP_DOWNLOAD", "1"),
    ("OPENCODE_DISABLE_SHARE", "1"),
    ("OPENCODE_DISABLE_PROJECT_CONFIG", "1"),
];

/// The working directory, where the runner mounts the session's workspace.
pub const WORKDIR: &str = "/workspace";

/// `package.json` of the config folder: the dependency OpenCode would add.
const CONFIG_PACKAGE_JSON: &[u8] = include_bytes!("../../../image/opencode-config/package.json");
/// `package-lock.json` of the config folder: what tells OpenCode nothing is missing.
const CONFIG_PACKAGE_LOCK: &[u8] =
    include_bytes!("../../../image/opencode-config/package-lock.json");
/// The `.gitignore` OpenCode writes into a config folder (kept without its dot in the
/// repository, where a `.gitignore` would hide its neighbours from git).
const CONFIG_GITIGNORE: &[u8] = include_bytes!("../../../image/opencode-config/gitignore");

/// The `docker import --change` instructions: environment, working directory, entrypoint and
/// the given labels.
pub fn changes(labels: &[(&str, &str)]) -> Vec<String> {
    let env = ENVIRONMENT
        .iter()
        .map(|(name, value)| format!("ENV {name}={value}"));
    let labels = labels
        .iter()
        .map(|(name, value)| format!("LABEL {name}={value}"));
    let rest = [
        format!("WORKDIR {WORKDIR}"),
        format!(r#"ENTRYPOINT ["{OPENCODE_PATH}"]"#),
    ];
    env.chain(rest).chain(labels).collect()
}

/// Adds the entries the recipe owns: the folder layout, the account files and the pre-filled
/// config folder.
pub fn add_layout(rootfs: &mut Rootfs) {
    for dir in ["/workspace", "/root/.local/share/opencode"] {
        rootfs.add(dir, 0o755, Source::Dir);
    }
    // OpenCode creates these at start-up; having them already keeps `docker diff` down to
    // what a session really wrote.
    for dir in ["/root/.cache/opencode/bin", "/root/.local/state/opencode"] {
        rootfs.add(dir, 0o755, Source::Dir);
    }
    rootfs.add("/root", 0o700, Source::Dir);
    rootfs.add("/tmp", 0o1777, Source::Dir);
    rootfs.add("/bin/sh", 0o777, Source::Symlink("busybox".into()));
    rootfs.add(
        "/etc/passwd",
        0o644,
        bytes(b"root:x:0:0:root:/root:/bin/sh\n"),
    );
    rootfs.add("/etc/group", 0o644, bytes(b"root:x:0:\n"));
    add_config_folder(rootfs);
}

fn add_config_folder(rootfs: &mut Rootfs) {
    rootfs.add(&format!("{CONFIG_DIR}/node_modules"), 0o755, Source::Dir);
    rootfs.add(
        &format!("{CONFIG_DIR}/package.json"),
        0o644,
        bytes(CONFIG_PACKAGE_JSON),
    );
    rootfs.add(
        &format!("{CONFIG_DIR}/package-lock.json"),
        0o644,
        bytes(CONFIG_PACKAGE_LOCK),
    );
    rootfs.add(
        &format!("{CONFIG_DIR}/.gitignore"),
        0o644,
        bytes(CONFIG_GITIGNORE),
    );
}

fn bytes(content: &[u8]) -> Source {
    Source::Bytes(content.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::OPENCODE_VERSION;

    fn plugin_version(json: &[u8], pointer: &str) -> String {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap();
        value
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_config_folder_pins_the_plugin_of_the_same_opencode_version() {
        let dependency = "/dependencies/@opencode-ai~1plugin";
        assert_eq!(
            plugin_version(CONFIG_PACKAGE_JSON, dependency),
            OPENCODE_VERSION
        );
        let locked = format!("/packages/{dependency}");
        assert_eq!(
            plugin_version(CONFIG_PACKAGE_LOCK, &locked),
            OPENCODE_VERSION
        );
    }

    #[test]
    fn the_config_folder_ignores_what_opencode_would_write() {
        let ignored = String::from_utf8(CONFIG_GITIGNORE.to_vec()).unwrap();
        assert!(
            ignored.lines().any(|line| line == "node_modules"),
            "{ignored}"
        );
    }

    #[test]
    fn the_changes_set_the_environment_workdir_entrypoint_and_labels() {
        let changes = changes(&[("a.b", "c")]);
        assert!(changes.contains(&"ENV OPENCODE_DISABLE_MODELS_FETCH=1".to_owned()));
        let tail = &changes[changes.len() - 3..];
        let expected = [
            "WORKDIR /workspace",
            r#"ENTRYPOINT ["/usr/local/bin/opencode"]"#,
            "LABEL a.b=c",
        ];
        assert_eq!(tail, expected);
    }

    #[test]
    fn the_layout_has_a_sticky_tmp_and_a_private_root_home() {
        let mut rootfs = Rootfs::default();
        add_layout(&mut rootfs);
        let mode = |path: &str| rootfs.entries().find(|(p, _)| *p == path).unwrap().1.mode;
        assert_eq!((mode("tmp"), mode("root")), (0o1777, 0o700));
        assert_eq!(mode("root/.config/opencode/node_modules"), 0o755);
    }
}
