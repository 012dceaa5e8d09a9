//! What the client commands print: tables (column-aligned, no borders, like
//! `docker ps`), pretty JSON with `--json`, and progress bars on a terminal only.
//! A closed pipe (`faas fn ls | head -1`) ends the output quietly.

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use time::OffsetDateTime;

use super::client::{CliError, CliResult};

/// Writes `text` to stdout; a closed pipe is not an error.
pub fn out(text: &str) -> CliResult<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::io("write to stdout")(e))
        }
        _ => Ok(()),
    }
}

/// Writes a line to stdout.
pub fn line(text: &str) -> CliResult<()> {
    out(&format!("{text}\n"))
}

/// A note for the person at the terminal (stderr), e.g. what was done.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Pretty JSON on stdout.
pub fn json(v: &Value) -> CliResult<()> {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    line(&text)
}

/// A table with `headers` and `rows`.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> CliResult<()> {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_string()));
    for row in rows {
        t.add_row(row);
    }
    render(t)
}

/// Two columns, field and value (one record).
pub fn fields(rows: Vec<(&str, String)>) -> CliResult<()> {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    for (k, v) in rows {
        t.add_row(vec![format!("{k}:"), v]);
    }
    render(t)
}

/// Columns two spaces apart, flush left, no trailing blanks.
fn render(mut t: Table) -> CliResult<()> {
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    let text = t
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    line(&text)
}

/// A time as `2026-11-30 07:45:13` (UTC).
pub fn when(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An optional time, `-` when absent.
pub fn when_opt(t: Option<OffsetDateTime>) -> String {
    t.map(when).unwrap_or_else(|| "-".into())
}

/// A byte count for people (`1.00 MiB`).
pub fn bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

/// An optional value, `-` when absent.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// A transfer's progress bar on stderr, hidden unless stderr is a terminal.
pub fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// A spinner on stderr while waiting, hidden unless stderr is a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let s = ProgressBar::new_spinner();
    s.set_message(what.to_string());
    s.enable_steady_tick(std::time::Duration::from_millis(120));
    s
}

/// Whether stdin is a terminal (then values are prompted for, not read).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads all of stdin as text.
pub fn read_stdin_all() -> CliResult<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(CliError::io("read stdin"))?;
    Ok(text)
}

/// Reads all of stdin as text; one trailing newline (`\n` or `\r\n`) is dropped.
pub fn read_stdin_line() -> CliResult<String> {
    let mut text = read_stdin_all()?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_to_the_second_in_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
        assert_eq!(when(t), "2026-11-18 11:06:40");
        assert_eq!(when_opt(None), "-");
    }

    #[test]
    fn sizes_show_in_binary_units() {
        assert_eq!(bytes(1024 * 1024), "1.00 MiB");
    }
}
