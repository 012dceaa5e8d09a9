//! One execution: a fresh [`Store`] with its limits and deadline, the guest run on
//! a fiber, fenced by the timeout and the `/tmp` cap, and what happened reported
//! as a [`RawOutcome`].

use std::time::{Duration, Instant};

use faas_runtime::ports::{ExecutionRequest, RawOutcome, Termination};
use faas_runtime::{Error, Result};
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::bindings::CommandPre;

use super::bindings::FunctionPre;
use super::limits::Limiter;
use super::objects::ObjectAccess;
use super::pipe::{CappedPipe, OutputLimit};
use super::sandbox::Sandbox;
use super::state::{ComponentState, ModuleState};
use super::{Entry, Prepared, Shared};

/// How often the size of `/tmp` is measured while a guest runs.
const TMP_WATCH_PERIOD: Duration = Duration::from_millis(10);
/// Stands in for a timeout too large to add to the clock.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How the guest's own code ended.
enum Exit {
    /// `_start` / `wasi:cli/run` returned (0), or `proc_exit`/`exit` gave a code.
    Code(i32),
    /// A typed component's `handle` returned.
    Returned(std::result::Result<String, String>),
}

/// What stopped the run.
enum Ended {
    /// The guest stopped by itself (or trapped); `denied` = a memory growth was refused.
    Guest {
        result: wasmtime::Result<Exit>,
        denied: bool,
    },
    /// The wall-clock deadline passed (the guest was inside a host call).
    TimedOut,
    /// `/tmp` went over its cap.
    TmpLimit,
}

/// What the run of one guest needs.
struct Guest<'a> {
    engine: &'a Engine,
    request: &'a ExecutionRequest,
    sandbox: &'a Sandbox,
    /// Bytes of linear memory the store may hold.
    memory: u64,
    deadline: Instant,
}

/// Runs `request` on `prepared`.
pub(crate) async fn run(
    shared: &Shared,
    prepared: &Prepared,
    request: &ExecutionRequest,
) -> Result<RawOutcome> {
    let mut sandbox = Sandbox::create(request, &shared.scratch, prepared.filesystem).await?;
    let now = Instant::now();
    let guest = Guest {
        engine: &shared.engine,
        request,
        sandbox: &sandbox,
        memory: memory_limit(shared, request),
        deadline: now
            .checked_add(request.timeout)
            .unwrap_or(now + MAX_TIMEOUT),
    };
    let tmp_cap = shared.config.tmp_cap_bytes;
    let ended = tokio::select! {
        biased;
        ended = guest.run(prepared) => ended?,
        ended = fence(&sandbox, guest.deadline, tmp_cap) => ended,
    };
    let mut termination = termination(ended, &sandbox, tmp_cap);
    if sandbox.tmp_ended_over_cap(tmp_cap).await && termination != Termination::TimedOut {
        termination = Termination::Trap(tmp_limit(tmp_cap));
    }
    let (stdout, stdout_overflow) = sandbox.stdout.take();
    let (stderr, stderr_overflow) = sandbox.stderr.take();
    Ok(RawOutcome {
        termination,
        stdout,
        stderr,
        stdout_overflow,
        stderr_overflow,
    })
}

/// Resolves once the deadline has passed (the guest may be stuck in a host call,
/// where no epoch check runs) or `/tmp` went over its cap; one timer at a time.
async fn fence(sandbox: &Sandbox, deadline: Instant, tmp_cap: u64) -> Ended {
    loop {
        let next = (Instant::now() + TMP_WATCH_PERIOD).min(deadline);
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= deadline {
            return Ended::TimedOut;
        }
        if sandbox.tmp_over_cap(tmp_cap).await {
            return Ended::TmpLimit;
        }
    }
}

/// The request's memory limit (the function's when unset), at most the operator's.
fn memory_limit(shared: &Shared, request: &ExecutionRequest) -> u64 {
    let asked = if request.memory_limit > 0 {
        request.memory_limit
    } else {
        request.function.memory_mb.saturating_mul(1 << 20)
    };
    asked.min(shared.config.max_memory_mb.saturating_mul(1 << 20))
}

fn tmp_limit(cap: u64) -> String {
    format!("tmp limit of {cap} bytes exceeded")
}

/// A fresh store with its limiter and its deadline: the epoch callback yields to
/// tokio every tick and interrupts the guest once the deadline has passed.
pub(crate) fn new_store<T: Send + 'static>(
    engine: &Engine,
    data: T,
    limiter: fn(&mut T) -> &mut Limiter,
    deadline: Instant,
) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.limiter(move |t| limiter(t));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store
}

impl Guest<'_> {
    async fn run(&self, prepared: &Prepared) -> Result<Ended> {
        match &prepared.entry {
            Entry::Module(pre) => self.module(pre).await,
            Entry::Command(pre) => self.command(pre).await,
            Entry::Function(pre) => self.function(pre).await,
            Entry::Proxy(_) => Ok(Ended::Guest {
                result: Err(wasmtime::format_err!(
                    "this function is a wasi:http/proxy component: call it over HTTP at /fn/<username>/<function>"
                )),
                denied: false,
            }),
        }
    }

    async fn module(&self, pre: &wasmtime::InstancePre<ModuleState>) -> Result<Ended> {
        let state = ModuleState {
            wasi: self
                .sandbox
                .wasi(self.request, &self.sandbox.stdout)?
                .build_p1(),
            limiter: Limiter::new(self.memory),
        };
        let mut store = new_store(self.engine, state, |s| &mut s.limiter, self.deadline);
        let result = match pre.instantiate_async(&mut store).await {
            Ok(instance) => match instance.get_typed_func::<(), ()>(&mut store, "_start") {
                Ok(start) => start
                    .call_async(&mut store, ())
                    .await
                    .map(|()| Exit::Code(0)),
                Err(e) => Err(e),
            },
            Err(e) => Err(instantiation_error(e)?),
        };
        let denied = store.data().limiter.denied();
        Ok(Ended::Guest { result, denied })
    }

    fn component_store(&self, guest_stdout: &CappedPipe) -> Result<Store<ComponentState>> {
        let state = ComponentState {
            wasi: self.sandbox.wasi(self.request, guest_stdout)?.build(),
            table: wasmtime::component::ResourceTable::new(),
            limiter: Limiter::new(self.memory),
            objects: ObjectAccess::new(self.request.objects.clone(), self.sandbox.objects_dir()),
        };
        Ok(new_store(
            self.engine,
            state,
            |s| &mut s.limiter,
            self.deadline,
        ))
    }

    async fn command(&self, pre: &CommandPre<ComponentState>) -> Result<Ended> {
        let mut store = self.component_store(&self.sandbox.stdout)?;
        let result = match pre.instantiate_async(&mut store).await {
            Ok(command) => command
                .wasi_cli_run()
                .call_run(&mut store)
                .await
                .map(|r| Exit::Code(if r.is_ok() { 0 } else { 1 })),
            Err(e) => Err(instantiation_error(e)?),
        };
        let denied = store.data().limiter.denied();
        Ok(Ended::Guest { result, denied })
    }

    /// A typed function's result is its stdout; what it prints goes to the logs.
    async fn function(&self, pre: &FunctionPre<ComponentState>) -> Result<Ended> {
        let mut store = self.component_store(&self.sandbox.stderr)?;
        let result = match pre.instantiate_async(&mut store).await {
            Ok(function) => function
                .call_handle(&mut store, &self.request.input)
                .await
                .map(Exit::Returned),
            Err(e) => Err(instantiation_error(e)?),
        };
        let denied = store.data().limiter.denied();
        Ok(Ended::Guest { result, denied })
    }
}

/// A full instance pool is the platform's fault (retry later); anything else
/// (a start function trapping, a memory over the limit) is the guest's.
pub(crate) fn instantiation_error(e: wasmtime::Error) -> Result<wasmtime::Error> {
    let pool_full = e
        .chain()
        .any(|c| c.downcast_ref::<PoolConcurrencyLimitError>().is_some());
    if pool_full {
        return Err(Error::Overloaded(format!(
            "wasm instance pool is full: {e}"
        )));
    }
    Ok(e)
}

fn termination(ended: Ended, sandbox: &Sandbox, tmp_cap: u64) -> Termination {
    let (result, denied) = match ended {
        Ended::TimedOut => return Termination::TimedOut,
        Ended::TmpLimit => return Termination::Trap(tmp_limit(tmp_cap)),
        Ended::Guest { result, denied } => (result, denied),
    };
    let t = match result {
        Ok(Exit::Code(code)) => Termination::Exited(code),
        Ok(Exit::Returned(Ok(output))) => {
            sandbox.stdout.put(output.as_bytes());
            Termination::Exited(0)
        }
        Ok(Exit::Returned(Err(message))) => Termination::GuestError(message),
        Err(e) => from_error(&e, sandbox),
    };
    let failed = matches!(&t, Termination::Trap(_) | Termination::GuestError(_))
        || matches!(t, Termination::Exited(code) if code != 0);
    if denied && failed {
        Termination::MemoryExceeded
    } else {
        t
    }
}

/// Maps the error a guest call ended with.
fn from_error(e: &wasmtime::Error, sandbox: &Sandbox) -> Termination {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Termination::Exited(exit.0);
    }
    if let Some(limit) = e.downcast_ref::<OutputLimit>() {
        return Termination::Trap(limit.to_string());
    }
    for pipe in [&sandbox.stdout, &sandbox.stderr] {
        if pipe.overflowed() {
            return Termination::Trap(pipe.limit().to_string());
        }
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Termination::TimedOut,
        Some(trap) => Termination::Trap(trap.to_string()),
        None => {
            let (top, root) = (e.to_string(), e.root_cause().to_string());
            Termination::Trap(if top == root {
                top
            } else {
                format!("{top}: {root}")
            })
        }
    }
}
