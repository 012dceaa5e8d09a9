//! The client commands of `faas`: a command line for people over the public REST API
//! (no private path into the platform). One module per command group:
//!
//! - [`session`]: the saved URL and token (user's config dir, mode 0600) and the
//!   FAAS_URL / FAAS_TOKEN overrides;
//! - [`client`]: the HTTP client and [`CliError`], the API's errors as messages;
//! - [`output`]: tables on a terminal, JSON with `--json`, broken pipes as success;
//! - [`auth`]: `login`, `logout`, `whoami`;
//! - [`functions`]: `fn deploy|ls|show|rm`, a function named by its name or id;
//! - [`versions`]: `fn publish|versions|version-rm|alias`, versions and aliases;
//! - [`invoke`]: `invoke`, the input built from flags, waiting for the outcome;
//! - [`executions`]: `exec ls|show|logs|cancel|retry` (logs `--follow` the event stream);
//! - [`objects`]: `obj put|get|ls|rm`, streamed with a progress bar on a terminal;
//! - [`secrets`]: `secret set|ls|rm`, values from stdin or a prompt, never argv;
//! - [`completions`]: shell completion scripts.
//!
//! Exit status: 0 success (an invocation `completed`), 1 an error (its message on
//! stderr), 2 bad usage; an invocation that ended otherwise: 3 `failed`,
//! 4 `timed_out`, 5 `cancelled`, 6 not final within `--wait`.

pub mod auth;
pub mod client;
pub mod completions;
pub mod executions;
pub mod functions;
pub mod invoke;
pub mod objects;
pub mod output;
pub mod secrets;
pub mod session;
pub mod versions;

use std::io::Write;

use clap::Subcommand;

pub use client::{CliError, CliResult, Client};

/// The environment variables the client commands read (besides the config dir's
/// XDG_CONFIG_HOME / HOME).
pub const ENV_VARS: [&str; 2] = [session::URL_ENV, session::TOKEN_ENV];

/// Exit statuses of the client commands.
pub mod exit {
    /// Success; an invocation `completed`.
    pub const OK: i32 = 0;
    /// An error: the API's message, a network or file error.
    pub const ERROR: i32 = 1;
    /// Bad usage (clap's own status).
    pub const USAGE: i32 = 2;
    /// The execution ended `failed`.
    pub const FAILED: i32 = 3;
    /// The execution ended `timed_out`.
    pub const TIMED_OUT: i32 = 4;
    /// The execution ended `cancelled`.
    pub const CANCELLED: i32 = 5;
    /// The execution was not final when the wait ended.
    pub const NOT_FINAL: i32 = 6;
}

/// The client subcommands (flattened into `faas`'s own).
#[derive(Subcommand)]
pub enum Command {
    /// Log in to a faas API; the URL and token are kept in your config dir (mode 0600).
    Login(auth::LoginArgs),
    /// Forget the saved token (with --all, first end every token of the account).
    Logout(auth::LogoutArgs),
    /// Show the account of the saved token (or of FAAS_TOKEN).
    Whoami(auth::WhoamiArgs),
    /// Deploy, list, show and delete functions (named by name or id).
    #[command(name = "fn", subcommand)]
    Function(functions::FnCommand),
    /// Run a function and print its result; exit 0 only when it completed.
    Invoke(invoke::InvokeArgs),
    /// List, show, read the logs of and cancel executions.
    #[command(name = "exec", subcommand)]
    Execution(executions::ExecCommand),
    /// Upload, download, list and delete a function's objects.
    #[command(name = "obj", subcommand)]
    Object(objects::ObjCommand),
    /// Set, list and delete your secrets (values are never shown).
    #[command(subcommand)]
    Secret(secrets::SecretCommand),
    /// Print a shell completion script: `faas completions bash > /etc/bash_completion.d/faas`.
    Completions(completions::CompletionsArgs),
}

/// Runs one client command; prints an error's message (never a backtrace) and
/// returns the process's exit status. `root` is the whole `faas` command (for
/// completions).
pub async fn run(command: Command, root: clap::Command) -> i32 {
    let code = match dispatch(command, root).await {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            e.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    code
}

async fn dispatch(command: Command, root: clap::Command) -> CliResult<()> {
    match command {
        Command::Login(args) => auth::login(args).await,
        Command::Logout(args) => auth::logout(args).await,
        Command::Whoami(args) => auth::whoami(args).await,
        Command::Function(c) => functions::run(c).await,
        Command::Invoke(args) => invoke::run(args).await,
        Command::Execution(c) => executions::run(c).await,
        Command::Object(c) => objects::run(c).await,
        Command::Secret(c) => secrets::run(c).await,
        Command::Completions(args) => completions::run(args, root),
    }
}
