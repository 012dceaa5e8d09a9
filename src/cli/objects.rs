//! `faas obj put|get|ls|rm`: a function's objects, streamed both ways (never
//! held in memory), with a progress bar on a terminal and none when piped.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use faas_runtime::model::ObjectMeta;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use tokio::io::AsyncWriteExt;

use super::client::{CliError, CliResult, Client, decode, segment};
use super::{functions, output};

/// `faas obj ...`.
#[derive(Subcommand)]
pub enum ObjCommand {
    /// Upload a file as an object of a function (replacing one of that name).
    Put(PutArgs),
    /// Download an object.
    Get(GetArgs),
    /// List a function's objects.
    Ls(ListArgs),
    /// Delete an object.
    Rm(RmArgs),
}

/// `faas obj put`.
#[derive(Args)]
pub struct PutArgs {
    /// The function (name or id).
    pub function: String,
    /// The file to upload.
    pub file: PathBuf,
    /// The object's name (default: the file's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Its Content-Type (default: from the file's extension, else application/octet-stream).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Print the stored object's metadata as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `faas obj get`.
#[derive(Args)]
pub struct GetArgs {
    /// The function (name or id).
    pub function: String,
    /// The object's name.
    pub name: String,
    /// Where to write it (default: a file of the object's name here; `-`: stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `faas obj ls`.
#[derive(Args)]
pub struct ListArgs {
    /// The function (name or id).
    pub function: String,
    /// Print JSON (`{"objects": [...]}`).
    #[arg(long)]
    pub json: bool,
}

/// `faas obj rm`.
#[derive(Args)]
pub struct RmArgs {
    /// The function (name or id).
    pub function: String,
    /// The object's name.
    pub name: String,
}

/// Runs a `faas obj` command.
pub async fn run(command: ObjCommand) -> CliResult<()> {
    let client = Client::logged_in()?;
    match command {
        ObjCommand::Put(args) => put(&client, args).await,
        ObjCommand::Get(args) => get(&client, args).await,
        ObjCommand::Ls(args) => {
            let (f, _) = functions::resolve(&client, &args.function).await?;
            let page = client
                .get(&format!("/api/function-objects/{}", segment(&f.id)))
                .await?;
            if args.json {
                return output::json(&page);
            }
            let objects: Vec<ObjectMeta> = decode(page["objects"].clone())?;
            let rows = objects
                .into_iter()
                .map(|o| {
                    vec![
                        o.name,
                        output::bytes(o.size),
                        o.content_type,
                        o.sha256[..o.sha256.len().min(12)].to_string(),
                        output::when(o.created_at),
                    ]
                })
                .collect();
            output::table(&["NAME", "SIZE", "CONTENT-TYPE", "SHA256", "CREATED"], rows)
        }
        ObjCommand::Rm(args) => {
            let (f, _) = functions::resolve(&client, &args.function).await?;
            client.delete(&object_path(&f.id, &args.name)).await?;
            output::line(&format!("Deleted object {} of {}", args.name, f.name))
        }
    }
}

fn object_path(function_id: &str, name: &str) -> String {
    format!(
        "/api/function-objects/{}/{}",
        segment(function_id),
        segment(name)
    )
}

async fn put(client: &Client, args: PutArgs) -> CliResult<()> {
    let (f, _) = functions::resolve(client, &args.function).await?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CliError::Usage("give the object a --name".into()))?,
    };
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(CliError::io(format!("open {}", args.file.display())))?;
    let size = file
        .metadata()
        .await
        .map_err(CliError::io(format!("read {}", args.file.display())))?
        .len();
    let content_type = args
        .content_type
        .clone()
        .unwrap_or_else(|| guess_type(&args.file).to_string());
    let bar = output::progress(Some(size), &format!("uploading {name}"));
    let counter = bar.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
        .inspect_ok(move |chunk| counter.inc(chunk.len() as u64));
    let req = client
        .request(Method::POST, &object_path(&f.id, &name))
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(stream));
    let answer = client.json(req).await;
    bar.finish_and_clear();
    let raw = answer?;
    if args.json {
        return output::json(&raw);
    }
    let meta: ObjectMeta = decode(raw)?;
    output::line(&format!(
        "Uploaded {} to {} ({}, sha256 {}); a function reads it at /objects/{}/{}",
        meta.name,
        f.name,
        output::bytes(meta.size),
        meta.sha256,
        f.id,
        meta.name
    ))
}

async fn get(client: &Client, args: GetArgs) -> CliResult<()> {
    let (f, _) = functions::resolve(client, &args.function).await?;
    let res = client
        .send(client.request(Method::GET, &object_path(&f.id, &args.name)))
        .await?;
    let total = res.content_length();
    let dest = args.output.unwrap_or_else(|| PathBuf::from(&args.name));
    let to_stdout = dest.as_os_str() == "-";
    let bar = output::progress(total, &format!("downloading {}", args.name));
    let mut body = res.bytes_stream();
    let result = if to_stdout {
        let mut out = tokio::io::stdout();
        copy(&mut body, &mut out, &bar, "stdout").await
    } else {
        save(&mut body, &dest, &bar).await
    };
    bar.finish_and_clear();
    let written = result?;
    if let Some(n) = total.filter(|n| *n != written) {
        return Err(CliError::Transport(format!(
            "the download ended after {written} of {n} bytes"
        )));
    }
    if !to_stdout {
        output::note(&format!(
            "Saved {} ({}) to {}",
            args.name,
            output::bytes(written),
            dest.display()
        ));
    }
    Ok(())
}

/// Writes the body to a temporary file beside `dest`, renamed over it once whole.
async fn save(
    body: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    dest: &Path,
    bar: &indicatif::ProgressBar,
) -> CliResult<u64> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "object".into());
    let tmp = dir.join(format!(".{file_name}.faas-{}.part", std::process::id()));
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(CliError::io(format!("create {}", tmp.display())))?;
    let written = copy(body, &mut file, bar, &tmp.display().to_string()).await;
    let finished = match written {
        Ok(n) => file
            .sync_all()
            .await
            .and(tokio::fs::rename(&tmp, dest).await)
            .map(|()| n)
            .map_err(CliError::io(format!("write {}", dest.display()))),
        Err(e) => Err(e),
    };
    if finished.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    finished
}

async fn copy(
    body: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    bar: &indicatif::ProgressBar,
    what: &str,
) -> CliResult<u64> {
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Transport(format!("the download broke: {e}")))?;
        out.write_all(&chunk)
            .await
            .map_err(CliError::io(format!("write {what}")))?;
        written += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
    }
    out.flush()
        .await
        .map_err(CliError::io(format!("write {what}")))?;
    Ok(written)
}

/// A Content-Type from a file's extension.
fn guess_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => "application/json",
        "txt" | "md" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "wasm" => "application/wasm",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}
