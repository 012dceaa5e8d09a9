//! `faas exec ls|show|logs|cancel`. `logs --follow` reads the execution's event
//! stream (`GET /api/executions/{id}/events`, Server-Sent Events) until it is final.

use std::collections::HashMap;

use clap::{Args, Subcommand};
use faas_runtime::model::{Execution, ExecutionStatus, ExecutionSummary};
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::client::{CliError, CliResult, Client, decode, segment};
use super::{functions, output};

/// `faas exec ...`.
#[derive(Subcommand)]
pub enum ExecCommand {
    /// List your executions, newest first.
    Ls(ListArgs),
    /// Show one execution: its state, then its result or output.
    Show(ShowArgs),
    /// Print an execution's logs (its stderr).
    Logs(LogsArgs),
    /// Cancel a pending or running execution.
    Cancel(IdArgs),
    /// Run a final execution again (same input, secrets and function version).
    Retry(IdArgs),
}

/// `faas exec ls`.
#[derive(Args)]
pub struct ListArgs {
    /// Only this function's executions (name or id).
    #[arg(long = "fn", value_name = "NAME")]
    pub function: Option<String>,
    /// Only this status: pending, running, completed, failed, timed_out, cancelled.
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// At most this many (1-200).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print JSON (`{"executions": [...]}`).
    #[arg(long)]
    pub json: bool,
}

/// `faas exec show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The execution's id.
    pub id: String,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `faas exec logs`.
#[derive(Args)]
pub struct LogsArgs {
    /// The execution's id.
    pub id: String,
    /// Wait for the execution to end, then print its logs (state changes on stderr).
    #[arg(long, short)]
    pub follow: bool,
}

/// An execution named by id.
#[derive(Args)]
pub struct IdArgs {
    /// The execution's id.
    pub id: String,
}

/// Runs a `faas exec` command.
pub async fn run(command: ExecCommand) -> CliResult<()> {
    let client = Client::logged_in()?;
    match command {
        ExecCommand::Ls(args) => list(&client, args).await,
        ExecCommand::Show(args) => {
            let raw = get(&client, &args.id).await?;
            if args.json {
                return output::json(&raw);
            }
            show(&client, &decode(raw)?).await
        }
        ExecCommand::Logs(args) => {
            let exec = if args.follow {
                follow(&client, &args.id).await?
            } else {
                decode(get(&client, &args.id).await?)?
            };
            output::out(exec.logs.as_deref().unwrap_or(""))
        }
        ExecCommand::Retry(args) => {
            let path = format!("/api/executions/{}/retry", segment(&args.id));
            let exec: Execution = decode(client.post(&path, &Value::Null).await?)?;
            output::line(&format!(
                "Execution {} retries {} (version {})",
                exec.id,
                args.id,
                output::or_dash(exec.function_version)
            ))
        }
        ExecCommand::Cancel(args) => {
            let path = format!("/api/executions/{}/cancel", segment(&args.id));
            let exec: Execution = decode(client.post(&path, &Value::Null).await?)?;
            output::line(&format!(
                "Execution {} is {}",
                exec.id,
                exec.status.as_str()
            ))
        }
    }
}

async fn get(client: &Client, id: &str) -> CliResult<Value> {
    client
        .get(&format!("/api/executions/{}", segment(id)))
        .await
}

/// Function ids to names (deleted functions are missing).
async fn names(client: &Client) -> CliResult<HashMap<String, String>> {
    Ok(functions::all(client)
        .await?
        .into_iter()
        .filter_map(|f| {
            Some((
                f["id"].as_str()?.to_string(),
                f["name"].as_str()?.to_string(),
            ))
        })
        .collect())
}

async fn list(client: &Client, args: ListArgs) -> CliResult<()> {
    let mut query = vec![format!("limit={}", args.limit)];
    if let Some(f) = &args.function {
        let (f, _) = functions::resolve(client, f).await?;
        query.push(format!("function_id={}", segment(&f.id)));
    }
    if let Some(s) = &args.status {
        query.push(format!("status={}", segment(s)));
    }
    let page = client
        .get(&format!("/api/executions?{}", query.join("&")))
        .await?;
    if args.json {
        return output::json(&page);
    }
    let items: Vec<ExecutionSummary> = decode(page["executions"].clone())?;
    let names = names(client).await?;
    let rows = items
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                names
                    .get(&e.function_id)
                    .cloned()
                    .unwrap_or_else(|| e.function_id.clone()),
                e.status.as_str().to_string(),
                output::when(e.created_at),
                e.duration_ms
                    .map(|d| format!("{d} ms"))
                    .unwrap_or_else(|| "-".into()),
                output::or_dash(e.exit_code),
                e.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "FUNCTION", "STATUS", "CREATED", "DURATION", "EXIT", "ERROR",
        ],
        rows,
    )
}

async fn show(client: &Client, e: &Execution) -> CliResult<()> {
    let function = names(client)
        .await?
        .remove(&e.function_id)
        .map(|n| format!("{n} ({})", e.function_id))
        .unwrap_or_else(|| e.function_id.clone());
    let mut rows = vec![
        ("id", e.id.clone()),
        ("function", function),
        ("status", e.status.as_str().to_string()),
        ("attempt", e.attempt.to_string()),
        ("created", output::when(e.created_at)),
        ("started", output::when_opt(e.started_at)),
        ("completed", output::when_opt(e.completed_at)),
        (
            "duration",
            e.duration_ms
                .map(|d| format!("{d} ms"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("exit code", output::or_dash(e.exit_code)),
        ("input", e.input.clone()),
        (
            "logs",
            output::bytes(e.logs.as_deref().map_or(0, |l| l.len() as u64)),
        ),
    ];
    if let Some(err) = &e.error {
        rows.push(("error", err.clone()));
    }
    output::fields(rows)?;
    match (&e.result, &e.output) {
        (Some(result), _) => {
            output::line("result:")?;
            output::json(result)
        }
        (None, Some(out)) if !out.is_empty() => {
            output::line("output:")?;
            output::out(out)
        }
        _ => Ok(()),
    }
}

/// The execution once final, following its event stream (state changes noted on
/// stderr); a broken stream falls back to long polls.
async fn follow(client: &Client, id: &str) -> CliResult<Execution> {
    let path = format!("/api/executions/{}/events", segment(id));
    let res = client
        .send(
            client
                .request(Method::GET, &path)
                .header("Accept", "text/event-stream"),
        )
        .await?;
    let mut body = res.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut last: Option<ExecutionStatus> = None;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        buf.extend_from_slice(&chunk);
        while let Some(event) = next_event(&mut buf) {
            let Some(data) = event_data(&event) else {
                continue;
            };
            let exec: Execution = decode(
                serde_json::from_str(&data)
                    .map_err(|e| CliError::Transport(format!("a bad event: {e}")))?,
            )?;
            if last != Some(exec.status) {
                output::note(&format!(
                    "execution {} is {}",
                    exec.id,
                    exec.status.as_str()
                ));
                last = Some(exec.status);
            }
            if exec.status.is_final() {
                return Ok(exec);
            }
        }
    }
    loop {
        let exec: Execution = decode(
            client
                .get(&format!("/api/executions/{}?wait=20", segment(id)))
                .await?,
        )?;
        if exec.status.is_final() {
            return Ok(exec);
        }
    }
}

/// Takes one complete event (up to a blank line) off the front of `buf`.
fn next_event(buf: &mut Vec<u8>) -> Option<String> {
    let find = |pat: &[u8]| {
        buf.windows(pat.len())
            .position(|w| w == pat)
            .map(|i| (i, pat.len()))
    };
    let (end, sep) = match (find(b"\n\n"), find(b"\r\n\r\n")) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let event = String::from_utf8_lossy(&buf[..end]).replace('\r', "");
    buf.drain(..end + sep);
    Some(event)
}

/// The data of an `execution` event (`None` for comments and other events).
fn event_data(event: &str) -> Option<String> {
    let mut name = "message";
    let mut data: Vec<&str> = Vec::new();
    for line in event.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    (name == "execution" && !data.is_empty()).then(|| data.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stream_is_split_into_execution_events() {
        let mut buf = b": keep-alive\n\nevent: execution\ndata: {\"a\":1}\n\nevent: exec".to_vec();
        let first = next_event(&mut buf).unwrap();
        assert_eq!(event_data(&first), None);
        let second = next_event(&mut buf).unwrap();
        assert_eq!(event_data(&second).as_deref(), Some("{\"a\":1}"));
        assert!(next_event(&mut buf).is_none());
        assert_eq!(buf, b"event: exec");
    }
}
