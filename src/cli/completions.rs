//! `faas completions bash|zsh|fish|...`: a completion script for a shell (clap_complete).

use clap::Args;
use clap_complete::Shell;

use super::client::{CliError, CliResult};

/// `faas completions`.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Writes the script of `args.shell` for the whole `root` command to stdout.
pub fn run(args: CompletionsArgs, mut root: clap::Command) -> CliResult<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut root, "faas", &mut script);
    let text = String::from_utf8(script)
        .map_err(|e| CliError::Transport(format!("the script is not UTF-8: {e}")))?;
    super::output::out(&text)
}
