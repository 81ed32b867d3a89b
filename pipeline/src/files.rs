//! Files in and out: an eval's input files, sanitized output paths, and atomic JSON writes.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::discover::posix;
use crate::prompt::PromptFile;

/// Every file under `app/` of the eval folder, at any depth, by path relative to `app/`, sorted.
pub fn input_files(eval_dir: &Path) -> std::io::Result<Vec<PromptFile>> {
    read_files(&eval_dir.join("app"))
}

/// Every file under `dir` with its text, by POSIX path relative to `dir`, sorted; none when
/// `dir` does not exist.
pub fn read_files(dir: &Path) -> std::io::Result<Vec<PromptFile>> {
    relative_files(dir)?
        .into_iter()
        .map(|path| {
            let content = String::from_utf8_lossy(&std::fs::read(dir.join(&path))?).into_owned();
            Ok(PromptFile { path, content })
        })
        .collect()
}

/// The POSIX paths, relative to `dir`, of every file under it, sorted; none when `dir` does not
/// exist.
pub fn relative_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    if dir.is_dir() {
        collect(dir, dir, &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else {
            files.push(posix(path.strip_prefix(root).unwrap_or(&path)));
        }
    }
    Ok(())
}

/// A model-given path made safe: backslashes become slashes, and leading slashes, `.` and `..`
/// segments are dropped. `None` when nothing is left.
pub fn sanitize_path(path: &str) -> Option<PathBuf> {
    let path = path.replace('\\', "/");
    let clean: PathBuf = Path::new(&path)
        .components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    (!clean.as_os_str().is_empty()).then_some(clean)
}

/// A name made safe for a file or folder: every character outside `[A-Za-z0-9._-]` becomes
/// `_`, as output folders (`<model>-<run id>`) and judge results (`<eval id>.json`) are named.
pub fn sanitize_name(name: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    name.chars()
        .map(|c| if safe(c) { c } else { '_' })
        .collect()
}

/// Writes `files` under `dir` with sanitized paths, returning the POSIX paths written.
pub fn write_files(dir: &Path, files: &[PromptFile]) -> std::io::Result<Vec<String>> {
    let mut written = Vec::new();
    for file in files {
        let Some(relative) = sanitize_path(&file.path) else {
            continue;
        };
        let target = dir.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &file.content)?;
        written.push(posix(&relative));
    }
    written.sort();
    written.dedup();
    Ok(written)
}

/// Writes `value` as pretty JSON to `path` atomically: a temp file beside it, renamed into place,
/// so a reader never sees half a file.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".json")
        .tempfile_in(dir)?;
    serde_json::to_writer_pretty(&mut temp, value)?;
    temp.write_all(b"\n")?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_safe_characters() {
        assert_eq!(sanitize_name("openai/gpt-4.1-mini"), "openai_gpt-4.1-mini");
        assert_eq!(sanitize_name("a b:c/ü"), "a_b_c__");
    }

    #[test]
    fn hostile_paths_stay_inside() {
        let cases = [
            ("App.tsx", Some("App.tsx")),
            ("../../etc/passwd", Some("etc/passwd")),
            ("/etc/passwd", Some("etc/passwd")),
            ("..\\..\\win\\x.ts", Some("win/x.ts")),
            ("./a/./b/../c.ts", Some("a/b/c.ts")),
            ("..", None),
            ("/", None),
        ];
        for (given, expected) in cases {
            assert_eq!(sanitize_path(given), expected.map(PathBuf::from), "{given}");
        }
    }

    #[test]
    fn written_files_never_leave_the_folder() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let files = [
            PromptFile {
                path: "../../escape.txt".into(),
                content: "x".into(),
            },
            PromptFile {
                path: "/abs/file.txt".into(),
                content: "y".into(),
            },
        ];
        assert_eq!(
            write_files(&out, &files).unwrap(),
            ["abs/file.txt", "escape.txt"]
        );
        assert!(!root.path().join("escape.txt").exists());
        assert!(out.join("escape.txt").is_file());
    }

    #[test]
    fn input_files_are_found_at_any_depth() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("app/lib")).unwrap();
        std::fs::write(root.path().join("app/lib/b.ts"), "b").unwrap();
        std::fs::write(root.path().join("app/a.ts"), "a").unwrap();
        let paths: Vec<_> = input_files(root.path())
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(paths, ["a.ts", "lib/b.ts"]);
    }

    #[test]
    fn json_is_replaced_whole() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("m.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json_atomic(&path, &serde_json::json!({"b": 2})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"b\": 2\n}\n"
        );
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
