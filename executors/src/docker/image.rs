//! Images: the pull policy, pulls with the operator's registry credentials (inside
//! the execution's time budget), and what a local image tells the executor: its own
//! argv (entrypoint + cmd) that the contract appends INPUT to, and its labels.

use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use faas_runtime::model::PullPolicy;
use faas_runtime::{Error, Result};
use futures::StreamExt;
use tokio::time::Instant;

use super::errors::{self, Answer};
use super::pulled::PulledImages;
use super::reference::{ImageRef, normalize_registry};

/// Longest a pull may take before it counts as failed.
pub(crate) const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// Registry credentials: user, password, server (`None`: Docker Hub).
pub(crate) type RegistryAuth = Option<(String, String, Option<String>)>;

/// What a local image tells the executor.
#[derive(Debug, Clone)]
pub(crate) struct LocalImage {
    /// Entrypoint followed by cmd.
    pub(crate) argv_prefix: Vec<String>,
    /// The keys of the image's own labels.
    pub(crate) labels: Vec<String>,
    /// The engine's id of the image (its content), empty when not reported.
    pub(crate) id: String,
}

/// Why an image cannot be used: a guest fault, reported as an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Missing, refused by its registry, malformed: a trap with this reason.
    Fault(String),
    /// The pull did not finish within the execution's time budget.
    TimedOut,
}

/// How a pull went.
pub(crate) enum Pulled {
    /// The image is now local (the platform pulled it).
    Done,
    /// Not usable: the reason.
    Unusable(Unusable),
}

/// Makes the image present as the policy says (pulling before `deadline`) and reads
/// it; `pulled` records every image the platform pulled.
///
/// `Ok(Err(reason))` is a guest fault (pull failed or too slow, image missing with
/// policy `never`, no entrypoint); `Err` is an infrastructure fault (engine unreachable).
pub(crate) async fn resolve(
    docker: &Docker,
    image: &ImageRef,
    policy: PullPolicy,
    auth: &RegistryAuth,
    deadline: Instant,
    pulled: &PulledImages,
) -> Result<std::result::Result<LocalImage, Unusable>> {
    let present = if policy == PullPolicy::Always {
        None
    } else {
        inspect(docker, image).await?
    };
    if let Some(local) = present {
        return Ok(local.map_err(Unusable::Fault));
    }
    if policy == PullPolicy::Never {
        return Ok(Err(Unusable::Fault(format!(
            "image {} is not present and its pull policy is never",
            image.as_str()
        ))));
    }
    if let Pulled::Unusable(why) = pull(docker, image, auth, deadline).await? {
        return Ok(Err(why));
    }
    pulled.record(image).await;
    Ok(match inspect(docker, image).await? {
        Some(local) => local.map_err(Unusable::Fault),
        None => Err(Unusable::Fault(format!(
            "image {} vanished after its pull",
            image.as_str()
        ))),
    })
}

/// Reads a local image: `None` when absent.
pub(crate) async fn inspect(
    docker: &Docker,
    image: &ImageRef,
) -> Result<Option<std::result::Result<LocalImage, String>>> {
    let inspected = match docker.inspect_image(image.as_str()).await {
        Ok(inspected) => inspected,
        Err(err) if errors::is_not_found(&err) => return Ok(None),
        Err(err) => return Err(errors::to_runtime("inspecting an image", err)),
    };
    let id = inspected.id.unwrap_or_default();
    let config = inspected.config.unwrap_or_default();
    let labels = config.labels.unwrap_or_default().into_keys().collect();
    let mut argv_prefix = config.entrypoint.unwrap_or_default();
    argv_prefix.extend(config.cmd.unwrap_or_default());
    if argv_prefix.is_empty() {
        return Ok(Some(Err(format!(
            "image {} has neither an entrypoint nor a cmd",
            image.as_str()
        ))));
    }
    Ok(Some(Ok(LocalImage {
        argv_prefix,
        labels,
        id,
    })))
}

/// Pulls an image, giving up at `deadline` (or after [`PULL_TIMEOUT`]).
async fn pull(
    docker: &Docker,
    image: &ImageRef,
    auth: &RegistryAuth,
    deadline: Instant,
) -> Result<Pulled> {
    let started = Instant::now();
    let deadline = deadline.min(started + PULL_TIMEOUT);
    let options = CreateImageOptionsBuilder::default()
        .from_image(image.pull_ref())
        .build();
    let credentials = credentials_for(image, auth);
    let mut progress = docker.create_image(Some(options), None, credentials);
    let drained = tokio::time::timeout_at(deadline, async {
        while let Some(item) = progress.next().await {
            item?;
        }
        Ok::<(), bollard::errors::Error>(())
    })
    .await;
    let failure = match drained {
        Ok(Ok(())) => return Ok(Pulled::Done),
        Ok(Err(err)) => err,
        Err(_) => {
            tracing::warn!(
                image = image.as_str(),
                waited = ?started.elapsed(),
                "the image pull did not finish within the execution's time budget"
            );
            return Ok(Pulled::Unusable(Unusable::TimedOut));
        }
    };
    match errors::answer(failure) {
        Answer::Unreachable(message) => Err(Error::Unavailable(format!(
            "pulling {}: docker engine unreachable: {message}",
            image.as_str()
        ))),
        Answer::Refused { message, .. } | Answer::Stream(message) => {
            Ok(Pulled::Unusable(Unusable::Fault(format!(
                "image pull failed: {}: {message}",
                image.pull_ref()
            ))))
        }
    }
}

/// The configured credentials, only for the registry they belong to: the operator's
/// password never goes to a registry a function's author chose.
fn credentials_for(image: &ImageRef, auth: &RegistryAuth) -> Option<DockerCredentials> {
    let (user, password, server) = auth.as_ref()?;
    let server = normalize_registry(server.as_deref().unwrap_or(""));
    (server == image.registry()).then(|| DockerCredentials {
        username: Some(user.clone()),
        password: Some(password.clone()),
        serveraddress: Some(server),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_only_to_their_registry() {
        let hub: RegistryAuth = Some(("u".into(), "p".into(), None));
        let own: RegistryAuth = Some(("u".into(), "p".into(), Some("https://reg.io:5000".into())));
        let alpine = ImageRef::parse("alpine").unwrap();
        let private = ImageRef::parse("reg.io:5000/team/fn:1").unwrap();
        let elsewhere = ImageRef::parse("evil.example/fn").unwrap();
        assert!(credentials_for(&alpine, &hub).is_some());
        assert!(credentials_for(&private, &hub).is_none());
        assert!(credentials_for(&private, &own).is_some());
        assert!(credentials_for(&elsewhere, &own).is_none());
        assert!(credentials_for(&alpine, &None).is_none());
    }
}
