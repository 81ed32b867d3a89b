//! Mount sources with spaces, commas, colons, quotes and non-ASCII text, on the real engine:
//! each reaches the container as the directory it names, never a silently different one.

// The check reads the mounted file with `docker exec`.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::Duration;

use evals_docker_exec::{
    ContainerSpec, Docker, LogLevel, Network, SERVER_PASSWORD_VAR, Secret, ServerLogging, start,
};
use evals_mount_plan::Mount;
use evals_opencode_client::Client;
use evals_test_support::{ContainerGuard, IMAGE, docker_ready, unique_hex};

#[tokio::test(flavor = "multi_thread")]
async fn awkward_sources_mount_the_directory_they_name() {
    if !docker_ready(IMAGE) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for (index, name) in ["with space", "com,ma", "co:lon", "quo\"te", "ünïcødé ,:\""]
        .into_iter()
        .enumerate()
    {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("marker"), name).unwrap();
        let container = format!("evals-opencode-awkward-{}-{index}", unique_hex(8));
        let _guard = ContainerGuard::new([container.clone()]);
        let spec = ContainerSpec {
            name: container.clone(),
            labels: BTreeMap::from([(
                "evals-docker-exec.test".to_owned(),
                "awkward-paths".to_owned(),
            )]),
            image: IMAGE.into(),
            network: Network::Host { port: 0 },
            mounts: vec![Mount {
                source: dir.clone(),
                target: "/workspace".into(),
                read_only: false,
            }],
            runner_env: vec![SERVER_PASSWORD_VAR.into()],
            forwarded_env: vec![],
            logging: ServerLogging {
                level: LogLevel::Info,
                print_logs: false,
            },
        };
        let env = [(SERVER_PASSWORD_VAR.to_owned(), Secret::new("awkward"))];
        let probe = |port: u16| async move {
            let client = Client::new(&format!("http://127.0.0.1:{port}"), "awkward").unwrap();
            client.health(Duration::from_millis(200)).await.is_ok()
        };
        let running = start(
            &Docker::new("docker"),
            spec,
            &env,
            Duration::from_secs(60),
            probe,
        )
        .await
        .unwrap_or_else(|err| panic!("{name:?}: {err}"));
        let read = std::process::Command::new("docker")
            .args(["exec", &container, "/bin/sh", "-c", "cat /workspace/marker"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&read.stdout),
            name,
            "{name:?} mounted something else"
        );
        running.remove().await.unwrap();
    }
}
