//! `faas secret set|ls|rm`: the value comes from stdin or a hidden prompt, never
//! from argv (where `ps` and shell history would show it).

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{CliError, CliResult, Client, segment};
use super::output;

/// `faas secret ...`.
#[derive(Subcommand)]
pub enum SecretCommand {
    /// Create a secret or replace its value: read from stdin, or prompted for on a terminal.
    Set(SetArgs),
    /// List your secrets (names only; values are never shown).
    Ls(ListArgs),
    /// Delete a secret.
    Rm(RmArgs),
}

/// `faas secret set`.
#[derive(Args)]
pub struct SetArgs {
    /// The secret's name; a function given it sees the env var NAME upper-cased.
    pub name: String,
}

/// `faas secret ls`.
#[derive(Args)]
pub struct ListArgs {
    /// Print JSON (`{"secrets": [...]}`).
    #[arg(long)]
    pub json: bool,
}

/// `faas secret rm`.
#[derive(Args)]
pub struct RmArgs {
    /// The secret's name.
    pub name: String,
}

/// Runs a `faas secret` command.
pub async fn run(command: SecretCommand) -> CliResult<()> {
    let client = Client::logged_in()?;
    match command {
        SecretCommand::Set(args) => set(&client, &args.name).await,
        SecretCommand::Ls(args) => {
            let page = client.get("/api/secrets").await?;
            if args.json {
                return output::json(&page);
            }
            let text = |s: &Value, k: &str| s[k].as_str().unwrap_or("-").to_string();
            let rows = page["secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    vec![
                        text(s, "name"),
                        text(s, "env_var"),
                        short_time(&text(s, "created_at")),
                        short_time(&text(s, "updated_at")),
                    ]
                })
                .collect();
            output::table(&["NAME", "ENV VAR", "CREATED", "UPDATED"], rows)
        }
        SecretCommand::Rm(args) => {
            let id = find(&client, &args.name)
                .await?
                .ok_or_else(|| CliError::NotFound(format!("no secret named {:?}", args.name)))?;
            client
                .delete(&format!("/api/secrets/{}", segment(&id)))
                .await?;
            output::line(&format!("Deleted secret {}", args.name))
        }
    }
}

/// `2026-11-30 07:45:13` of an RFC 3339 time text.
fn short_time(t: &str) -> String {
    t.get(..19).unwrap_or(t).replacen('T', " ", 1)
}

/// The id of the caller's secret `name`.
async fn find(client: &Client, name: &str) -> CliResult<Option<String>> {
    let page = client.get("/api/secrets").await?;
    Ok(page["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"].as_str() == Some(name))
        .and_then(|s| s["id"].as_str().map(str::to_string)))
}

async fn set(client: &Client, name: &str) -> CliResult<()> {
    let value = if output::stdin_is_terminal() {
        dialoguer::Password::new()
            .with_prompt(format!("Value of {name}"))
            .with_confirmation("Again", "the two values differ")
            .interact()
            .map_err(super::auth::prompt_error)?
    } else {
        output::read_stdin_line()?
    };
    if value.is_empty() {
        return Err(CliError::Usage(format!("the value of {name} is empty")));
    }
    let (verb, answer) = match find(client, name).await? {
        Some(id) => {
            let req = client
                .request(Method::PUT, &format!("/api/secrets/{}", segment(&id)))
                .json(&json!({ "value": value }));
            ("Updated", client.json(req).await?)
        }
        None => {
            let body = json!({ "name": name, "value": value });
            ("Created", client.post("/api/secrets", &body).await?)
        }
    };
    output::line(&format!(
        "{verb} secret {name}; a function given it (`faas invoke FN --secret {name}`) reads the env var {}",
        answer["env_var"].as_str().unwrap_or("-")
    ))
}
