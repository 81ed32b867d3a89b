//! The host-networking port race against the real engine: another process takes the port the
//! runner chose, and the runner starts the server on another one.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use evals_docker_exec::{
    ContainerSpec, Docker, LogLevel, Network, SERVER_PASSWORD_VAR, Secret, ServerLogging,
    start_with_ports,
};
use evals_opencode_client::Client;
use evals_test_support::{ContainerGuard, IMAGE, docker_ready, free_port};

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_is_replaced_by_another() {
    if !docker_ready(IMAGE) {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let name = format!("evals-opencode-portrace-{}", std::process::id());
    // Removes the container when the test ends, however it ends.
    let _guard = ContainerGuard::new([name.clone()]);
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
