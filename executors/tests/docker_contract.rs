//! The function contract through the Docker executor, against the real engine: argv
//! and stdin, env and secrets, the exit code, `{"error"}` output, large input, and the
//! read-only filesystem with its private `/tmp`.

#[path = "fixtures/docker/harness.rs"]
mod harness;
#[path = "fixtures/docker/images.rs"]
mod images;

use faas_runtime::model::ExecutionStatus;
use faas_runtime::outcome::{Limits, classify};
use faas_runtime::ports::executor::MAX_ARGV_INPUT;
use faas_runtime::ports::{Executor, Termination};
use harness::{executor, json, request, text};

const LIMITS: Limits = Limits {
    timeout_secs: 20,
    memory_mb: 64,
    stdout_cap: 1 << 20,
    stderr_cap: 1 << 20,
};

/// Echoes argv[1] and stdin back as JSON.
const ECHO: &str =
    r#"stdin=$(cat); printf '{"argc":%d,"argv":%s,"stdin":%s}\n' "$#" "$1" "$stdin""#;

#[tokio::test]
async fn success_json_sees_input_in_argv_and_on_stdin() {
    let executor = executor("success").await;
    let image = images::script_image(&images::docker().await, "echo", ECHO).await;
    let input = r#"{"direct_inputs":{"name":"Ada"}}"#;
    let raw = executor.execute(request(&image, input)).await.unwrap();
    assert_eq!(
        raw.termination,
        Termination::Exited(0),
        "{}",
        text(&raw.stderr)
    );
    let out = json(&raw.stdout);
    assert_eq!(out["argc"], 1);
    assert_eq!(out["argv"]["direct_inputs"]["name"], "Ada");
    assert_eq!(out["stdin"]["direct_inputs"]["name"], "Ada");
    let fields = classify(&raw, LIMITS);
    assert_eq!(fields.status, ExecutionStatus::Completed);
    harness::finish(&executor).await;
}

#[tokio::test]
async fn error_key_output_fails_with_its_message() {
    let executor = executor("error-key").await;
    let script = r#"echo '{"error":"no such user"}'"#;
    let image = images::script_image(&images::docker().await, "error-key", script).await;
    let raw = executor.execute(request(&image, "{}")).await.unwrap();
    assert_eq!(raw.termination, Termination::Exited(0));
    let fields = classify(&raw, LIMITS);
    assert_eq!(fields.status, ExecutionStatus::Failed);
    assert_eq!(fields.error.as_deref(), Some("no such user"));
    harness::finish(&executor).await;
}

#[tokio::test]
async fn non_zero_exit_keeps_stderr_apart_from_stdout() {
    let executor = executor("exit").await;
    let script = "echo partial; echo 'bad thing happened' >&2; exit 3";
    let image = images::script_image(&images::docker().await, "exit3", script).await;
    let raw = executor.execute(request(&image, "{}")).await.unwrap();
    assert_eq!(raw.termination, Termination::Exited(3));
    assert_eq!(text(&raw.stdout), "partial\n");
    assert_eq!(text(&raw.stderr), "bad thing happened\n");
    let fields = classify(&raw, LIMITS);
    assert_eq!(fields.error.as_deref(), Some("bad thing happened"));
    assert_eq!(fields.exit_code, Some(3));
    harness::finish(&executor).await;
}

#[tokio::test]
async fn env_holds_the_secret_and_nothing_from_the_host() {
    let executor = executor("env").await;
    let script = r#"env | sort; echo "uid=$(id -u) gid=$(id -g)""#;
    let image = images::script_image(&images::docker().await, "env", script).await;
    let mut req = request(&image, r#"{"secrets":["api_key"]}"#);
    req.env
        .push(("API_KEY".to_string(), "s3cret-value".to_string()));
    let execution_id = req.execution_id.clone();
    let raw = executor.execute(req).await.unwrap();
    assert_eq!(
        raw.termination,
        Termination::Exited(0),
        "{}",
        text(&raw.stderr)
    );
    let out = text(&raw.stdout);
    assert!(out.contains("API_KEY=s3cret-value\n"), "{out}");
    assert!(
        out.contains(&format!("FAAS_EXECUTION_ID={execution_id}\n")),
        "{out}"
    );
    assert!(
        out.contains("API_BASE_URL=http://api.invalid/objects\n"),
        "{out}"
    );
    assert!(out.contains("uid=65534 gid=65534"), "{out}");
    // The engine adds PATH, HOSTNAME and HOME; nothing of the host's own env.
    for line in out
        .lines()
        .filter(|l| l.contains('=') && !l.starts_with("uid="))
    {
        let name = line.split('=').next().unwrap_or_default();
        let allowed = [
            "API_KEY",
            "API_BASE_URL",
            "FAAS_EXECUTION_ID",
            "FAAS_FUNCTION_ID",
            "PATH",
            "HOSTNAME",
            "HOME",
            "PWD",
            "SHLVL",
        ];
        assert!(allowed.contains(&name), "unexpected variable {line:?}");
    }
    harness::finish(&executor).await;
}

#[tokio::test]
async fn input_over_64_kib_comes_on_stdin_only() {
    let executor = executor("large-input").await;
    let script = r#"n=$(wc -c); printf '{"argc":%d,"stdin_bytes":%d}\n' "$#" "$n""#;
    let image = images::script_image(&images::docker().await, "count", script).await;
    let payload = "x".repeat(MAX_ARGV_INPUT + 10);
    let input = format!(r#"{{"direct_inputs":{{"blob":"{payload}"}}}}"#);
    let raw = executor.execute(request(&image, &input)).await.unwrap();
    assert_eq!(
        raw.termination,
        Termination::Exited(0),
        "{}",
        text(&raw.stderr)
    );
    let out = json(&raw.stdout);
    assert_eq!(out["argc"], 0);
    assert_eq!(out["stdin_bytes"], input.len());
    harness::finish(&executor).await;
}

#[tokio::test]
async fn root_is_read_only_and_tmp_is_writable_but_not_executable() {
    let executor = executor("readonly").await;
    let script = r#"
        if echo x > /probe 2>/dev/null; then root=true; else root=false; fi
        if echo x > /tmp/probe; then tmp=true; else tmp=false; fi
        cp /bin/busybox /tmp/bb
        if /tmp/bb true 2>/dev/null; then exec_tmp=true; else exec_tmp=false; fi
        printf '{"root":%s,"tmp":%s,"exec_tmp":%s}\n' $root $tmp $exec_tmp
    "#;
    let image = images::script_image(&images::docker().await, "readonly", script).await;
    let raw = executor.execute(request(&image, "{}")).await.unwrap();
    assert_eq!(
        raw.termination,
        Termination::Exited(0),
        "{}",
        text(&raw.stderr)
    );
    let out = json(&raw.stdout);
    assert_eq!(out["root"], false, "writing to / must fail");
    assert_eq!(out["tmp"], true, "/tmp must be writable");
    assert_eq!(out["exec_tmp"], false, "/tmp must be noexec");
    harness::finish(&executor).await;
}

#[tokio::test]
async fn image_cmd_stays_before_the_input() {
    // An image with ENTRYPOINT sh -c <script> fn: `fn` is $0 and INPUT is $1. Its
    // argv prefix is kept whole and INPUT is appended.
    let executor = executor("argv").await;
    let image = images::script_image(&images::docker().await, "argv0", r#"echo "$0|$1""#).await;
    let raw = executor.execute(request(&image, "[1]")).await.unwrap();
    assert_eq!(text(&raw.stdout), "fn|[1]\n");
    harness::finish(&executor).await;
}

#[tokio::test]
async fn guest_that_ignores_a_large_stdin_still_finishes() {
    let executor = executor("ignore-stdin").await;
    let image = images::script_image(&images::docker().await, "ignore", "echo '{}'").await;
    let input = format!(r#"{{"blob":"{}"}}"#, "y".repeat(4 * MAX_ARGV_INPUT));
    let mut req = request(&image, &input);
    req.timeout = std::time::Duration::from_secs(10);
    let raw = executor.execute(req).await.unwrap();
    assert_eq!(raw.termination, Termination::Exited(0));
    assert_eq!(text(&raw.stdout), "{}\n");
    harness::finish(&executor).await;
}

#[tokio::test]
async fn concurrent_executions_keep_their_own_input_and_output() {
    let executor = executor("concurrent").await;
    let image = images::script_image(&images::docker().await, "echo", ECHO).await;
    let runs = (0..4).map(|i| {
        let req = request(&image, &format!(r#"{{"n":{i}}}"#));
        let executor = &executor;
        async move { (i, executor.execute(req).await) }
    });
    for (i, raw) in futures::future::join_all(runs).await {
        let raw = raw.unwrap();
        assert_eq!(
            raw.termination,
            Termination::Exited(0),
            "{}",
            text(&raw.stderr)
        );
        let out = json(&raw.stdout);
        assert_eq!(out["argv"]["n"], i);
        assert_eq!(out["stdin"]["n"], i);
    }
    harness::finish(&executor).await;
}
