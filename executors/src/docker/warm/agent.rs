//! The in-container agent (`executors/agent/main.rs`, built static by `build.rs`):
//! its bytes, the volume that carries it to the engine, and its job frame.
//!
//! The worker may reach the engine through its socket from another container (the
//! compose cluster), so no host path is bind-mounted: the agent lives in a named
//! volume, `faas-agent-<hash of its bytes>`, filled once per process through the
//! engine's archive API into a created (never started) container of the function's
//! own image that mounts it. Containers mount it read-only. A complete agent is never
//! rewritten (another process may be starting it); only the very first fill on an
//! engine can race with another process's.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder,
    ListContainersOptionsBuilder, UploadToContainerOptionsBuilder,
};
use faas_runtime::ports::{ExecutionRequest, RawOutcome, Termination};
use faas_runtime::{Error, Result};
use sha2::{Digest, Sha256};

use super::super::ends::EndMark;
use super::super::errors;
use super::super::reap;
use super::super::spec::{AGENT_FILE, LABEL_MANAGED_BY, MANAGED_BY};

/// The agent: a static executable.
pub(crate) const AGENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/faas-agent"));

/// Where the throwaway container mounts the volume to fill it.
const FILL_DIR: &str = "/faas-agent";

/// Exit status of the agent when the program could not be started.
const CANNOT_RUN: i32 = 127;

/// Prefix of the agent's own messages on stderr.
const PREFIX: &[u8] = b"faas-agent: ";

/// The volume's name: the hash of the agent's bytes, so that releases never mix.
pub(crate) fn volume_name() -> String {
    let digest = hex::encode(Sha256::digest(AGENT));
    format!("faas-agent-{}", &digest[..12])
}

/// Creates the agent's volume (if missing) and writes the agent into it, using a
/// created, never started, container of `image` (present on the engine).
///
/// Every process on the engine (API, workers, tests) may fill it at once, and a file
/// is not written atomically: a container started on a half-written agent fails. The
/// fill container's fixed name is the engine-wide lock: whoever creates it checks and
/// writes the agent, then removes it; the others wait for it to go, then check. A
/// fill container left by a process that died mid-fill is removed after
/// [`FILL_STALE`].
pub(crate) async fn fill_volume(docker: &Docker, image: &str) -> Result<String> {
    let volume = volume_name();
    let request = VolumeCreateRequest {
        name: Some(volume.clone()),
        labels: Some(HashMap::from([(
            LABEL_MANAGED_BY.to_string(),
            MANAGED_BY.to_string(),
        )])),
        ..Default::default()
    };
    docker
        .create_volume(request)
        .await
        .map_err(|err| errors::to_runtime("creating the agent's volume", err))?;
    let name = format!("faas-agent-fill-{}", &volume["faas-agent-".len()..]);
    let waited = tokio::time::Instant::now();
    let id = loop {
        match create_fill(docker, image, &volume, &name).await? {
            Some(id) => break id,
            None if waited.elapsed() > FILL_WAIT => {
                return Err(Error::Unavailable(format!(
                    "another process has been writing the agent into {volume} for over {} s",
                    FILL_WAIT.as_secs()
                )));
            }
            None => {
                remove_if_stale(docker, &name).await;
                tokio::time::sleep(FILL_POLL).await;
            }
        }
    };
    // Never rewrite a complete agent: another process may be starting it.
    let uploaded = match present(docker, &id).await {
        true => Ok(()),
        false => upload(docker, &id).await,
    };
    let removed = reap::remove(docker, &id).await;
    uploaded?;
    removed?;
    tracing::info!(volume = %volume, "the warm containers' agent is in its volume");
    Ok(volume)
}

/// How long a process waits for another one's fill.
const FILL_WAIT: Duration = Duration::from_secs(60);
/// How often it looks whether the other fill is over.
const FILL_POLL: Duration = Duration::from_millis(100);
/// A fill container older than this was left by a process that died mid-fill.
const FILL_STALE: Duration = Duration::from_secs(30);

/// Creates the fill container `name` mounting `volume`; `None` while another
/// process holds that name.
async fn create_fill(
    docker: &Docker,
    image: &str,
    volume: &str,
    name: &str,
) -> Result<Option<String>> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![format!("{FILL_DIR}/{AGENT_FILE}")]),
        cmd: Some(Vec::new()),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_string()),
            mounts: Some(vec![Mount {
                target: Some(FILL_DIR.to_string()),
                source: Some(volume.to_string()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    match docker.create_container(Some(options), body).await {
        Ok(created) => Ok(Some(created.id)),
        Err(err) => match errors::answer(err) {
            errors::Answer::Refused { status: 409, .. } => Ok(None),
            other => Err(errors::from_answer(
                "creating the agent's fill container",
                other,
            )),
        },
    }
}

/// Removes the fill container `name` if it was created over [`FILL_STALE`] ago.
async fn remove_if_stale(docker: &Docker, name: &str) {
    let filters = HashMap::from([("name".to_string(), vec![format!("^/{name}$")])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let Ok(found) = docker.list_containers(Some(options)).await else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for summary in found {
        let age = now.saturating_sub(summary.created.unwrap_or(i64::MAX).max(0) as u64);
        if age > FILL_STALE.as_secs() {
            tracing::warn!(container = %name, age_secs = age, "removing a fill container left by a process that died mid-fill");
            if let Some(id) = summary.id {
                let _ = reap::remove(docker, &id).await;
            }
        }
    }
}

/// True when the volume, mounted in container `id`, holds the whole agent.
async fn present(docker: &Docker, id: &str) -> bool {
    let path = format!("{FILL_DIR}/{AGENT_FILE}");
    let options = ContainerArchiveInfoOptionsBuilder::default()
        .path(&path)
        .build();
    match docker.get_container_archive_info(id, Some(options)).await {
        Ok(stat) => u64::try_from(stat.size).is_ok_and(|size| size == AGENT.len() as u64),
        Err(_) => false,
    }
}

async fn upload(docker: &Docker, id: &str) -> Result<()> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(AGENT.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, AGENT_FILE, AGENT)
        .and_then(|()| tar.finish())
        .map_err(|err| Error::Internal(format!("packing the agent: {err}")))?;
    let bytes = tar
        .into_inner()
        .map_err(|err| Error::Internal(format!("packing the agent: {err}")))?;
    let options = UploadToContainerOptionsBuilder::default()
        .path(FILL_DIR)
        .build();
    docker
        .upload_to_container(id, Some(options), bollard::body_full(bytes.into()))
        .await
        .map_err(|err| errors::to_runtime("writing the agent into its volume", err))
}

/// The job frame of `request` for the agent: the header (argv: the image's
/// `argv_prefix` then INPUT unless too large; env; the end `mark`; stdin length),
/// then stdin.
pub(crate) fn job(argv_prefix: &[String], request: &ExecutionRequest, mark: &EndMark) -> Vec<u8> {
    let mut argv: Vec<&str> = argv_prefix.iter().map(String::as_str).collect();
    argv.extend(request.argv_input());
    let mut header = Vec::new();
    put_u32(&mut header, argv.len());
    for arg in argv {
        put_str(&mut header, arg);
    }
    put_u32(&mut header, request.env.len());
    for (name, value) in &request.env {
        put_str(&mut header, name);
        put_str(&mut header, value);
    }
    put_str(&mut header, mark.as_str());
    header.extend_from_slice(&(request.input.len() as u64).to_be_bytes());
    let mut frame = Vec::with_capacity(4 + header.len() + request.input.len());
    put_u32(&mut frame, header.len());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(request.input.as_bytes());
    frame
}

fn put_u32(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_str(buf: &mut Vec<u8>, text: &str) {
    put_u32(buf, text.len());
    buf.extend_from_slice(text.as_bytes());
}

/// The outcome of a warm run as the cold path reports it: a program the agent could
/// not start is the image's fault, as a refused container start is.
pub(crate) fn as_cold(raw: RawOutcome) -> RawOutcome {
    let cannot_run = raw.termination == Termination::Exited(CANNOT_RUN)
        && raw.stdout.is_empty()
        && raw.stderr.starts_with(PREFIX);
    if !cannot_run {
        return raw;
    }
    let message = String::from_utf8_lossy(&raw.stderr[PREFIX.len()..]);
    RawOutcome {
        termination: Termination::Trap(format!(
            "container failed to start: {}",
            message.trim_end()
        )),
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_overflow: false,
        stderr_overflow: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_is_a_static_executable() {
        assert_eq!(&AGENT[..4], b"\x7fELF");
        // No program interpreter (PT_INTERP): it runs in images without a libc.
        let text = String::from_utf8_lossy(AGENT);
        assert!(!text.contains("/lib64/ld-linux"), "dynamically linked");
        assert!(volume_name().starts_with("faas-agent-"));
    }

    #[test]
    fn a_program_the_agent_cannot_start_is_a_trap() {
        let raw = RawOutcome {
            termination: Termination::Exited(CANNOT_RUN),
            stdout: Vec::new(),
            stderr: b"faas-agent: cannot run \"/fn\": No such file\n".to_vec(),
            stdout_overflow: false,
            stderr_overflow: false,
        };
        match as_cold(raw).termination {
            Termination::Trap(m) => assert!(m.contains("cannot run"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
