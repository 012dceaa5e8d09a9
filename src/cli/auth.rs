//! `faas login`, `faas logout`, `faas whoami`.

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{CliError, CliResult, Client};
use super::output;
use super::session::{self, Saved, Target};

/// `faas login`.
#[derive(Args)]
pub struct LoginArgs {
    /// The API's URL (default: FAAS_URL, else the saved one, else http://127.0.0.1:8080).
    #[arg(long)]
    pub url: Option<String>,
    /// Your username (prompted for on a terminal when absent).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the password from stdin (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `faas logout`.
#[derive(Args)]
pub struct LogoutArgs {
    /// First end every token of the account, on every machine (`POST /auth/logout-all`).
    #[arg(long)]
    pub all: bool,
}

/// `faas whoami`.
#[derive(Args)]
pub struct WhoamiArgs {
    /// Print the account as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Logs in and saves the URL and token.
pub async fn login(args: LoginArgs) -> CliResult<()> {
    let target = session::target(args.url)?;
    let username = match args.username {
        Some(u) => u,
        None if output::stdin_is_terminal() => dialoguer::Input::<String>::new()
            .with_prompt("Username")
            .interact_text()
            .map_err(prompt_error)?,
        None => return Err(CliError::Usage("--username is required".into())),
    };
    let password = if args.password_stdin {
        output::read_stdin_line()?
    } else if output::stdin_is_terminal() {
        dialoguer::Password::new()
            .with_prompt(format!("Password for {username}"))
            .interact()
            .map_err(prompt_error)?
    } else {
        return Err(CliError::Usage(
            "stdin is not a terminal to prompt for the password: pass it with --password-stdin"
                .into(),
        ));
    };
    let anonymous = Client::new(&Target {
        url: target.url.clone(),
        token: None,
    })?;
    let body = json!({"username": username, "password": password});
    let answer = anonymous
        .json(anonymous.request(Method::POST, "/auth/login").json(&body))
        .await?;
    let token = answer["token"]
        .as_str()
        .ok_or_else(|| CliError::Transport("the login answer has no token".into()))?;
    let expires_at = answer["expires_at"].as_str().map(str::to_string);
    let path = session::save(&Saved {
        url: Some(target.url.clone()),
        token: Some(token.to_string()),
        username: Some(username.clone()),
        expires_at: expires_at.clone(),
    })?;
    output::line(&format!(
        "Logged in to {} as {username} (the token ends {}; saved in {})",
        target.url,
        expires_at.as_deref().unwrap_or("-"),
        path.display()
    ))
}

/// Forgets the saved token (and with `--all` ends every token of the account).
pub async fn logout(args: LogoutArgs) -> CliResult<()> {
    if args.all {
        let client = Client::logged_in()?;
        client
            .send(client.request(Method::POST, "/auth/logout-all"))
            .await?;
        output::note("Every token of the account has ended.");
    }
    let saved = session::load()?;
    if session::remove()? {
        output::line(&format!(
            "Logged out of {}",
            saved.url.as_deref().unwrap_or(session::DEFAULT_URL)
        ))
    } else {
        output::line("Not logged in.")
    }
}

/// Shows the caller's account.
pub async fn whoami(args: WhoamiArgs) -> CliResult<()> {
    let client = Client::logged_in()?;
    let me = client.get("/api/me").await?;
    if args.json {
        return output::json(&me);
    }
    let text = |k: &str| me[k].as_str().unwrap_or("-").to_string();
    output::fields(vec![
        ("username", text("username")),
        ("role", text("role")),
        ("id", text("id")),
        ("url", client.base().to_string()),
        ("quotas", quota_summary(&me["quotas"])),
    ])
}

/// `functions 2/100, secrets 1/100, ...` of `GET /api/me`'s quotas (0: no limit).
fn quota_summary(q: &Value) -> String {
    let pairs = [
        ("functions", "functions", "max_functions"),
        ("secrets", "secrets", "max_secrets"),
        (
            "active executions",
            "active_executions",
            "max_active_executions",
        ),
        ("object bytes", "object_bytes", "max_object_bytes"),
    ];
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(label, used, limit)| {
            let used = q["usage"][used].as_u64()?;
            let limit = match q["limits"][limit].as_u64() {
                None | Some(0) => "unlimited".to_string(),
                Some(n) => n.to_string(),
            };
            Some(format!("{label} {used}/{limit}"))
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// A prompt that could not be shown or was interrupted.
pub fn prompt_error(e: dialoguer::Error) -> CliError {
    match e {
        dialoguer::Error::IO(source) => CliError::Io {
            context: "prompt".into(),
            source,
        },
    }
}
