//! `faas fn publish|versions|version-rm|alias`: versions and aliases of a function
//! (`docs/lifecycle.md`).

use clap::Args;
use faas_runtime::model::FunctionVersion;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{CliError, CliResult, Client, decode, segment};
use super::functions::{DeployArgs, image_body, resolve, wasm_form};
use super::output;

/// `faas fn versions`.
#[derive(Args)]
pub struct VersionsArgs {
    /// The function's name or id.
    pub function: String,
    /// Print JSON (`{"versions": [...], "latest_version": N}`).
    #[arg(long)]
    pub json: bool,
}

/// `faas fn version-rm`.
#[derive(Args)]
pub struct VersionRmArgs {
    /// The function's name or id.
    pub function: String,
    /// The version number.
    pub version: u64,
}

/// `faas fn alias`.
#[derive(Args)]
pub struct AliasArgs {
    /// The function's name or id.
    pub function: String,
    /// The alias (not `latest`).
    pub alias: String,
    /// The version to point it at (rollback: an older one).
    #[arg(required_unless_present = "rm", conflicts_with = "rm")]
    pub version: Option<u64>,
    /// Delete the alias instead.
    #[arg(long)]
    pub rm: bool,
}

/// `faas fn publish NAME --wasm FILE | --image REF`: the next version of a
/// function (it becomes `latest`).
pub async fn publish(client: &Client, args: DeployArgs) -> CliResult<()> {
    let (f, _) = resolve(client, &args.name).await?;
    let path = format!("/api/functions/{}/versions", segment(&f.id));
    let req = client.request(Method::POST, &path);
    let req = match (&args.wasm, &args.image) {
        (Some(file), _) => req.multipart(wasm_form(&args, file).await?),
        (None, Some(image)) => req.json(&image_body(&args, image)),
        (None, None) => return Err(CliError::Usage("give --wasm FILE or --image REF".into())),
    };
    let spinner = output::spinner("publishing (a wasm module is validated and compiled now)");
    let raw = client.json(req).await;
    spinner.finish_and_clear();
    let raw = raw?;
    if args.json {
        return output::json(&raw);
    }
    let v: FunctionVersion = decode(raw)?;
    output::line(&format!(
        "Published version {} of {} ({}); it is latest",
        v.version,
        f.name,
        v.runnable.kind().as_str()
    ))
}

/// Lists a function's versions.
pub async fn versions(client: &Client, args: VersionsArgs) -> CliResult<()> {
    let (f, _) = resolve(client, &args.function).await?;
    let items = all_versions(client, &f.id).await?;
    if args.json {
        let latest = f.versions.latest_version;
        return output::json(&json!({ "versions": items, "latest_version": latest }));
    }
    let mut rows = Vec::new();
    for item in items {
        let aliases: Vec<String> = decode(item["aliases"].clone())?;
        let v: FunctionVersion = decode(item)?;
        let source = v.runnable.source();
        rows.push(vec![
            v.version.to_string(),
            v.runnable.kind().as_str().to_string(),
            source,
            aliases.join(","),
            v.env.keys().cloned().collect::<Vec<_>>().join(","),
            output::when(v.created_at),
        ]);
    }
    output::table(
        &["VERSION", "RUNTIME", "SOURCE", "ALIASES", "ENV", "CREATED"],
        rows,
    )
}

/// Every version of the function `id` (all pages), as the API gives them.
async fn all_versions(client: &Client, id: &str) -> CliResult<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/functions/{}/versions?limit=200", segment(id));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", segment(c)));
        }
        let mut page = client.get(&path).await?;
        if let Value::Array(items) = page["versions"].take() {
            out.extend(items);
        }
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => return Ok(out),
        }
    }
}

/// Deletes a version no alias points at.
pub async fn version_rm(client: &Client, args: VersionRmArgs) -> CliResult<()> {
    let (f, _) = resolve(client, &args.function).await?;
    let path = format!(
        "/api/functions/{}/versions/{}",
        segment(&f.id),
        args.version
    );
    client.delete(&path).await?;
    output::line(&format!("Deleted version {} of {}", args.version, f.name))
}

/// Points an alias at a version, or deletes it.
pub async fn alias(client: &Client, args: AliasArgs) -> CliResult<()> {
    let (f, _) = resolve(client, &args.function).await?;
    let path = format!(
        "/api/functions/{}/aliases/{}",
        segment(&f.id),
        segment(&args.alias)
    );
    let Some(version) = args.version.filter(|_| !args.rm) else {
        client.delete(&path).await?;
        return output::line(&format!("Deleted alias {} of {}", args.alias, f.name));
    };
    let req = client
        .request(Method::PUT, &path)
        .json(&json!({ "version": version }));
    let got: Value = client.json(req).await?;
    output::line(&format!(
        "Alias {} of {} points at version {}",
        args.alias, f.name, got["version"]
    ))
}
