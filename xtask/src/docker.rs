//! The Docker Engine as xtask sees it through the `docker` client: is it up, start it, and what
//! an image tag points at.
//!
//! Starting the engine is `.ci/docker-up`'s job, shared with `.ci/run`; this module only calls
//! it, so the start-up logic exists once.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use duct::cmd;

/// Whether `docker info` succeeds: a client on PATH and an engine that answers it.
pub fn engine_answers() -> bool {
    cmd!("docker", "info")
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|output| output.status.success())
}

/// Runs `.ci/docker-up` from the workspace `root`: installs and starts the engine when it can,
/// does nothing when the engine already answers.
///
/// Its messages go to standard error as they come; on failure the error says the script failed
/// (the script itself has already said why, and what to do).
pub fn up(root: &Path) -> anyhow::Result<()> {
    let script = root.join(".ci").join("docker-up");
    let output = cmd!("bash", &script).stdout_to_stderr().unchecked().run();
    let status = output
        .with_context(|| format!("cannot run `{}`", script.display()))?
        .status;
    if !status.success() {
        bail!("`{}` failed ({status})", script.display());
    }
    Ok(())
}

/// What an image tag points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id, `sha256:...`.
    pub id: String,
    /// The image's labels.
    pub labels: BTreeMap<String, String>,
    /// The image's size in bytes, as the engine reports it.
    pub size: u64,
}

/// Reads the image `reference` points at; `None` when there is no such image.
///
/// Any other failure (no engine, a client error) is an error.
pub fn inspect(reference: &str) -> anyhow::Result<Option<ImageInfo>> {
    let output = cmd!("docker", "image", "inspect", reference)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("cannot run `docker image inspect`")?;
    if output.status.success() {
        return parse_inspect(&output.stdout).map(Some);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.to_lowercase().contains("no such image") {
        return Ok(None);
    }
    bail!(
        "`docker image inspect {reference}` failed: {}",
        stderr.trim()
    )
}

/// Reads the id and labels out of `docker image inspect`'s JSON array.
fn parse_inspect(stdout: &[u8]) -> anyhow::Result<ImageInfo> {
    let parsed: serde_json::Value =
        serde_json::from_slice(stdout).context("`docker image inspect` printed no JSON")?;
    let image = &parsed[0];
    let id = image["Id"]
        .as_str()
        .context("`docker image inspect` printed no `Id`")?;
    let labels = image["Config"]["Labels"].as_object().into_iter().flatten();
    let labels = labels.filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())));
    let size = image["Size"].as_u64().unwrap_or_default();
    Ok(ImageInfo {
        id: id.to_owned(),
        labels: labels.collect(),
        size,
    })
}

/// Removes the image `id`, quietly: an image still used by a container or another tag stays.
pub fn remove_image_quietly(id: &str) {
    let _ = cmd!("docker", "image", "rm", id)
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_gives_the_id_size_and_labels() {
        let json = br#"[{"Id":"sha256:abc","Size":42,"Config":{"Labels":{"a":"1","b":"2"}}}]"#;
        let info = parse_inspect(json).unwrap();
        assert_eq!((info.id.as_str(), info.size), ("sha256:abc", 42));
        assert_eq!(info.labels.get("b").map(String::as_str), Some("2"));
    }

    #[test]
    fn an_image_without_labels_has_none() {
        let info = parse_inspect(br#"[{"Id":"sha256:abc","Config":{"Labels":null}}]"#).unwrap();
        assert!(info.labels.is_empty());
    }

    #[test]
    fn inspect_output_without_an_id_is_an_error() {
        assert!(parse_inspect(b"[{}]").is_err());
    }
}
