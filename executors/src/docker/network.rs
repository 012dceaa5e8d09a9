//! The functions' network (`NETWORK_NAME`): where a container that reads objects
//! reaches the API. Created when missing as an *internal* bridge with inter-container
//! traffic off: a container on it reaches the host's address on the bridge (the
//! gateway) and nothing else, neither the outside nor another tenant's container.
//!
//! A network of that name that lets containers reach each other is re-created when
//! the platform made it and nothing is attached; otherwise it is refused with a
//! message saying how to fix it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::Docker;
use bollard::models::{NetworkCreateRequest, NetworkInspect};
use faas_runtime::{Error, Result};

use super::errors;
use super::spec::{LABEL_MANAGED_BY, MANAGED_BY};

/// The bridge driver's option that turns inter-container traffic off (`"false"`).
pub const ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";

/// What the engine says of an existing network.
struct Found {
    gateway: Option<String>,
    /// Inter-container traffic is off.
    isolated: bool,
    /// The platform created it.
    ours: bool,
    /// Containers attached to it now.
    attached: usize,
}

/// Makes sure `name` exists with inter-container traffic off; returns its gateway
/// address (the host, as containers on the network see it), when the engine reports
/// one. `Invalid` when a network of that name lets containers reach each other and
/// cannot be re-created.
pub(crate) async fn ensure(docker: &Docker, name: &str) -> Result<Option<String>> {
    match inspect(docker, name).await? {
        Some(found) if found.isolated => return Ok(found.gateway),
        Some(found) => replace(docker, name, &found).await?,
        None => {}
    }
    create(docker, name).await?;
    Ok(inspect(docker, name).await?.and_then(|found| found.gateway))
}

async fn create(docker: &Docker, name: &str) -> Result<()> {
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        internal: Some(true),
        attachable: Some(true),
        options: Some(HashMap::from([(
            ICC_OPTION.to_string(),
            "false".to_string(),
        )])),
        labels: Some(HashMap::from([(
            LABEL_MANAGED_BY.to_string(),
            MANAGED_BY.to_string(),
        )])),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(_) => {
            tracing::info!(network = name, "created the functions' network");
            Ok(())
        }
        // Another worker created it first.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(err) => Err(errors::to_runtime("creating the functions' network", err)),
    }
}

/// Removes a network of the platform's that lets containers reach each other, or
/// refuses one the operator made (or that is in use).
async fn replace(docker: &Docker, name: &str, found: &Found) -> Result<()> {
    if !found.ours || found.attached > 0 {
        let why = format!(
            "the functions' network {name} lets containers reach each other ({ICC_OPTION} \
             is not \"false\"{}); function containers on it could reach another tenant's: \
             remove it (`docker network rm {name}`) to let the platform create it, or \
             create it with `docker network create --internal -o {ICC_OPTION}=false {name}`",
            if found.attached > 0 {
                format!(", {} container(s) attached", found.attached)
            } else {
                String::new()
            }
        );
        tracing::error!(network = name, "{why}");
        return Err(Error::Invalid(why));
    }
    tracing::warn!(
        network = name,
        "re-creating the functions' network with inter-container traffic off"
    );
    match docker.remove_network(name).await {
        Ok(()) => Ok(()),
        Err(err) if errors::is_not_found(&err) => Ok(()),
        Err(err) => Err(errors::to_runtime("removing the functions' network", err)),
    }
}

/// Set once the operator was told that an existing network is not internal.
static WARNED_NOT_INTERNAL: AtomicBool = AtomicBool::new(false);

/// `None` when the network does not exist.
async fn inspect(docker: &Docker, name: &str) -> Result<Option<Found>> {
    let network = match docker.inspect_network(name, None).await {
        Ok(network) => network,
        Err(err) if errors::is_not_found(&err) => return Ok(None),
        Err(err) => return Err(errors::to_runtime("inspecting the functions' network", err)),
    };
    if network.internal != Some(true) && !WARNED_NOT_INTERNAL.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            network = name,
            "the functions' network is not internal: containers that read objects \
             can reach beyond the API"
        );
    }
    Ok(Some(found(network)))
}

fn found(network: NetworkInspect) -> Found {
    let option = |key: &str| network.options.as_ref().and_then(|o| o.get(key)).cloned();
    let label = network
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .cloned();
    Found {
        isolated: option(ICC_OPTION).as_deref() == Some("false"),
        ours: label.as_deref() == Some(MANAGED_BY),
        attached: network.containers.as_ref().map_or(0, HashMap::len),
        gateway: network
            .ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .into_iter()
            .find_map(|config| config.gateway),
    }
}
