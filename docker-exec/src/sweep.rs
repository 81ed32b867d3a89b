//! Finding and removing a run's containers by their run-id label, whatever their state.
//!
//! Which runs are dead is not decided here: the caller asks for one run's containers, or for
//! every container of the runner, and decides what to remove.

use crate::RUN_ID_LABEL;
use crate::process::{Docker, DockerError, args};

/// A container of the runner, as `docker ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerRef {
    /// The container's name.
    pub name: String,
    /// The value of its [`RUN_ID_LABEL`] label.
    pub run_id: String,
}

/// Every container, running or stopped, that carries [`RUN_ID_LABEL`]: with `run_id`, only
/// those of that run. Sorted by run id, then name.
pub async fn run_containers(
    docker: &Docker,
    run_id: Option<&str>,
) -> Result<Vec<ContainerRef>, DockerError> {
    let filter = match run_id {
        Some(run_id) => format!("label={RUN_ID_LABEL}={run_id}"),
        None => format!("label={RUN_ID_LABEL}"),
    };
    let format = format!("{{{{.Names}}}}\t{{{{.Label \"{RUN_ID_LABEL}\"}}}}");
    let argv = args(["ps", "--all", "--filter", &filter, "--format", &format]);
    let listed = docker.output_async(argv, vec![]).await?;
    Ok(parse_ps(&listed))
}

/// The containers in `docker ps` output of `<name>\t<run id>` lines.
fn parse_ps(listed: &str) -> Vec<ContainerRef> {
    let mut containers: Vec<_> = listed
        .lines()
        .filter_map(|line| {
            let (name, run_id) = line.split_once('\t')?;
            Some(ContainerRef {
                name: name.into(),
                run_id: run_id.into(),
            })
        })
        .collect();
    containers.sort_by(|a, b| (&a.run_id, &a.name).cmp(&(&b.run_id, &b.name)));
    containers
}

/// Removes every container of run `run_id` at once, whatever its state, and returns their
/// names. One that disappears meanwhile is not an error, and not in the list.
pub async fn remove_run_containers(
    docker: &Docker,
    run_id: &str,
) -> Result<Vec<String>, DockerError> {
    let names: Vec<String> = run_containers(docker, Some(run_id))
        .await?
        .into_iter()
        .map(|container| container.name)
        .collect();
    if names.is_empty() {
        return Ok(names);
    }
    let mut argv = args(["rm", "--force", "--volumes"]);
    argv.extend(names.iter().map(Into::into));
    match docker.output_async(argv, vec![]).await {
        Ok(_) => Ok(names),
        Err(DockerError::Failed { command, stderr }) => {
            let gone = vanished(&stderr)
                .filter(|gone| !gone.is_empty())
                .ok_or(DockerError::Failed { command, stderr })?;
            Ok(names
                .into_iter()
                .filter(|name| !gone.contains(name))
                .collect())
        }
        Err(err) => Err(err),
    }
}

/// The containers `docker rm` says do not exist, when that is all it complains about.
fn vanished(stderr: &str) -> Option<Vec<String>> {
    stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (_, name) = line.split_once("No such container: ")?;
            Some(name.trim().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines_become_sorted_container_refs() {
        let listed = "evals-opencode-bb-2\tbb\nevals-opencode-aa-1\taa\nevals-opencode-bb-1\tbb\n";
        let names: Vec<_> = parse_ps(listed)
            .into_iter()
            .map(|c| format!("{} {}", c.run_id, c.name))
            .collect();
        assert_eq!(
            names,
            [
                "aa evals-opencode-aa-1",
                "bb evals-opencode-bb-1",
                "bb evals-opencode-bb-2"
            ]
        );
        assert_eq!(parse_ps(""), []);
    }

    #[test]
    fn only_missing_containers_make_a_failed_rm_harmless() {
        let stderr = "Error response from daemon: No such container: evals-opencode-aa-1\n\
                      Error: No such container: evals-opencode-aa-2";
        assert_eq!(
            vanished(stderr).unwrap(),
            ["evals-opencode-aa-1", "evals-opencode-aa-2"]
        );
        let mixed = "Error: No such container: a\nError response from daemon: permission denied";
        assert_eq!(vanished(mixed), None);
    }
}
