//! The `faas` client commands end to end: this checkout's binary run as a user runs
//! it, against a real `faas serve` (a child process on 127.0.0.1:0, Docker off),
//! with a private HOME and XDG_CONFIG_HOME per test.

#[path = "support/own_binary.rs"]
mod own_binary;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "admin";
/// The README tour's admin account.
const ADMIN_PASSWORD: &str = "change-me-now";

fn faas_bin() -> PathBuf {
    own_binary::faas("completions")
}

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples/wasm")
        .join(name)
}

/// A `faas serve` child process with an admin account; killed on drop.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let child = Command::new(faas_bin())
            .arg("serve")
            .env("SERVER_ADDRESS", "127.0.0.1:0")
            .env("FAAS_DATA_DIR", dir.path().join("data"))
            .env("FAAS_DOCKER", "off")
            .env("FAAS_ADMIN_USERNAME", ADMIN)
            .env("FAAS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("FAAS_SHUTDOWN_GRACE_SECS", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn faas serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find(|l| l.contains("faas is listening"))
                .and_then(|l| l.split("addr=").nth(1))
                .and_then(|r| r.split_whitespace().next())
            {
                break addr.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "faas serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server {
            child,
            url: format!("http://{addr}"),
            log,
            _dir: dir,
        }
    }

    /// Registers `name` over HTTP and returns a token of theirs.
    fn user_token(&self, name: &str) -> String {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let http = reqwest::Client::new();
            let creds = json!({"username": name, "password": "password123"});
            let r = http
                .post(format!("{}/auth/register", self.url))
                .json(&creds)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let r = http
                .post(format!("{}/auth/login", self.url))
                .json(&creds)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            body["token"].as_str().unwrap().to_string()
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- faas serve log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// A user of the CLI: a private HOME and config dir, and the server's URL in FAAS_URL.
struct User {
    home: tempfile::TempDir,
    url: String,
}

/// What a `faas` run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    #[track_caller]
    fn fails(self, code: i32, message: &str) -> String {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(message),
            "stderr lacks {message:?}: {}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("stack backtrace"),
            "a panic or backtrace: {}",
            self.stderr
        );
        self.stderr
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl User {
    fn new(server: &Server) -> User {
        User {
            home: tempfile::tempdir().unwrap(),
            url: server.url.clone(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(faas_bin());
        c.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("FAAS_URL", &self.url)
            .env_remove("FAAS_TOKEN")
            .env_remove("RUST_BACKTRACE")
            .current_dir(self.home.path());
        c
    }

    /// Runs `faas args` with `stdin` as its standard input.
    fn run_with(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn faas");
        let mut pipe = child.stdin.take().unwrap();
        let input = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out: Output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, b"", &[])
    }

    fn login_admin(&self) {
        self.run_with(
            &["login", "--username", ADMIN, "--password-stdin"],
            format!("{ADMIN_PASSWORD}\n").as_bytes(),
            &[],
        )
        .ok();
    }

    fn deploy(&self, name: &str, wasm: &str, extra: &[&str]) -> String {
        let path = sample(wasm);
        let mut args = vec![
            "fn",
            "deploy",
            name,
            "--wasm",
            path.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let run = self.run(&args);
        let id = run.json()["id"].as_str().unwrap().to_string();
        run.ok();
        id
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_keeps_a_private_session_and_a_wrong_password_shows_the_api_message() {
    let server = Server::start();
    let user = User::new(&server);
    user.run(&["fn", "ls"]).fails(1, "not logged in");
    let wrong = user.run_with(
        &["login", "--username", ADMIN, "--password-stdin"],
        b"not-the-password\n",
        &[],
    );
    wrong.fails(1, "invalid username or password");
    let session = user.config_dir().join("faas/config.json");
    assert!(!session.exists(), "a failed login saves nothing");

    user.login_admin();
    assert_eq!(mode(&session), 0o600, "the session file is private");
    assert_eq!(mode(session.parent().unwrap()), 0o700);
    let saved: Value = serde_json::from_slice(&std::fs::read(&session).unwrap()).unwrap();
    assert_eq!(saved["url"], server.url);
    assert!(saved["token"].as_str().is_some_and(|t| t.len() > 20));

    // Without FAAS_URL the saved URL is used.
    let me = user
        .command(&["whoami", "--json"])
        .env_remove("FAAS_URL")
        .output()
        .unwrap();
    assert!(
        me.status.success(),
        "{}",
        String::from_utf8_lossy(&me.stderr)
    );
    let me: Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(me["username"], ADMIN);
    assert_eq!(me["role"], "admin");
    let table = user.run(&["whoami"]).ok();
    assert!(
        table.contains("username:") && table.contains(ADMIN),
        "{table}"
    );

    // No terminal and no --password-stdin: a clear refusal, not a hang.
    user.run(&["login", "--username", ADMIN])
        .fails(2, "--password-stdin");

    user.run(&["logout"]).ok();
    assert!(!session.exists());
    user.run(&["whoami"]).fails(1, "not logged in");
}

#[test]
fn functions_are_deployed_listed_invoked_and_their_executions_read() {
    let server = Server::start();
    let user = User::new(&server);
    user.login_admin();
    let hello = user.deploy("hello", "rust-hello.wasm", &["--description", "greets"]);
    user.deploy("summarize", "rust-summarize.wasm", &[]);

    let table = user.run(&["fn", "ls"]).ok();
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("RUNTIME"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("hello ") && l.contains(&hello)),
        "{table}"
    );
    let listed = user.run(&["fn", "ls", "--json"]).json();
    let names: Vec<&str> = listed["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"hello") && names.contains(&"summarize"));
    // A function is named by its name or its id.
    assert_eq!(
        user.run(&["fn", "show", &hello, "--json"]).json()["name"],
        "hello"
    );
    assert!(user.run(&["fn", "show", "hello"]).ok().contains("greets"));

    // The input from the command line, a file and stdin.
    let out = user
        .run(&[
            "invoke",
            "hello",
            "--input",
            r#"{"direct_inputs":{"name":"Ada"}}"#,
        ])
        .ok();
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["hello"], "Ada");
    assert!(out.contains("\n  \"hello\""), "pretty JSON: {out}");
    let file = user.home.path().join("input.json");
    std::fs::write(&file, r#"{"direct_inputs":{"name":"Bo"}}"#).unwrap();
    let at = format!("@{}", file.display());
    let out = user.run(&["invoke", "hello", "--input", &at]).ok();
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["hello"], "Bo");
    let out = user
        .run_with(
            &["invoke", "hello", "--input", "-"],
            br#"{"direct_inputs":{"name":"Cy"}}"#,
            &[],
        )
        .ok();
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["hello"], "Cy");
    user.run(&["invoke", "hello", "--input", "{nope"])
        .fails(2, "not JSON");
    user.run(&["invoke", "nobody"])
        .fails(1, "no function named \"nobody\"");

    // A failed execution: non-zero, with the function's error.
    user.run(&["invoke", "summarize"])
        .fails(3, "no secret named");
    // --async prints the id; exec show/logs read it.
    let id = user
        .run(&["invoke", "hello", "--async"])
        .ok()
        .trim()
        .to_string();
    let logs = user.run(&["exec", "logs", &id, "--follow"]).ok();
    assert!(logs.contains("rust-hello called"), "{logs}");
    let shown = user.run(&["exec", "show", &id]).ok();
    assert!(
        shown.contains("completed") && shown.contains("hello"),
        "{shown}"
    );
    assert_eq!(
        user.run(&["exec", "show", &id, "--json"]).json()["status"],
        "completed"
    );
    assert!(
        user.run(&["exec", "logs", &id])
            .ok()
            .contains("greeting world")
    );

    let table = user.run(&["exec", "ls"]).ok();
    assert!(table.starts_with("ID"), "{table}");
    assert_eq!(table.lines().count(), 1 + 5, "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("completed"))
    );
    let failed = user
        .run(&[
            "exec",
            "ls",
            "--fn",
            "summarize",
            "--status",
            "failed",
            "--json",
        ])
        .json();
    assert_eq!(
        failed["executions"].as_array().unwrap().len(),
        1,
        "{failed}"
    );
    user.run(&["exec", "show", "no-such-id"])
        .fails(1, "not found");
    user.run(&["exec", "cancel", &id])
        .fails(1, "already completed");

    user.run(&["fn", "rm", "hello"]).ok();
    user.run(&["fn", "show", "hello"])
        .fails(1, "no function named");
}

#[test]
fn a_timed_out_execution_and_a_short_wait_have_their_own_exit_statuses() {
    let server = Server::start();
    let user = User::new(&server);
    user.login_admin();
    user.deploy("spin", "c-spin.wasm", &["--timeout", "1"]);
    user.deploy("spin-long", "c-spin.wasm", &[]);
    user.run(&[
        "invoke",
        "spin",
        "--input",
        r#"{"direct_inputs":{"ms":5000}}"#,
    ])
    .fails(4, "timed_out");
    let stderr = user
        .run(&[
            "invoke",
            "spin-long",
            "--input",
            r#"{"direct_inputs":{"ms":5000}}"#,
            "--wait",
            "0",
        ])
        .fails(6, "is still");
    let id = stderr.split_whitespace().nth(2).unwrap().to_string();
    let cancelled = user.run(&["exec", "cancel", &id]).ok();
    assert!(cancelled.contains("cancelled"), "{cancelled}");
}

#[test]
fn objects_round_trip_byte_identical_and_a_secret_from_stdin_reaches_the_function() {
    let server = Server::start();
    let user = User::new(&server);
    user.login_admin();
    let fid = user.deploy("summarize", "rust-summarize.wasm", &[]);

    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = user.home.path().join("report.bin");
    std::fs::write(&file, &data).unwrap();
    let put = user.run(&[
        "obj",
        "put",
        "summarize",
        file.to_str().unwrap(),
        "--name",
        "report",
    ]);
    assert!(
        !put.stderr.contains("uploading"),
        "no progress bar when piped: {}",
        put.stderr
    );
    put.ok();
    let listed = user.run(&["obj", "ls", "summarize", "--json"]).json();
    assert_eq!(listed["objects"][0]["name"], "report");
    assert_eq!(listed["objects"][0]["size"], data.len());
    assert!(
        user.run(&["obj", "ls", "summarize"])
            .ok()
            .contains("1.00 MiB")
    );

    let back = user.home.path().join("back.bin");
    user.run(&[
        "obj",
        "get",
        "summarize",
        "report",
        "-o",
        back.to_str().unwrap(),
    ])
    .ok();
    assert!(
        std::fs::read(&back).unwrap() == data,
        "the download is byte-identical"
    );
    let out = Command::new(faas_bin())
        .args(["obj", "get", &fid, "report", "-o", "-"])
        .env("HOME", user.home.path())
        .env("XDG_CONFIG_HOME", user.config_dir())
        .env("FAAS_URL", &user.url)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout == data,
        "to stdout, byte-identical"
    );
    user.run(&["obj", "get", "summarize", "missing"])
        .fails(1, "not found");

    // The value comes from stdin and never shows again.
    let set = user.run_with(&["secret", "set", "signing_key"], b"k3y-from-stdin\n", &[]);
    assert!(set.ok().contains("SIGNING_KEY"));
    let secrets = user.run(&["secret", "ls", "--json"]);
    assert!(!secrets.stdout.contains("k3y-from-stdin"));
    assert_eq!(secrets.json()["secrets"][0]["name"], "signing_key");
    assert!(user.run(&["secret", "ls"]).ok().contains("signing_key"));

    let out = user
        .run(&[
            "invoke",
            "summarize",
            "--secret",
            "signing_key",
            "--object",
            "doc=summarize/report",
        ])
        .ok();
    let result: Value = serde_json::from_str(&out).unwrap();
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y-from-stdin").unwrap();
    mac.update(&data);
    assert_eq!(result["objects"]["doc"]["bytes"], data.len());
    assert_eq!(
        result["objects"]["doc"]["hmac_sha256"],
        hex::encode(mac.finalize().into_bytes()),
        "the function read the object with the secret's value as key"
    );

    // Set again replaces the value.
    user.run_with(&["secret", "set", "signing_key"], b"other", &[])
        .ok();
    let out = user
        .run(&[
            "invoke",
            "summarize",
            "--secret",
            "signing_key",
            "--object",
            &format!("doc={fid}/report"),
        ])
        .ok();
    assert_ne!(serde_json::from_str::<Value>(&out).unwrap(), result);

    user.run(&["secret", "rm", "signing_key"]).ok();
    user.run(&["secret", "rm", "signing_key"])
        .fails(1, "no secret named");
    user.run(&["obj", "rm", "summarize", "report"]).ok();
    assert_eq!(
        user.run(&["obj", "ls", "summarize", "--json"]).json()["objects"],
        json!([])
    );
}

#[test]
fn faas_token_overrides_the_session_and_a_bad_token_is_a_clear_error() {
    let server = Server::start();
    let user = User::new(&server);
    user.login_admin();
    let bob = server.user_token("bob");
    let me = user
        .run_with(&["whoami", "--json"], b"", &[("FAAS_TOKEN", bob.as_str())])
        .json();
    assert_eq!(me["username"], "bob");
    // Bob sees none of the admin's functions.
    user.deploy("hello", "rust-hello.wasm", &[]);
    let bobs = user
        .run_with(
            &["fn", "ls", "--json"],
            b"",
            &[("FAAS_TOKEN", bob.as_str())],
        )
        .json();
    assert_eq!(bobs["functions"], json!([]));

    user.run_with(&["fn", "ls"], b"", &[("FAAS_TOKEN", "not-a-token")])
        .fails(1, "faas login");
    // A token never goes to another URL than the one it was saved for.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    user.run_with(&["fn", "ls"], b"", &[("FAAS_URL", closed.as_str())])
        .fails(1, "not logged in");
    user.run_with(
        &["fn", "ls"],
        b"",
        &[("FAAS_URL", closed.as_str()), ("FAAS_TOKEN", bob.as_str())],
    )
    .fails(1, "cannot reach");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let home = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_faas()"),
        ("zsh", "#compdef faas"),
        ("fish", "complete -c faas"),
    ] {
        let out = Command::new(faas_bin())
            .args(["completions", shell])
            .env("HOME", home.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {marker:?} missing");
        for sub in ["invoke", "deploy", "secret"] {
            assert!(text.contains(sub), "{shell} completes {sub}");
        }
    }
    let bad = Command::new(faas_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// The shell block of README.md's tour that follows the `faas serve` block.
fn readme_tour() -> String {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let tour = readme
        .split("## A five-minute tour")
        .nth(1)
        .expect("README.md has the tour");
    let blocks: Vec<&str> = tour
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(
        blocks[0].contains("FAAS_ADMIN_PASSWORD=change-me-now"),
        "the tour starts faas serve with the password these tests use"
    );
    blocks[1].to_string()
}

#[test]
fn the_readme_tour_runs_command_by_command() {
    let server = Server::start();
    let user = User::new(&server);
    let work = user.home.path().join("repo");
    std::fs::create_dir(&work).unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for entry in ["samples", "README.md"] {
        std::os::unix::fs::symlink(repo.join(entry), work.join(entry)).unwrap();
    }
    let bin = user.home.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(faas_bin(), bin.join("faas")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = readme_tour();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("HOME", user.home.path())
        .env("XDG_CONFIG_HOME", user.config_dir())
        .env("FAAS_URL", &user.url)
        .env_remove("FAAS_TOKEN")
        .env("PATH", path)
        .current_dir(&work)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tour failed:\n{script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    assert!(stdout.contains("Logged in to"), "{stdout}");
    assert!(stdout.contains("\"hello\": \"Ada\""), "{stdout}");
    assert!(stdout.contains("hmac_sha256"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("ID ")),
        "exec ls prints a table: {stdout}"
    );
    assert!(stdout.contains("\"functions\""), "fn ls --json: {stdout}");
    assert!(!stderr.contains("error"), "{stderr}");
}

/// `faas ...` command lines of the shell blocks of README.md and docs/.
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        pages.push(e.unwrap().path());
    }
    let mut out = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for block in text.split("```sh\n").skip(1) {
            let block = block.split("```").next().unwrap();
            for line in block.lines() {
                let Some(at) = line.find("faas ") else {
                    continue;
                };
                let before = &line[..at];
                if !(before.trim().is_empty() || before.trim_end().ends_with('|')) {
                    continue;
                }
                let words: Vec<String> = line[at + 5..]
                    .split_whitespace()
                    .take_while(|w| {
                        w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
                    })
                    .map(str::to_string)
                    .collect();
                out.push((format!("{}: {line}", page.display()), words));
            }
        }
    }
    out
}

#[test]
fn every_faas_command_the_docs_show_exists() {
    let commands = documented_commands();
    assert!(commands.len() > 20, "{} commands found", commands.len());
    for (line, words) in commands {
        let out = Command::new(faas_bin())
            .args(&words)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}\n`faas {} --help`: {}",
            words.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
