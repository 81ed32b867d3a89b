//! A root filesystem described as data: every entry's path, kind and mode, its inputs hash, and
//! the tarball `docker import` takes.
//!
//! Entries are kept sorted by path and every parent folder is added on the way, so a tarball
//! always lists a folder before what it holds. Owners are root and times are zero, so the same
//! entries always give the same tarball.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

/// Bump when the way entries become a tarball changes, so existing images count as stale.
const FORMAT: &str = "evals-rootfs 1";

/// Mode of the folders that nothing gives a mode of their own.
const DEFAULT_DIR_MODE: u32 = 0o755;

/// Where an entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder.
    Dir,
    /// A file copied from this machine (symbolic links followed).
    Host(PathBuf),
    /// A file with this content.
    Bytes(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One entry of the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits, sticky bit included.
    pub mode: u32,
    /// The content.
    pub source: Source,
}

/// A root filesystem: entries by path, relative to `/` and without a leading slash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rootfs {
    entries: BTreeMap<String, Entry>,
}

impl Rootfs {
    /// Adds `path` (absolute or relative to `/`) with its parent folders; a later entry for the
    /// same path replaces an earlier one, so a folder can be given its mode after a file in it.
    pub fn add(&mut self, path: &str, mode: u32, source: Source) {
        let path = path.trim_matches('/').to_owned();
        for parent in parents(&path) {
            let dir = Entry {
                mode: DEFAULT_DIR_MODE,
                source: Source::Dir,
            };
            self.entries.entry(parent.to_owned()).or_insert(dir);
        }
        self.entries.insert(path, Entry { mode, source });
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.as_str(), entry))
    }

    /// The SHA-256, in hex, of every entry (path, kind, mode, content) and of `extra` lines
    /// (the image's configuration): equal hashes mean equal images.
    pub fn inputs_hash(&self, extra: &[String]) -> anyhow::Result<String> {
        let mut host_digests = self.host_file_digests()?.into_iter();
        let mut manifest = Sha256::new();
        manifest.update(format!("{FORMAT}\n"));
        for (path, entry) in self.entries() {
            let content = match &entry.source {
                Source::Dir => "dir".to_owned(),
                Source::Host(_) => format!("file\t{}", host_digests.next().unwrap_or_default()),
                Source::Bytes(bytes) => format!("file\t{}", hex(&Sha256::digest(bytes))),
                Source::Symlink(target) => format!("symlink\t{target}"),
            };
            manifest.update(format!("{path}\t{:o}\t{content}\n", entry.mode));
        }
        for line in extra {
            manifest.update(format!("config\t{line}\n"));
        }
        Ok(hex(&manifest.finalize()))
    }

    /// The SHA-256 of every host file, in entry order. `sha256sum` does the hashing: xtask
    /// runs unoptimised, and hashing the 185 MB OpenCode binary in-process takes seconds.
    fn host_file_digests(&self) -> anyhow::Result<Vec<String>> {
        let files: Vec<&Path> = self
            .entries()
            .filter_map(|(_, entry)| match &entry.source {
                Source::Host(path) => Some(path.as_path()),
                _ => None,
            })
            .collect();
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![Path::new("--")];
        args.extend(&files);
        let output = duct::cmd("sha256sum", args)
            .stderr_capture()
            .unchecked()
            .stdout_capture()
            .run();
        let output = output.context("cannot run `sha256sum`")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            anyhow::bail!("cannot hash the image's files: {}", stderr.trim());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let digests: Vec<String> = stdout
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(|digest| digest.trim_start_matches('\\').to_owned())
            .collect();
        anyhow::ensure!(
            digests.len() == files.len(),
            "`sha256sum` printed {stdout:?}"
        );
        Ok(digests)
    }

    /// Writes the root filesystem as an uncompressed tarball to `out`.
    pub fn write_tar(&self, out: &Path) -> anyhow::Result<()> {
        let file =
            File::create(out).with_context(|| format!("cannot create `{}`", out.display()))?;
        let mut builder = tar::Builder::new(BufWriter::new(file));
        for (path, entry) in self.entries() {
            append(&mut builder, path, entry).with_context(|| format!("cannot add `/{path}`"))?;
        }
        let mut writer = builder.into_inner().context("cannot finish the tarball")?;
        writer.flush().context("cannot write the tarball")?;
        Ok(())
    }
}

/// `a/b/c` gives `a` and `a/b`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(index, _)| &path[..index])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Appends one entry, owned by root, with time zero.
fn append<W: io::Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    entry: &Entry,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    match &entry.source {
        Source::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, format!("{path}/"), io::empty())
        }
        Source::Host(source) => {
            let file = File::open(source)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(file.metadata()?.len());
            builder.append_data(&mut header, path, file)
        }
        Source::Bytes(bytes) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            builder.append_data(&mut header, path, bytes.as_slice())
        }
        Source::Symlink(target) => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Rootfs {
        let mut rootfs = Rootfs::default();
        rootfs.add("/bin/busybox", 0o755, Source::Bytes(b"#!".to_vec()));
        rootfs.add("/bin/sh", 0o777, Source::Symlink("busybox".into()));
        rootfs.add("/tmp", 0o1777, Source::Dir);
        rootfs
    }

    #[test]
    fn parent_folders_are_added_before_their_content() {
        let paths: Vec<_> = sample()
            .entries()
            .map(|(path, _)| path.to_owned())
            .collect();
        assert_eq!(paths, ["bin", "bin/busybox", "bin/sh", "tmp"]);
    }

    #[test]
    fn a_later_entry_gives_a_folder_its_mode() {
        let mut rootfs = sample();
        rootfs.add("root/.config", 0o755, Source::Dir);
        rootfs.add("root", 0o700, Source::Dir);
        let modes: BTreeMap<_, _> = rootfs
            .entries()
            .map(|(p, e)| (p.to_owned(), e.mode))
            .collect();
        assert_eq!(modes["root"], 0o700);
    }

    #[test]
    fn the_hash_follows_content_mode_and_configuration() {
        let base = sample().inputs_hash(&[]).unwrap();
        assert_eq!(base, sample().inputs_hash(&[]).unwrap());

        let mut content = sample();
        content.add("bin/busybox", 0o755, Source::Bytes(b"#!x".to_vec()));
        let mut mode = sample();
        mode.add("tmp", 0o755, Source::Dir);
        let config = sample().inputs_hash(&["ENV A=1".into()]).unwrap();

        let hashes = [
            content.inputs_hash(&[]).unwrap(),
            mode.inputs_hash(&[]).unwrap(),
            config,
        ];
        assert!(
            hashes.iter().all(|hash| *hash != base),
            "{hashes:?} vs {base}"
        );
    }

    #[test]
    fn the_tarball_keeps_modes_links_and_root_ownership() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rootfs.tar");
        sample().write_tar(&out).unwrap();

        let mut archive = tar::Archive::new(File::open(&out).unwrap());
        let listing: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                let link = entry
                    .link_name()
                    .unwrap()
                    .map(|l| format!(" -> {}", l.display()));
                format!(
                    "{} {:o} {}:{}{}",
                    entry.path().unwrap().display(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    link.unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            listing,
            [
                "bin/ 755 0:0",
                "bin/busybox 755 0:0",
                "bin/sh 777 0:0 -> busybox",
                "tmp/ 1777 0:0"
            ]
        );
    }

    #[test]
    fn hashing_a_missing_host_file_names_it() {
        let mut rootfs = Rootfs::default();
        rootfs.add("x", 0o644, Source::Host("/nonexistent/evals-file".into()));
        let error = format!("{:#}", rootfs.inputs_hash(&[]).unwrap_err());
        assert!(error.contains("/nonexistent/evals-file"), "{error}");
    }
}
