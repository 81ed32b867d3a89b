//! The host-networking port race against the real engine: another process takes the port the
//! runner chose, and the runner starts the server on another one.

// The readiness check and the cleanup guard run the docker client directly.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use evals_docker_exec::{
    ContainerSpec, Docker, LogLevel, Network, SERVER_PASSWORD_VAR, Secret, ServerLogging,
    start_with_ports,
};
use evals_opencode_client::Client;

const IMAGE: &str = "evals-opencode:1.18.33";

fn docker_ready() -> bool {
    let ready = std::process::Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|output| output.status.success());
    if !ready {
        assert!(
            std::env::var("REQUIRE_DOCKER").as_deref() != Ok("1"),
            "REQUIRE_DOCKER=1 but `{IMAGE}` is missing"
        );
        eprintln!("skipped: Docker or the image `{IMAGE}` is missing (run `cargo xtask image`)");
    }
    ready
}

/// Removes the container when the test ends, however it ends.
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_is_replaced_by_another() {
    if !docker_ready() {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let name = format!("evals-opencode-portrace-{}", std::process::id());
    let _guard = Guard(name.clone());
    let spec = ContainerSpec {
        name: name.clone(),
        labels: BTreeMap::from([("evals-runner.test".to_owned(), "port-race".to_owned())]),
        image: IMAGE.into(),
        network: Network::Host { port: 0 },
        mounts: vec![],
        runner_env: vec![SERVER_PASSWORD_VAR.into()],
        forwarded_env: vec![],
        logging: ServerLogging {
            level: LogLevel::Info,
            print_logs: false,
        },
    };
    let env = [(SERVER_PASSWORD_VAR.to_owned(), Secret::new("race-password"))];
    let mut ports = vec![taken_port];
    let next_port = move || ports.pop().unwrap_or_else(free_port);
    let probe = |port: u16| async move {
        let client = Client::new(&format!("http://127.0.0.1:{port}"), "race-password").unwrap();
        client.health(Duration::from_millis(200)).await.is_ok()
    };
    let docker = Docker::new("docker");
    let running = start_with_ports(
        &docker,
        spec,
        &env,
        Duration::from_secs(60),
        probe,
        next_port,
    )
    .await
    .unwrap();
    assert_ne!(running.port(), taken_port);
    let client = Client::new(
        &format!("http://127.0.0.1:{}", running.port()),
        "race-password",
    )
    .unwrap();
    assert!(client.health(Duration::from_secs(2)).await.is_ok());
    running.remove().await.unwrap();
    drop(taken);
}
