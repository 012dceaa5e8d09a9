//! No orphans: the executions this worker runs now, the listing of every container
//! the platform labelled, and their removal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use faas_runtime::Result;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::task::TaskTracker;

use super::errors;
use super::spec::{
    LABEL_EXECUTION_ID, LABEL_INSTALLATION, LABEL_MANAGED_BY, LABEL_WARM, LABEL_WORKER_ID,
    MANAGED_BY,
};

/// A container the platform created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedContainer {
    /// Engine id.
    pub id: String,
    /// Name (without the leading `/`).
    pub name: String,
    /// A warm container ([`LABEL_WARM`]): made before its execution, so its
    /// execution id is empty.
    pub warm: bool,
    /// The execution it ran (empty when the label is missing).
    pub execution_id: String,
    /// The worker that created it (empty when the label is missing).
    pub worker_id: String,
    /// The installation it belongs to (`None`: made by a release without the label).
    pub installation: Option<String>,
    /// Its program has ended (state `exited` or `dead`): nothing runs in it.
    pub exited: bool,
}

/// Lists every container labelled `faas.managed-by=faas`, running or not, whatever
/// its installation.
pub(crate) async fn list_managed(docker: &Docker) -> Result<Vec<ManagedContainer>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_MANAGED_BY}={MANAGED_BY}")],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let summaries = docker
        .list_containers(Some(options))
        .await
        .map_err(|err| errors::to_runtime("listing containers", err))?;
    Ok(summaries
        .into_iter()
        .filter_map(|summary| {
            let labels = summary.labels.unwrap_or_default();
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            let name = summary
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            Some(ManagedContainer {
                id: summary.id?,
                name,
                warm: labels.get(LABEL_WARM).is_some_and(|v| v == "true"),
                execution_id: label(LABEL_EXECUTION_ID),
                worker_id: label(LABEL_WORKER_ID),
                installation: labels.get(LABEL_INSTALLATION).cloned(),
                exited: matches!(
                    summary.state,
                    Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD)
                ),
            })
        })
        .collect())
}

/// True when container `id` ended more than `grace` ago (by the engine's
/// `FinishedAt`); false when that cannot be read or it has not ended.
pub(crate) async fn ended_before(docker: &Docker, id: &str, grace: Duration) -> bool {
    let Ok(inspected) = docker.inspect_container(id, None).await else {
        return false;
    };
    let Some(finished) = inspected.state.and_then(|s| s.finished_at) else {
        return false;
    };
    let Ok(finished) = OffsetDateTime::parse(&finished, &Rfc3339) else {
        return false;
    };
    // The engine's zero time ("0001-01-01T00:00:00Z") means it never ran to an end.
    finished.year() > 1 && OffsetDateTime::now_utc() - finished > grace
}

/// Kills and removes a container (with its anonymous volumes); gone already is fine.
pub(crate) async fn remove(docker: &Docker, id: &str) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if errors::is_not_found(&err) => Ok(()),
        // 409: removal already in progress (a concurrent reap or cleanup).
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(err) => Err(errors::to_runtime("removing a container", err)),
    }
}

/// Execution ids this worker runs right now (with a count, for duplicate deliveries);
/// the reaper never touches them.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<HashMap<String, usize>>>);

impl InFlight {
    /// Marks `execution_id` as running until the guard drops.
    pub(crate) fn enter(&self, execution_id: &str) -> InFlightGuard {
        *self.lock().entry(execution_id.to_string()).or_default() += 1;
        InFlightGuard {
            set: self.clone(),
            execution_id: execution_id.to_string(),
        }
    }

    /// True while `execution_id` runs here.
    pub(crate) fn contains(&self, execution_id: &str) -> bool {
        self.lock().contains_key(execution_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // The set stays consistent even if a holder panicked: recover it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes its execution from the [`InFlight`] set on drop.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    set: InFlight,
    execution_id: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut set = self.set.lock();
        if let Some(count) = set.get_mut(&self.execution_id) {
            *count -= 1;
            if *count == 0 {
                set.remove(&self.execution_id);
            }
        }
    }
}

/// Owns a created container: removes it when dropped (in the background), so that an
/// execution whose future is dropped (cancelled) leaves no container behind.
#[derive(Debug)]
pub(crate) struct Disposer {
    docker: Docker,
    tracker: TaskTracker,
    id: Option<String>,
}

impl Disposer {
    /// Takes charge of the container that is about to be created under `name`
    /// (before its creation is asked for: a future dropped while the engine creates
    /// it still leaves nothing behind).
    pub(crate) fn named(docker: &Docker, tracker: &TaskTracker, name: String) -> Self {
        Disposer {
            docker: docker.clone(),
            tracker: tracker.clone(),
            id: Some(name),
        }
    }

    /// Removes the container before returning (callers expect a killed one gone);
    /// when it is not there yet or the engine does not answer, leaves the removal to
    /// the background instead of holding the caller.
    pub(crate) async fn remove_now(mut self) {
        if let Some(id) = self.id.take()
            && !matches!(remove_found(&self.docker, &id).await, Ok(true))
        {
            self.id = Some(id);
        }
    }
}

impl Drop for Disposer {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                self.tracker
                    .spawn_on(removal(self.docker.clone(), id), &handle);
            }
            Err(_) => tracing::warn!(
                container.id = %id,
                "no runtime left to remove the container; the reaper will"
            ),
        }
    }
}

/// How long a removal keeps trying while the engine cannot be reached (restarting);
/// after that the periodic reap removes the container.
const REMOVAL_PATIENCE: Duration = Duration::from_secs(120);
/// Longest pause between two tries of a removal.
const REMOVAL_MAX_PAUSE: Duration = Duration::from_secs(5);

/// Removes container `id` (an id or a name). A container not there yet may still be
/// on its way (a creation whose caller went away): it is looked for again twice. An
/// engine that does not answer (restarting: its containers stay, stopped, until someone
/// removes them) is asked again, with growing pauses, for [`REMOVAL_PATIENCE`].
async fn removal(docker: Docker, id: String) {
    let started = tokio::time::Instant::now();
    let mut absent = [Duration::from_secs(1), Duration::from_secs(3)].into_iter();
    let mut pause = Duration::from_millis(250);
    loop {
        let wait = match remove_found(&docker, &id).await {
            Ok(true) => return,
            Ok(false) => match absent.next() {
                Some(wait) => wait,
                None => return,
            },
            Err(err) if err.is_retryable() && started.elapsed() < REMOVAL_PATIENCE => {
                tracing::debug!(container.id = %id, error = %err, "the engine does not answer; removal retried");
                pause = (pause * 2).min(REMOVAL_MAX_PAUSE);
                pause
            }
            Err(err) => {
                tracing::warn!(container.id = %id, error = %err, "removing the container failed; the reaper will");
                return;
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Like [`remove`]; answers whether there was a container to remove.
async fn remove_found(docker: &Docker, id: &str) -> Result<bool> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(true),
        Err(err) if errors::is_not_found(&err) => Ok(false),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(true),
        Err(err) => Err(errors::to_runtime("removing a container", err)),
    }
}
