//! The container definition of one execution: the function contract (argv, env,
//! stdin) and the hardening every function container gets.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions,
};
use faas_runtime::ports::ExecutionRequest;

use super::DockerConfig;
use super::image::LocalImage;

/// Label on every container this executor creates.
pub const LABEL_MANAGED_BY: &str = "faas.managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "faas";
/// Label holding the execution id.
pub const LABEL_EXECUTION_ID: &str = "faas.execution-id";
/// Label holding the function id.
pub const LABEL_FUNCTION_ID: &str = "faas.function-id";
/// Label holding the id of the worker that created the container.
pub const LABEL_WORKER_ID: &str = "faas.worker-id";
/// Label holding the delivery attempt.
pub const LABEL_ATTEMPT: &str = "faas.attempt";
/// Label holding the id of the installation (data set) the container belongs to.
pub const LABEL_INSTALLATION: &str = "faas.installation";
/// Prefix of the platform's labels: an image's own labels under it are overridden.
pub const LABEL_PREFIX: &str = "faas.";
/// Label of a warm container (value `"true"`): created before its execution, so its
/// execution id label is empty.
pub const LABEL_WARM: &str = "faas.warm";

/// Largest json-file log the engine keeps per container (output is captured by
/// attaching; the log is only a by-product).
const LOG_MAX_SIZE: &str = "1m";

/// The engine's smallest memory limit; 0 would mean *no* limit, so it never passes.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The labels of an execution's container.
///
/// The engine merges the image's `LABEL`s into the container's: every `faas.*` label
/// the image carries (`image_labels`) is set here to an empty value, so that an image
/// can never pass its container off as something of the platform's (a worker to clone,
/// another installation's container), then the platform's own labels are written.
pub(crate) fn labels(
    request: &ExecutionRequest,
    config: &DockerConfig,
    image_labels: &[String],
) -> HashMap<String, String> {
    let mut labels = platform_labels(&request.function.id, config, image_labels);
    labels.extend([
        (LABEL_EXECUTION_ID.to_string(), request.execution_id.clone()),
        (LABEL_ATTEMPT.to_string(), request.attempt.to_string()),
    ]);
    labels
}

/// The labels of a warm container of `function_id`: no execution yet (empty
/// execution id, attempt 0) and [`LABEL_WARM`].
pub(crate) fn warm_labels(
    function_id: &str,
    config: &DockerConfig,
    image_labels: &[String],
) -> HashMap<String, String> {
    let mut labels = platform_labels(function_id, config, image_labels);
    labels.extend([
        (LABEL_EXECUTION_ID.to_string(), String::new()),
        (LABEL_ATTEMPT.to_string(), "0".to_string()),
        (LABEL_WARM.to_string(), "true".to_string()),
    ]);
    labels
}

/// The image's `faas.*` labels voided, then the function, worker and installation.
fn platform_labels(
    function_id: &str,
    config: &DockerConfig,
    image_labels: &[String],
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = image_labels
        .iter()
        .filter(|key| key.starts_with(LABEL_PREFIX))
        .map(|key| (key.clone(), String::new()))
        .collect();
    labels.extend([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_FUNCTION_ID.to_string(), function_id.to_string()),
        (LABEL_WORKER_ID.to_string(), config.worker_id.clone()),
        (
            LABEL_INSTALLATION.to_string(),
            config.installation_id.clone(),
        ),
    ]);
    labels
}

/// The create body of an execution's container.
///
/// The image's argv prefix (entrypoint followed by cmd) goes after INPUT's place:
/// the contract puts INPUT after both, so both move into `Entrypoint` and `Cmd` is
/// `[INPUT]` (or empty when INPUT is too large for argv and comes on stdin only).
pub(crate) fn container_body(
    image: &str,
    local: LocalImage,
    request: &ExecutionRequest,
    config: &DockerConfig,
) -> ContainerCreateBody {
    let cmd = request
        .argv_input()
        .map(|input| vec![input.to_string()])
        .unwrap_or_default();
    let env = request
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let network = network_of(request, config);
    ContainerCreateBody {
        labels: Some(labels(request, config, &local.labels)),
        entrypoint: Some(local.argv_prefix),
        cmd: Some(cmd),
        env: Some(env),
        host_config: Some(host_config(request.memory_limit, network, config)),
        ..attached(image, config)
    }
}

/// What every function container shares: its image, the unprivileged user, and
/// stdin held open for exactly one writer, stdout and stderr attached, no tty.
fn attached(image: &str, config: &DockerConfig) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        user: (!config.user.is_empty()).then(|| config.user.clone()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        ..Default::default()
    }
}

/// The create body of a container whose entrypoint is the agent (warm containers,
/// and cold ones once the agent's volume is ready): the cold path's hardening, no
/// env and no INPUT (they come with the job, so no secret is ever in the
/// container's configuration); the agent is mounted read-only from `agent_volume`
/// at [`AGENT_DIR`].
pub(crate) fn agent_body(
    image: &str,
    labels: HashMap<String, String>,
    memory_limit: u64,
    network: &str,
    agent_volume: &str,
    config: &DockerConfig,
) -> ContainerCreateBody {
    let mut host = host_config(memory_limit, network, config);
    host.mounts = Some(vec![Mount {
        target: Some(AGENT_DIR.to_string()),
        source: Some(agent_volume.to_string()),
        typ: Some(MountType::VOLUME),
        read_only: Some(true),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    ContainerCreateBody {
        labels: Some(labels),
        entrypoint: Some(vec![format!("{AGENT_DIR}/{AGENT_FILE}")]),
        cmd: Some(Vec::new()),
        env: Some(Vec::new()),
        host_config: Some(host),
        ..attached(image, config)
    }
}

/// The network of an execution: none, unless it reads objects.
pub(crate) fn network_of<'a>(request: &ExecutionRequest, config: &'a DockerConfig) -> &'a str {
    if request.objects.is_empty() {
        NO_NETWORK
    } else {
        &config.network
    }
}

/// Network mode of a container that needs no network.
pub(crate) const NO_NETWORK: &str = "none";

/// Where warm containers see the agent's volume (read-only).
pub(crate) const AGENT_DIR: &str = "/.faas-agent";
/// The agent's file name in its volume.
pub(crate) const AGENT_FILE: &str = "faas-agent";

/// Resource limits and isolation.
fn host_config(memory_limit: u64, network_mode: &str, config: &DockerConfig) -> HostConfig {
    let memory = i64::try_from(memory_limit)
        .unwrap_or(i64::MAX)
        .max(MIN_MEMORY);
    let network_mode = network_mode.to_string();
    let tmpfs = format!(
        "rw,noexec,nosuid,nodev,size={}m,mode=1777",
        config.tmp_size_mb.max(1)
    );
    HostConfig {
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some(nano_cpus(config.cpus)),
        pids_limit: Some(config.pids_limit),
        cap_drop: Some(vec!["ALL".to_string()]),
        security_opt: Some(vec!["no-new-privileges".to_string()]),
        privileged: Some(false),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([("/tmp".to_string(), tmpfs)])),
        network_mode: Some(network_mode),
        auto_remove: Some(false),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_string()),
            config: Some(HashMap::from([
                ("max-size".to_string(), LOG_MAX_SIZE.to_string()),
                ("max-file".to_string(), "1".to_string()),
            ])),
        }),
        ..Default::default()
    }
}

/// CPUs as the engine's `NanoCpus`; at least a hundredth of a core.
fn nano_cpus(cpus: f64) -> i64 {
    let cpus = if cpus.is_finite() && cpus > 0.0 {
        cpus
    } else {
        1.0
    };
    ((cpus * 1e9) as i64).max(10_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_runtime::model::Function;
    use faas_runtime::ports::ObjectGrant;
    use std::time::Duration;

    fn request(input: String, objects: bool) -> ExecutionRequest {
        let function = Function {
            id: "f1".into(),
            owner_id: "u1".into(),
            name: "n".into(),
            description: String::new(),
            runnable: faas_runtime::model::Runnable::Image(faas_runtime::model::ImageSpec {
                image_url: "img".into(),
                pull_policy: None,
                warm: None,
            }),
            timeout_secs: 5,
            memory_mb: 64,
            created_at: faas_runtime::model::now(),
            versions: Default::default(),
        };
        let objects = objects
            .then(|| ObjectGrant {
                alias: "a".into(),
                function_id: "f1".into(),
                name: "o".into(),
                size: 1,
                content_type: "text/plain".into(),
            })
            .into_iter()
            .collect();
        ExecutionRequest {
            execution_id: "e1".into(),
            attempt: 1,
            function,
            input,
            env: vec![("API_KEY".into(), "s3cret".into())],
            objects,
            objects_dir: None,
            timeout: Duration::from_secs(5),
            memory_limit: 64 << 20,
            stdout_cap: 10,
            stderr_cap: 10,
        }
    }

    fn local() -> LocalImage {
        LocalImage {
            argv_prefix: vec!["/fn".into()],
            labels: Vec::new(),
            id: "sha256:0".into(),
        }
    }

    #[test]
    fn contract_and_hardening() {
        let config = DockerConfig::default();
        let body = container_body("img", local(), &request("{}".into(), false), &config);
        assert_eq!(body.entrypoint, Some(vec!["/fn".to_string()]));
        assert_eq!(body.cmd, Some(vec!["{}".to_string()]));
        assert_eq!(body.env, Some(vec!["API_KEY=s3cret".to_string()]));
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.memory, host.memory_swap);
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.readonly_rootfs, Some(true));
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_EXECUTION_ID], "e1");
        assert_eq!(labels[LABEL_WORKER_ID], config.worker_id);
        assert_eq!(labels[LABEL_INSTALLATION], config.installation_id);
    }

    #[test]
    fn an_image_cannot_set_the_platforms_labels() {
        let config = DockerConfig::default();
        let image = LocalImage {
            argv_prefix: vec!["/fn".into()],
            labels: vec![
                "faas.role".into(),
                LABEL_MANAGED_BY.into(),
                LABEL_INSTALLATION.into(),
                "org.opencontainers.image.title".into(),
            ],
            id: "sha256:0".into(),
        };
        let body = container_body("img", image, &request("{}".into(), false), &config);
        let labels = body.labels.unwrap();
        assert_eq!(labels["faas.role"], "", "an image's faas.* label is voided");
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY);
        assert_eq!(labels[LABEL_INSTALLATION], config.installation_id);
        assert!(!labels.contains_key("org.opencontainers.image.title"));
    }

    #[test]
    fn large_input_leaves_argv_and_objects_join_the_network() {
        let config = DockerConfig::default();
        let big = "x".repeat(faas_runtime::ports::executor::MAX_ARGV_INPUT + 1);
        let body = container_body("img", local(), &request(big, true), &config);
        assert_eq!(body.cmd, Some(vec![]));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode, Some(config.network));
    }

    #[test]
    fn memory_limit_is_never_unlimited() {
        let mut req = request("{}".into(), false);
        req.memory_limit = 0;
        let body = container_body("img", local(), &req, &DockerConfig::default());
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(MIN_MEMORY));
        assert_eq!(host.memory_swap, Some(MIN_MEMORY));
    }

    #[test]
    fn nano_cpus_has_a_floor_and_a_default() {
        assert_eq!(nano_cpus(0.5), 500_000_000);
        assert_eq!(nano_cpus(f64::NAN), 1_000_000_000);
        assert_eq!(nano_cpus(0.0001), 10_000_000);
    }
}
