//! `faas invoke`: builds the input from `--input`, `--secret` and `--object`,
//! runs the function with `POST /api/functions/{id}/invoke?wait=`, long-polls
//! `GET /api/executions/{id}?wait=` past that, and prints the result. The exit
//! status tells how the execution ended ([`super::exit`]).

use std::time::{Duration, Instant};

use clap::Args;
use faas_runtime::model::{Execution, ExecutionStatus};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{CliError, CliResult, Client, decode, segment};
use super::{exit, functions, output};

/// Seconds of one long poll (below common proxy timeouts and the API's cap).
const POLL_SECS: u64 = 20;

/// `faas invoke`.
#[derive(Args)]
pub struct InvokeArgs {
    /// The function's name or id.
    pub function: String,
    /// The input: JSON text, `@FILE` (JSON read from FILE), or `-` (JSON read from
    /// stdin); default `{}`.
    #[arg(long, short, value_name = "JSON|@FILE|-")]
    pub input: Option<String>,
    /// Give the function this secret of yours (as the env var NAME upper-cased);
    /// repeatable.
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// Give the function an object, readable at /objects/<function id>/OBJECT:
    /// KEY=FUNCTION/OBJECT (FUNCTION by name or id); repeatable.
    #[arg(long = "object", value_name = "KEY=FUNCTION/OBJECT")]
    pub objects: Vec<String>,
    /// Queue the execution and print its id without waiting.
    #[arg(long = "async", conflicts_with = "wait")]
    pub no_wait: bool,
    /// Wait at most S seconds for the outcome (default: until it ends).
    #[arg(long, value_name = "S")]
    pub wait: Option<u64>,
    /// Print the whole execution record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `faas invoke`.
pub async fn run(args: InvokeArgs) -> CliResult<()> {
    let client = Client::logged_in()?;
    let (function, _) = functions::resolve(&client, &args.function).await?;
    let input = build_input(&client, &args).await?;
    let first_wait = if args.no_wait {
        0
    } else {
        args.wait.unwrap_or(POLL_SECS).min(POLL_SECS)
    };
    let path = format!(
        "/api/functions/{}/invoke?wait={first_wait}",
        segment(&function.id)
    );
    let spinner = output::spinner(&format!("running {}", function.name));
    let deadline = args.wait.map(|s| Instant::now() + Duration::from_secs(s));
    let answer = async {
        let req = client
            .request(Method::POST, &path)
            .json(&json!({ "input": input }));
        let raw = client.json(req).await?;
        if args.no_wait {
            return Ok(raw);
        }
        wait_for(&client, raw, deadline).await
    }
    .await;
    spinner.finish_and_clear();
    let raw = answer?;
    if !args.no_wait {
        return report(raw, args.json);
    }
    if args.json {
        return output::json(&raw);
    }
    let exec: Execution = decode(raw)?;
    output::note(&format!(
        "Queued; see `faas exec show {0}` or `faas exec logs {0} --follow`",
        exec.id
    ));
    output::line(&exec.id)
}

/// The input of `--input`, with the `--secret` and `--object` flags added.
async fn build_input(client: &Client, args: &InvokeArgs) -> CliResult<Value> {
    let mut input = read_input(args.input.as_deref())?;
    add_secrets(&mut input, &args.secrets)?;
    for spec in &args.objects {
        let (key, function, object) = parse_object(spec)?;
        let (owner, _) = functions::resolve(client, function).await?;
        object_inputs(&mut input)?.insert(key.into(), json!(format!("{}/{object}", owner.id)));
    }
    Ok(input)
}

/// Long-polls the record `raw` until it is final or `deadline` passes.
async fn wait_for(client: &Client, mut raw: Value, deadline: Option<Instant>) -> CliResult<Value> {
    loop {
        let exec: Execution = decode(raw.clone())?;
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()).as_secs());
        if exec.status.is_final() || left == Some(0) {
            return Ok(raw);
        }
        let wait = left.unwrap_or(POLL_SECS).min(POLL_SECS);
        raw = client
            .get(&format!(
                "/api/executions/{}?wait={wait}",
                segment(&exec.id)
            ))
            .await?;
    }
}

/// Prints the outcome: the result (pretty JSON, or the raw output when it is not
/// JSON) when it completed, else an error with the exit status of its status.
pub fn report(raw: Value, as_json: bool) -> CliResult<()> {
    let exec: Execution = decode(raw.clone())?;
    if as_json {
        output::json(&raw)?;
    } else if exec.status == ExecutionStatus::Completed {
        match &exec.result {
            Some(result) => output::json(result)?,
            None => output::out(&with_newline(exec.output.as_deref().unwrap_or("")))?,
        }
    }
    let code = match exec.status {
        ExecutionStatus::Completed => return Ok(()),
        ExecutionStatus::Failed => exit::FAILED,
        ExecutionStatus::TimedOut => exit::TIMED_OUT,
        ExecutionStatus::Cancelled => exit::CANCELLED,
        ExecutionStatus::Pending | ExecutionStatus::Running => exit::NOT_FINAL,
    };
    let message = if exec.status.is_final() {
        format!(
            "execution {} {}: {} (logs: `faas exec logs {0}`)",
            exec.id,
            exec.status.as_str(),
            exec.error.as_deref().unwrap_or("no error message")
        )
    } else {
        format!(
            "execution {} is still {} (see `faas exec show {0}`)",
            exec.id,
            exec.status.as_str()
        )
    };
    Err(CliError::Execution { code, message })
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// The input JSON object of `--input` (text, `@FILE` or `-`); `{}` without one.
pub fn read_input(arg: Option<&str>) -> CliResult<Value> {
    let (text, from) = match arg {
        None => return Ok(json!({})),
        Some("-") => (output::read_stdin_all()?, "stdin".to_string()),
        Some(a) => match a.strip_prefix('@') {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(CliError::io(format!("read {path}")))?;
                (text, path.to_string())
            }
            None => (a.to_string(), "--input".to_string()),
        },
    };
    let value: Value = if text.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("the input ({from}) is not JSON: {e}")))?
    };
    if !value.is_object() {
        return Err(CliError::Usage(format!(
            "the input ({from}) must be a JSON object, e.g. '{{\"direct_inputs\":{{\"name\":\"Ada\"}}}}'"
        )));
    }
    Ok(value)
}

/// Adds `names` to the input's `secrets` list (once each).
fn add_secrets(input: &mut Value, names: &[String]) -> CliResult<()> {
    if names.is_empty() {
        return Ok(());
    }
    let list = input
        .as_object_mut()
        .map(|m| m.entry("secrets").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
        .ok_or_else(|| CliError::Usage("the input's \"secrets\" is not a list".into()))?;
    for name in names {
        if !list.iter().any(|v| v.as_str() == Some(name)) {
            list.push(json!(name));
        }
    }
    Ok(())
}

/// The input's `object_inputs` map (made when absent).
fn object_inputs(input: &mut Value) -> CliResult<&mut Map<String, Value>> {
    input
        .as_object_mut()
        .map(|m| m.entry("object_inputs").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| CliError::Usage("the input's \"object_inputs\" is not an object".into()))
}

/// `KEY=FUNCTION/OBJECT` as its three parts.
fn parse_object(spec: &str) -> CliResult<(&str, &str, &str)> {
    let bad = || CliError::Usage(format!("--object {spec:?}: expected KEY=FUNCTION/OBJECT"));
    let (key, target) = spec.split_once('=').ok_or_else(bad)?;
    let (function, object) = target.split_once('/').ok_or_else(bad)?;
    if key.is_empty() || function.is_empty() || object.is_empty() {
        return Err(bad());
    }
    Ok((key, function, object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_flag_names_a_key_a_function_and_an_object() {
        assert_eq!(
            parse_object("doc=summarize/readme.md").unwrap(),
            ("doc", "summarize", "readme.md")
        );
        assert!(parse_object("doc=summarize").is_err());
        assert!(parse_object("summarize/readme.md").is_err());
        assert!(parse_object("=f/o").is_err());
    }

    #[test]
    fn secrets_join_the_input_once_each() {
        let mut input = json!({"secrets": ["a"]});
        add_secrets(&mut input, &["a".into(), "b".into()]).unwrap();
        assert_eq!(input, json!({"secrets": ["a", "b"]}));
        let mut bad = json!({"secrets": "a"});
        assert!(add_secrets(&mut bad, &["b".into()]).is_err());
    }

    #[test]
    fn the_input_is_a_json_object() {
        assert_eq!(read_input(None).unwrap(), json!({}));
        assert_eq!(read_input(Some("{\"a\":1}")).unwrap(), json!({"a": 1}));
        assert!(read_input(Some("[1]")).is_err());
        assert!(read_input(Some("{nope")).is_err());
    }
}
