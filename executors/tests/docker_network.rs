//! The functions' network against the real engine: containers on it reach the host's
//! gateway and not one another; a network of that name that lets containers talk is
//! re-created when the platform made it and unused, and refused otherwise.

#[path = "fixtures/docker/harness.rs"]
mod harness;
#[path = "fixtures/docker/images.rs"]
mod images;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use faas_executors::docker::{DockerConfig, ICC_OPTION, LABEL_MANAGED_BY};
use faas_runtime::Error;
use faas_runtime::ports::{ExecutionRequest, Executor, ObjectGrant, Termination};
use harness::{config, executor_with, request};
use tokio::net::TcpListener;

/// A network name unique to this test process.
fn network(test: &str) -> String {
    format!("faas-test-{test}-{}", std::process::id())
}

async fn remove_network(docker: &Docker, name: &str) {
    let _ = docker.remove_network(name).await;
}

/// A request whose container joins the functions' network (it is granted an object).
fn on_network(image: &str, input: &str, timeout: Duration) -> ExecutionRequest {
    let mut req = request(image, input);
    req.objects = vec![ObjectGrant {
        alias: "doc".to_string(),
        function_id: req.function.id.clone(),
        name: "doc.txt".to_string(),
        size: 1,
        content_type: "text/plain".to_string(),
    }];
    req.timeout = timeout;
    req
}

/// The address of the (first) container of `execution_id` on `network`, once it runs.
async fn address_of(docker: &Docker, execution_id: &str, network: &str) -> String {
    for _ in 0..200 {
        if let Some(c) = harness::containers_of(docker, execution_id).await.pop() {
            let settings = c.network_settings.and_then(|s| s.networks);
            let ip = settings
                .and_then(|n| n.get(network).cloned())
                .and_then(|e| e.ip_address)
                .filter(|ip| !ip.is_empty());
            if let Some(ip) = ip {
                return ip;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the listening container never got an address on {network}");
}

#[tokio::test]
async fn function_containers_reach_the_gateway_but_not_each_other() {
    let docker = images::docker().await;
    let name = network("icc");
    remove_network(&docker, &name).await;
    let executor = executor_with(DockerConfig {
        network: name.clone(),
        ..config("icc")
    })
    .await;
    let gateway = executor.ensure_network().await.unwrap().expect("a gateway");
    let host = TcpListener::bind((gateway.as_str(), 0)).await.unwrap();
    let host_port = host.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move { while host.accept().await.is_ok() {} });
    let listener = images::script_image(&docker, "nc-listen", "nc -l -p 8000").await;
    let probe = images::script_image(
        &docker,
        "nc-probe",
        "set -- $1; \
         peer=false; nc -w 2 $1 8000 </dev/null && peer=true; \
         gateway=false; nc -w 2 $2 $3 </dev/null && gateway=true; \
         echo \"{\\\"peer\\\":$peer,\\\"gateway\\\":$gateway}\"",
    )
    .await;
    let listening = on_network(&listener, "{}", Duration::from_secs(12));
    let listening_id = listening.execution_id.clone();
    let first = tokio::spawn(async move {
        let executor = executor;
        let ran = executor.execute(listening).await;
        (executor, ran)
    });
    let peer = address_of(&docker, &listening_id, &name).await;
    let probe_executor = executor_with(DockerConfig {
        network: name.clone(),
        ..config("icc-probe")
    })
    .await;
    let input = format!("{peer} {gateway} {host_port}");
    let ran = probe_executor
        .execute(on_network(&probe, &input, Duration::from_secs(10)))
        .await
        .unwrap();
    let seen = harness::json(&ran.stdout);
    assert_eq!(seen["gateway"], true, "the host's gateway is reachable");
    assert_eq!(
        seen["peer"], false,
        "another function container on the network is unreachable"
    );
    let (executor, listened) = first.await.unwrap();
    assert_eq!(listened.unwrap().termination, Termination::TimedOut);
    harness::finish(&executor).await;
    harness::finish(&probe_executor).await;
    accepting.abort();
    remove_network(&docker, &name).await;
}

#[tokio::test]
async fn a_network_that_lets_containers_talk_is_recreated_or_refused() {
    let docker = images::docker().await;
    let ours = network("icc-ours");
    let operators = network("icc-operators");
    for (name, labels) in [
        (
            &ours,
            HashMap::from([(LABEL_MANAGED_BY.to_string(), "faas".to_string())]),
        ),
        (&operators, HashMap::new()),
    ] {
        remove_network(&docker, name).await;
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_string()),
            internal: Some(true),
            labels: Some(labels),
            ..Default::default()
        };
        docker.create_network(request).await.unwrap();
    }
    let executor = executor_with(DockerConfig {
        network: ours.clone(),
        ..config("icc-recreate")
    })
    .await;
    executor.ensure_network().await.unwrap();
    let inspected = docker.inspect_network(&ours, None).await.unwrap();
    let options = inspected.options.unwrap_or_default();
    assert_eq!(options.get(ICC_OPTION).map(String::as_str), Some("false"));
    let refusing = executor_with(DockerConfig {
        network: operators.clone(),
        ..config("icc-refuse")
    })
    .await;
    match refusing.ensure_network().await {
        Err(Error::Invalid(why)) => assert!(why.contains(ICC_OPTION), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let image = images::script_image(&docker, "ok", "echo '{}'").await;
    let req = on_network(&image, "{}", Duration::from_secs(10));
    match refusing.execute(req).await {
        Err(Error::Invalid(why)) => assert!(why.contains("docker network rm"), "{why}"),
        other => panic!("expected Invalid (the execution fails), got {other:?}"),
    }
    remove_network(&docker, &ours).await;
    remove_network(&docker, &operators).await;
}
