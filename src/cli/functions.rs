//! `faas fn deploy|ls|show|rm` (and [`super::versions`]' `publish|versions|
//! version-rm|alias`), and how a function is named: by its name (letter case
//! aside, as the API compares names) or by its id.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use faas_runtime::model::{Function, Runnable};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::client::{CliError, CliResult, Client, decode, segment};
use super::output;

/// `faas fn ...`.
#[derive(Subcommand)]
pub enum FnCommand {
    /// Deploy a function from a wasm file or an OCI image.
    Deploy(DeployArgs),
    /// List your functions.
    Ls(ListArgs),
    /// Show one function.
    Show(ShowArgs),
    /// Delete a function and its objects (its executions' records stay).
    Rm(RmArgs),
    /// Publish the next version of a function (NAME is the function's name or id);
    /// it becomes `latest`.
    Publish(DeployArgs),
    /// List a function's versions and the aliases pointing at them.
    Versions(super::versions::VersionsArgs),
    /// Delete a version no alias points at.
    VersionRm(super::versions::VersionRmArgs),
    /// Point an alias at a version (rollback: point it back), or delete it with --rm.
    Alias(super::versions::AliasArgs),
}

/// `faas fn deploy`.
#[derive(Args)]
pub struct DeployArgs {
    /// The function's name (1-128 of A-Z a-z 0-9 . _ -).
    pub name: String,
    /// A wasm module or component (.wasm).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "image",
        conflicts_with = "image"
    )]
    pub wasm: Option<PathBuf>,
    /// An OCI image reference (run by the Docker engine).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Timeout of one execution, in seconds (default: the operator's, 300).
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    /// Memory limit of one execution, in MiB (default: the operator's, 512).
    #[arg(long, value_name = "MB")]
    pub memory: Option<u64>,
    /// Free text.
    #[arg(long, value_name = "D")]
    pub description: Option<String>,
    /// When to pull an image: if-not-present (default), always, never.
    #[arg(long, value_name = "POLICY", requires = "image")]
    pub pull_policy: Option<String>,
    /// Warm containers kept ready for an image, 0-8 (default: one while invoked recently).
    #[arg(long, value_name = "N", requires = "image")]
    pub warm: Option<u32>,
    /// Non-secret configuration given to the function as an env var (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Print the deployed function as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `faas fn ls`.
#[derive(Args)]
pub struct ListArgs {
    /// Print JSON (`{"functions": [...]}`).
    #[arg(long)]
    pub json: bool,
}

/// `faas fn show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The function's name or id.
    pub function: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `faas fn rm`.
#[derive(Args)]
pub struct RmArgs {
    /// The function's name or id.
    pub function: String,
}

/// Runs a `faas fn` command.
pub async fn run(command: FnCommand) -> CliResult<()> {
    let client = Client::logged_in()?;
    match command {
        FnCommand::Deploy(args) => deploy(&client, args).await,
        FnCommand::Ls(args) => list(&client, args).await,
        FnCommand::Show(args) => {
            let (_, raw) = resolve(&client, &args.function).await?;
            if args.json {
                return output::json(&raw);
            }
            show(&decode(raw)?)
        }
        FnCommand::Publish(args) => super::versions::publish(&client, args).await,
        FnCommand::Versions(args) => super::versions::versions(&client, args).await,
        FnCommand::VersionRm(args) => super::versions::version_rm(&client, args).await,
        FnCommand::Alias(args) => super::versions::alias(&client, args).await,
        FnCommand::Rm(args) => {
            let (f, _) = resolve(&client, &args.function).await?;
            client
                .delete(&format!("/api/functions/{}", segment(&f.id)))
                .await?;
            output::line(&format!("Deleted function {} ({})", f.name, f.id))
        }
    }
}

async fn deploy(client: &Client, args: DeployArgs) -> CliResult<()> {
    let req = client.request(Method::POST, "/api/functions");
    let req = match (&args.wasm, &args.image) {
        (Some(path), _) => req.multipart(wasm_form(&args, path).await?),
        (None, Some(image)) => req.json(&image_body(&args, image)),
        (None, None) => return Err(CliError::Usage("give --wasm FILE or --image REF".into())),
    };
    let spinner = output::spinner("deploying (a wasm module is validated and compiled now)");
    let raw = client.json(req).await;
    spinner.finish_and_clear();
    let raw = raw?;
    if args.json {
        return output::json(&raw);
    }
    let f: Function = decode(raw)?;
    output::line(&format!(
        "Deployed {} ({}, {}): {}",
        f.name,
        f.runnable.kind().as_str(),
        f.id,
        invoke_hint(&f)
    ))
}

/// `KEY=VALUE` of `--env`.
fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `--env` as a JSON object, if any was given.
fn env_object(args: &DeployArgs) -> Option<Value> {
    let map: serde_json::Map<String, Value> = args
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

/// The multipart form of a wasm deploy or version.
pub(super) async fn wasm_form(args: &DeployArgs, path: &std::path::Path) -> CliResult<Form> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(CliError::io(format!("read {}", path.display())))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module.wasm".into());
    let module = Part::bytes(bytes)
        .file_name(file_name)
        .mime_str("application/wasm")
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut form = Form::new()
        .text("name", args.name.clone())
        .part("module", module);
    if let Some(d) = &args.description {
        form = form.text("description", d.clone());
    }
    if let Some(t) = args.timeout {
        form = form.text("timeout_secs", t.to_string());
    }
    if let Some(m) = args.memory {
        form = form.text("memory_mb", m.to_string());
    }
    if let Some(env) = env_object(args) {
        form = form.text("env", env.to_string());
    }
    Ok(form)
}

/// The JSON body of an image deploy or version.
pub(super) fn image_body(args: &DeployArgs, image: &str) -> Value {
    let mut body = json!({"name": args.name, "image_url": image});
    let fields = [
        ("description", args.description.clone().map(Value::from)),
        ("timeout_secs", args.timeout.map(Value::from)),
        ("memory_mb", args.memory.map(Value::from)),
        ("pull_policy", args.pull_policy.clone().map(Value::from)),
        ("warm", args.warm.map(Value::from)),
        ("env", env_object(args)),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            body[k] = v;
        }
    }
    body
}

fn invoke_hint(f: &Function) -> String {
    format!("run it with `faas invoke {} --input '{{}}'`", f.name)
}

/// Every function of the caller (all pages), as the API gives them.
pub async fn all(client: &Client) -> CliResult<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/functions?limit=200&cursor={}", segment(c)),
            None => "/api/functions?limit=200".to_string(),
        };
        let mut page = client.get(&path).await?;
        if let Value::Array(items) = page["functions"].take() {
            out.extend(items);
        }
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => return Ok(out),
        }
    }
}

async fn list(client: &Client, args: ListArgs) -> CliResult<()> {
    let functions = all(client).await?;
    if args.json {
        return output::json(&json!({ "functions": functions }));
    }
    let mut rows = Vec::new();
    for raw in functions {
        let f: Function = decode(raw)?;
        rows.push(vec![
            f.name.clone(),
            f.runnable.kind().as_str().to_string(),
            f.id.clone(),
            source(&f),
            format!("{}s", f.timeout_secs),
            format!("{} MiB", f.memory_mb),
            output::when(f.created_at),
        ]);
    }
    output::table(
        &[
            "NAME", "RUNTIME", "ID", "SOURCE", "TIMEOUT", "MEMORY", "CREATED",
        ],
        rows,
    )
}

/// The image, or the module's size and hash prefix.
fn source(f: &Function) -> String {
    match &f.runnable {
        Runnable::Wasm(m) => format!("{} {}", output::bytes(m.module_size), f.runnable.source()),
        Runnable::Image(_) => f.runnable.source(),
    }
}

fn show(f: &Function) -> CliResult<()> {
    let mut rows = vec![
        ("name", f.name.clone()),
        ("id", f.id.clone()),
        ("runtime", f.runnable.kind().as_str().to_string()),
        ("source", source(f)),
        ("timeout", format!("{} s", f.timeout_secs)),
        ("memory", format!("{} MiB", f.memory_mb)),
        ("created", output::when(f.created_at)),
        ("latest version", f.versions.latest_version.to_string()),
    ];
    if !f.versions.aliases.is_empty() {
        let aliases: Vec<String> = f
            .versions
            .aliases
            .iter()
            .map(|(a, v)| format!("{a}={v}"))
            .collect();
        rows.push(("aliases", aliases.join(", ")));
    }
    if let Some(p) = f.runnable.image().and_then(|i| i.pull_policy) {
        let p = serde_json::to_value(p).unwrap_or_default();
        rows.push(("pull policy", p.as_str().unwrap_or("-").to_string()));
    }
    if let Some(n) = f.runnable.image().and_then(|i| i.warm) {
        rows.push(("warm", n.to_string()));
    }
    if !f.description.is_empty() {
        rows.push(("description", f.description.clone()));
    }
    output::fields(rows)
}

/// The caller's function named `name_or_id` (a name first, then an id), typed
/// and as the API gave it.
pub async fn resolve(client: &Client, name_or_id: &str) -> CliResult<(Function, Value)> {
    for raw in all(client).await? {
        if raw["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name_or_id))
        {
            return Ok((decode(raw.clone())?, raw));
        }
    }
    let by_id = client
        .get(&format!("/api/functions/{}", segment(name_or_id)))
        .await;
    match by_id {
        Ok(raw) => Ok((decode(raw.clone())?, raw)),
        Err(e) if e.is_status(404) => Err(CliError::NotFound(format!(
            "no function named {name_or_id:?} (see `faas fn ls`)"
        ))),
        Err(e) => Err(e),
    }
}
