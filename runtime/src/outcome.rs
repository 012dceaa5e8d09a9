//! Maps what an executor observed ([`RawOutcome`]) to an execution's final fields,
//! exactly as CONTRACT.md §2 says. One function for every executor.

use crate::model::ExecutionStatus;
use crate::ports::{RawOutcome, Termination};

/// The fields a worker writes when an attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalFields {
    /// `completed`, `failed` or `timed_out`.
    pub status: ExecutionStatus,
    /// stdout text.
    pub output: Option<String>,
    /// stdout as JSON, when it parses.
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The exit code, when the guest exited.
    pub exit_code: Option<i32>,
    /// stderr text.
    pub logs: Option<String>,
}

/// Limits that the error messages quote.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Timeout in seconds.
    pub timeout_secs: u64,
    /// Memory limit in MiB.
    pub memory_mb: u64,
    /// stdout cap in bytes.
    pub stdout_cap: usize,
    /// stderr cap in bytes.
    pub stderr_cap: usize,
}

/// Applies CONTRACT.md §2.
pub fn classify(raw: &RawOutcome, limits: Limits) -> FinalFields {
    let output = String::from_utf8_lossy(&raw.stdout).into_owned();
    let logs = String::from_utf8_lossy(&raw.stderr).into_owned();
    let parsed: Option<serde_json::Value> = serde_json::from_str(output.trim()).ok();
    let mut fields = FinalFields {
        status: ExecutionStatus::Failed,
        output: Some(output),
        result: None,
        error: None,
        exit_code: None,
        logs: Some(logs),
    };
    match &raw.termination {
        Termination::TimedOut => {
            fields.status = ExecutionStatus::TimedOut;
            fields.error = Some(format!(
                "timed out after {} s: the execution was killed",
                limits.timeout_secs
            ));
        }
        Termination::MemoryExceeded => {
            fields.error = Some(format!(
                "memory limit of {} MiB exceeded: the execution was killed",
                limits.memory_mb
            ));
        }
        Termination::Trap(msg) => fields.error = Some(format!("trap: {msg}")),
        Termination::GuestError(msg) => fields.error = Some(msg.clone()),
        Termination::Exited(code) => exited(&mut fields, *code, parsed, &raw.stderr),
    }
    if fields.status != ExecutionStatus::TimedOut {
        if raw.stdout_overflow {
            fields.status = ExecutionStatus::Failed;
            fields.error = Some(format!(
                "output limit exceeded: stdout is over {} bytes (what fit is kept)",
                limits.stdout_cap
            ));
        } else if raw.stderr_overflow {
            fields.status = ExecutionStatus::Failed;
            fields.error = Some(format!(
                "output limit exceeded: stderr is over {} bytes (what fit is kept)",
                limits.stderr_cap
            ));
        }
    }
    fields
}

fn exited(fields: &mut FinalFields, code: i32, parsed: Option<serde_json::Value>, stderr: &[u8]) {
    fields.exit_code = Some(code);
    let json_error = parsed
        .as_ref()
        .and_then(|v| v.as_object())
        .and_then(|o| o.get("error"))
        .map(|e| match e {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    if let Some(message) = json_error {
        fields.error = Some(message);
        fields.result = parsed;
    } else if code != 0 {
        fields.error = Some(stderr_tail(stderr).unwrap_or_else(|| format!("exit code {code}")));
        fields.result = parsed;
    } else {
        fields.status = ExecutionStatus::Completed;
        fields.result = parsed;
    }
}

/// The last non-empty line of stderr, at most 500 characters.
fn stderr_tail(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    let start = line
        .char_indices()
        .rev()
        .nth(499)
        .map(|(i, _)| i)
        .unwrap_or(0);
    Some(line[start..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        timeout_secs: 5,
        memory_mb: 64,
        stdout_cap: 10,
        stderr_cap: 10,
    };

    fn raw(t: Termination, out: &str, err: &str) -> RawOutcome {
        RawOutcome {
            termination: t,
            stdout: out.as_bytes().to_vec(),
            stderr: err.as_bytes().to_vec(),
            stdout_overflow: false,
            stderr_overflow: false,
        }
    }

    #[test]
    fn exit_zero_json_completes_with_result() {
        let f = classify(&raw(Termination::Exited(0), "{\"a\":1}\n", ""), LIMITS);
        assert_eq!(f.status, ExecutionStatus::Completed);
        assert_eq!(f.result, Some(serde_json::json!({"a": 1})));
        assert_eq!(f.exit_code, Some(0));
        assert_eq!(f.error, None);
    }

    #[test]
    fn exit_zero_text_completes_without_result() {
        let f = classify(&raw(Termination::Exited(0), "hi", ""), LIMITS);
        assert_eq!(f.status, ExecutionStatus::Completed);
        assert_eq!(f.result, None);
        assert_eq!(f.output.as_deref(), Some("hi"));
    }

    #[test]
    fn error_key_fails_with_its_message() {
        let f = classify(
            &raw(Termination::Exited(0), "{\"error\":\"boom\"}", ""),
            LIMITS,
        );
        assert_eq!(f.status, ExecutionStatus::Failed);
        assert_eq!(f.error.as_deref(), Some("boom"));
    }

    #[test]
    fn nonzero_exit_uses_stderr_tail_then_code() {
        let f = classify(
            &raw(Termination::Exited(3), "", "a\nlast words\n\n"),
            LIMITS,
        );
        assert_eq!(f.status, ExecutionStatus::Failed);
        assert_eq!(f.error.as_deref(), Some("last words"));
        assert_eq!(f.exit_code, Some(3));
        let f = classify(&raw(Termination::Exited(3), "", ""), LIMITS);
        assert_eq!(f.error.as_deref(), Some("exit code 3"));
    }

    #[test]
    fn timeout_memory_trap_and_overflow() {
        let f = classify(&raw(Termination::TimedOut, "", ""), LIMITS);
        assert_eq!(f.status, ExecutionStatus::TimedOut);
        let f = classify(&raw(Termination::MemoryExceeded, "", ""), LIMITS);
        assert!(f.error.unwrap().contains("memory limit"));
        let f = classify(
            &raw(Termination::Trap("unreachable".into()), "", ""),
            LIMITS,
        );
        assert_eq!(f.status, ExecutionStatus::Failed);
        let mut r = raw(Termination::Exited(0), "0123456789", "");
        r.stdout_overflow = true;
        let f = classify(&r, LIMITS);
        assert_eq!(f.status, ExecutionStatus::Failed);
        assert!(f.error.unwrap().contains("output limit"));
        assert_eq!(f.output.as_deref(), Some("0123456789"));
    }
}
