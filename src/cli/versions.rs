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
        v.runtime.as_str()
    ))
}

/// Lists a function's versions.
pub async fn versions(client: &Client, args: VersionsArgs) -> CliResult<()> {
    let (f, _) = resolve(client, &args.function).await?;
    let raw = client
        .get(&format!("/api/functions/{}/versions", segment(&f.id)))
        .await?;
    if args.json {
        return output::json(&raw);
    }
    let mut rows = Vec::new();
    for item in raw["versions"].as_array().cloned().unwrap_or_default() {
        let aliases: Vec<String> = decode(item["aliases"].clone())?;
        let v: FunctionVersion = decode(item)?;
        let source = match (&v.image_url, &v.module_sha256) {
            (Some(image), _) => image.clone(),
            (None, Some(sha)) => format!("sha256:{}", &sha[..sha.len().min(12)]),
            _ => "-".into(),
        };
        rows.push(vec![
            v.version.to_string(),
            v.runtime.as_str().to_string(),
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
