//! The two ways an execution runs: in a container created for it (cold) or in a warm
//! one. Both containers run the agent, which receives the job (argv, env with the
//! secrets, stdin) over the attach stream: no secret is ever in a container's
//! configuration. Should the agent's volume be unavailable, a cold container runs
//! the image's entrypoint directly with the env in its configuration, as before.

use bollard::models::ContainerCreateBody;
use faas_runtime::ports::{ExecutionRequest, RawOutcome};
use faas_runtime::{Error, Result};
use tokio::time::Instant;

use super::ends::EndMark;
use super::{DockerExecutor, ImageRef, container_name, errors, image, reap, run, spec, trap, warm};

impl DockerExecutor {
    /// Runs `request` in a container of its own, created now.
    pub(super) async fn run_cold(
        &self,
        image: &ImageRef,
        local: image::LocalImage,
        request: &ExecutionRequest,
        deadline: Instant,
    ) -> Result<RawOutcome> {
        // Named, and owned before it is created: removed in the background when
        // dropped (off the latency, and on cancel, even mid-creation); now when
        // killed, as callers expect a timed-out container gone.
        let name = container_name(request);
        let container = reap::Disposer::named(&self.docker, &self.cleanup, name.clone());
        let (body, stdin) = match self.warm.agent_volume(image.as_str()).await {
            Ok(volume) => {
                let labels = spec::labels(request, &self.config, &local.labels);
                let network = spec::network_of(request, &self.config);
                let memory = request.memory_limit;
                let body = spec::agent_body(
                    image.as_str(),
                    labels,
                    memory,
                    network,
                    &volume,
                    &self.config,
                );
                let mark = EndMark::new();
                let job = warm::agent::job(&local.argv_prefix, request, &mark);
                (body, Some((job, mark)))
            }
            Err(err) => {
                tracing::warn!(error = %err, "the agent's volume is unavailable: env in the container's configuration");
                let body = spec::container_body(image.as_str(), local, request, &self.config);
                (body, None)
            }
        };
        let id = match self.create(body, &name).await? {
            Ok(id) => id,
            Err(reason) => return Ok(trap(reason)),
        };
        let (feed, mark) = match &stdin {
            Some((job, mark)) => (job.as_slice(), Some(mark)),
            None => (request.input.as_bytes(), None),
        };
        let ran = run::run(&self.docker, &id, feed, mark, request, deadline).await;
        if ran.as_ref().map_or(true, |ran| ran.killed) {
            container.remove_now().await;
        }
        let ran = ran?;
        tracing::debug!(termination = ?ran.termination, "container finished");
        Ok(match stdin {
            Some(_) => warm::agent::as_cold(ran.into_outcome()),
            None => ran.into_outcome(),
        })
    }

    /// Runs `request` in a warm container: its job goes to the agent, then the
    /// container ends (removed like a cold one).
    pub(super) async fn run_warm(
        &self,
        taken: warm::Taken,
        local: &image::LocalImage,
        request: &ExecutionRequest,
        deadline: Instant,
    ) -> Result<RawOutcome> {
        let warm::Taken { id, attach, owned } = taken;
        let container = reap::Disposer::named(&self.docker, &self.cleanup, id.clone());
        let mark = EndMark::new();
        let job = warm::agent::job(&local.argv_prefix, request, &mark);
        let ran = run::finish(
            &self.docker,
            &id,
            attach,
            &job,
            Some(&mark),
            request,
            deadline,
        );
        let ran = ran.await;
        if ran.as_ref().map_or(true, |ran| ran.killed) {
            container.remove_now().await;
        } else {
            drop(container);
        }
        drop(owned);
        let ran = ran?;
        tracing::debug!(termination = ?ran.termination, "warm container finished");
        Ok(warm::agent::as_cold(ran.into_outcome()))
    }

    /// Creates the container; `Ok(Err)` when the engine refuses its definition.
    async fn create(
        &self,
        body: ContainerCreateBody,
        name: &str,
    ) -> Result<std::result::Result<String, String>> {
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
            .name(name)
            .build();
        match self.docker.create_container(Some(options), body).await {
            Ok(created) => Ok(Ok(created.id)),
            Err(err) => match errors::answer(err) {
                errors::Answer::Refused { status, message } if status != 404 && status < 500 => {
                    Ok(Err(format!("the engine refused the container: {message}")))
                }
                // 404: the image went away after its check; a retry pulls it again.
                errors::Answer::Refused {
                    status: 404,
                    message,
                } => Err(Error::Unavailable(format!(
                    "creating the container: {message}"
                ))),
                other => Err(errors::from_answer("creating the container", other)),
            },
        }
    }
}
