//! The functions' network (`NETWORK_NAME`): where a container that reads objects
//! reaches the API. Created when missing as an *internal* bridge: containers on it reach
//! each other and the host's address on the bridge (the gateway), never the outside.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use faas_runtime::Result;

use super::errors;
use super::spec::{LABEL_MANAGED_BY, MANAGED_BY};

/// Makes sure `name` exists; returns its gateway address (the host, as containers on
/// the network see it), when the engine reports one.
pub(crate) async fn ensure(docker: &Docker, name: &str) -> Result<Option<String>> {
    if let Some(gateway) = inspect(docker, name).await? {
        return Ok(gateway);
    }
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        internal: Some(true),
        attachable: Some(true),
        labels: Some(HashMap::from([(
            LABEL_MANAGED_BY.to_string(),
            MANAGED_BY.to_string(),
        )])),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(_) => tracing::info!(network = name, "created the functions' network"),
        // Another worker created it first.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => {}
        Err(err) => return Err(errors::to_runtime("creating the functions' network", err)),
    }
    Ok(inspect(docker, name).await?.flatten())
}

/// Set once the operator was told that an existing network is not internal.
static WARNED_NOT_INTERNAL: AtomicBool = AtomicBool::new(false);

/// `None` when the network does not exist; else its gateway, if any.
async fn inspect(docker: &Docker, name: &str) -> Result<Option<Option<String>>> {
    match docker.inspect_network(name, None).await {
        Ok(network) if network.internal != Some(true) => {
            if !WARNED_NOT_INTERNAL.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    network = name,
                    "the functions' network is not internal: containers that read objects \
                     can reach beyond the API"
                );
            }
            Ok(Some(gateway(network.ipam)))
        }
        Ok(network) => Ok(Some(gateway(network.ipam))),
        Err(err) if errors::is_not_found(&err) => Ok(None),
        Err(err) => Err(errors::to_runtime("inspecting the functions' network", err)),
    }
}

fn gateway(ipam: Option<bollard::models::Ipam>) -> Option<String> {
    ipam.and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .into_iter()
        .find_map(|config| config.gateway)
}
