//! Images under the operator's control, against the real engine: the allow-list at
//! deploy time and at run time, a pull that counts in the execution's time budget,
//! removal of pulled images no function uses (never of images the operator provided),
//! and an image's `faas.*` labels never reaching its container.

#[path = "fixtures/docker/harness.rs"]
mod harness;
#[path = "fixtures/docker/images.rs"]
mod images;
#[path = "fixtures/docker/registry.rs"]
mod registry;

use std::time::{Duration, Instant};

use faas_executors::docker::{AllowedImages, DockerConfig, LABEL_EXECUTION_ID};
use faas_runtime::Error;
use faas_runtime::model::PullPolicy;
use faas_runtime::ports::{Executor, Termination};
use harness::{config, executor_with, function, image_mut, request};

/// A reference unique to this test process on the test registry.
fn pulled_ref(registry: &registry::Registry, name: &str) -> String {
    format!(
        "{}/faas-test/{name}-{}:1",
        registry.host,
        std::process::id()
    )
}

#[tokio::test]
async fn allow_list_refuses_at_deploy_and_at_run() {
    let docker = images::docker().await;
    let allowed = images::script_image(&docker, "allowed", "echo '{}'").await;
    let refused = images::script_image(&docker, "refused", "echo '{}'").await;
    let executor = executor_with(DockerConfig {
        allowed_images: AllowedImages::parse("registry.local/team/*, faas-test-allowed:*"),
        ..config("allow-list")
    })
    .await;
    executor.prepare(&function(&allowed), None).await.unwrap();
    match executor.prepare(&function(&refused), None).await {
        Err(Error::Invalid(why)) => {
            assert!(why.contains("not allowed"), "{why}");
            assert!(
                why.contains("registry.local/team/*, faas-test-allowed:*"),
                "{why}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let ran = executor.execute(request(&allowed, "{}")).await.unwrap();
    assert_eq!(ran.termination, Termination::Exited(0));
    // Deployed before the operator narrowed the list: refused when it runs.
    let req = request(&refused, "{}");
    let execution_id = req.execution_id.clone();
    match executor.execute(req).await.unwrap().termination {
        Termination::Trap(why) => assert!(why.contains("FAAS_ALLOWED_IMAGES"), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        harness::containers_of(&docker, &execution_id)
            .await
            .is_empty(),
        "no container was created for a refused image"
    );
    harness::finish(&executor).await;
}

#[tokio::test]
async fn a_pull_slower_than_the_time_budget_ends_the_execution_timed_out() {
    let registry = registry::start().await;
    let executor = executor_with(config("slow-pull")).await;
    let mut req = request(&pulled_ref(&registry, "slow"), "{}");
    image_mut(&mut req.function).pull_policy = Some(PullPolicy::Always);
    req.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let ran = tokio::time::timeout(Duration::from_secs(30), executor.execute(req))
        .await
        .expect("the execution ends instead of hanging on the pull")
        .unwrap();
    assert_eq!(ran.termination, Termination::TimedOut);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "the pull counted in the 2 s budget, yet took {took:?}"
    );
}

#[tokio::test]
async fn pulled_images_no_function_uses_are_removed_and_provided_ones_kept() {
    let docker = images::docker().await;
    let registry = registry::start().await;
    let state = tempfile::tempdir().unwrap();
    let with_state = || DockerConfig {
        pulled_images_file: Some(state.path().join("pulled-images")),
        ..config("image-removal")
    };
    let provided = images::script_image(&docker, "provided", "echo '{}'").await;
    let pulled = pulled_ref(&registry, "pulled");
    let executor = executor_with(with_state()).await;
    let mut req = request(&pulled, "{}");
    image_mut(&mut req.function).pull_policy = Some(PullPolicy::Always);
    let ran = executor.execute(req).await.unwrap();
    assert_eq!(harness::text(&ran.stdout), "{\"pulled\":true}\n");
    let ran = executor.execute(request(&provided, "{}")).await.unwrap();
    assert_eq!(ran.termination, Termination::Exited(0));
    harness::finish(&executor).await;
    assert!(executor.has_pulled_images());
    let still_used = [pulled.as_str()];
    assert_eq!(executor.remove_unused_images(still_used).await.unwrap(), 0);
    assert!(docker.inspect_image(&pulled).await.is_ok());
    // A later life of the worker remembers what it pulled.
    drop(executor);
    let executor = executor_with(with_state()).await;
    assert_eq!(executor.remove_unused_images([]).await.unwrap(), 1);
    assert!(
        docker.inspect_image(&pulled).await.is_err(),
        "the pulled image is gone"
    );
    assert!(
        docker.inspect_image(&provided).await.is_ok(),
        "the image the operator provided stays"
    );
    assert!(!executor.has_pulled_images());
}

#[tokio::test]
async fn an_images_own_faas_labels_never_reach_its_container() {
    let docker = images::docker().await;
    let registry = registry::start().await;
    let image = pulled_ref(&registry, "labelled");
    let executor = executor_with(config("image-labels")).await;
    let mut req = request(&image, "{}");
    image_mut(&mut req.function).pull_policy = Some(PullPolicy::Always);
    req.input = "sleep".to_string();
    let execution_id = req.execution_id.clone();
    let inspect = async {
        for _ in 0..200 {
            if let Some(c) = harness::containers_of(&docker, &execution_id).await.pop() {
                return c.labels.unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the container of the execution never appeared");
    };
    let (ran, labels) = tokio::join!(executor.execute(req), inspect);
    ran.unwrap();
    assert_eq!(labels[LABEL_EXECUTION_ID], execution_id);
    assert_eq!(
        labels.get("faas.role").map(String::as_str),
        Some(""),
        "the image's faas.role=worker is voided: {labels:?}"
    );
    harness::finish(&executor).await;
    let _ = executor.remove_unused_images([]).await;
}
