//! The documentation in the repository stays true to the code: the configuration
//! table of docs/configuration.md against every setting of src/config.rs and the
//! client, and no link or path in README.md or docs/ that leaves the repository or
//! names a file that does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{Args, Command};
use faas::config::{AutoscalerConfig, ServeConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Variables read outside clap (by the process, not a flag).
const PROCESS_ENV: [&str; 5] = [
    "RUST_LOG",
    "TMPDIR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
];

/// One row of the table: flags cell, default cell.
struct Row {
    flags: String,
    default: String,
}

/// The rows of docs/configuration.md's table, by variable.
fn documented() -> BTreeMap<String, Row> {
    let doc = read("docs/configuration.md");
    let mut rows = BTreeMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "a row has 4 cells: {line}");
        let name = cells[0].trim_matches('`').to_string();
        assert!(
            name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "one variable per row: {line}"
        );
        let row = Row {
            flags: cells[1].to_string(),
            default: cells[2].to_string(),
        };
        assert!(rows.insert(name.clone(), row).is_none(), "{name} twice");
    }
    rows
}

/// Every clap argument with an environment variable, of the processes' settings.
fn settings() -> Vec<(String, Option<String>, Vec<String>)> {
    let commands = [
        ServeConfig::augment_args(Command::new("serve")),
        AutoscalerConfig::augment_args(Command::new("autoscaler")),
    ];
    let mut out = Vec::new();
    for cmd in &commands {
        for arg in cmd.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let defaults = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            out.push((
                env.to_string_lossy().into_owned(),
                arg.get_long().map(str::to_string),
                defaults,
            ));
        }
    }
    out
}

#[test]
fn the_configuration_table_lists_every_setting_with_its_flag_and_default() {
    let rows = documented();
    let mut known: BTreeSet<String> = PROCESS_ENV.iter().map(|s| s.to_string()).collect();
    known.extend(faas::cli::ENV_VARS.iter().map(|s| s.to_string()));
    for (env, long, defaults) in settings() {
        let row = rows
            .get(&env)
            .unwrap_or_else(|| panic!("{env} (src/config.rs) is not in docs/configuration.md"));
        if let Some(long) = long {
            assert!(
                row.flags.contains(&format!("`--{long}`")),
                "{env}: the flag --{long} is not in its row ({})",
                row.flags
            );
        }
        for d in defaults {
            assert!(
                row.default.contains(&format!("`{d}`")),
                "{env}: the default `{d}` is not in its row ({})",
                row.default
            );
        }
        known.insert(env);
    }
    for env in faas::cli::ENV_VARS {
        assert!(
            rows.contains_key(env),
            "{env} (the client) is not documented"
        );
    }
    for name in rows.keys() {
        assert!(
            known.contains(name),
            "docs/configuration.md lists {name}, which no setting reads"
        );
    }
}

/// Markdown links `](target)` of a text.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|t| t.split('#').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_readme_and_docs_link_only_inside_the_repository() {
    let mut pages = vec![PathBuf::from("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p.strip_prefix(root()).unwrap().to_path_buf());
        }
    }
    for page in [
        "contract.md",
        "getting-started.md",
        "api.md",
        "configuration.md",
        "operations.md",
        "code-map.md",
    ] {
        assert!(root().join("docs").join(page).is_file(), "docs/{page}");
    }
    for page in &pages {
        let text = read(page.to_str().unwrap());
        assert!(
            !text.contains("shared/reference") && !text.contains("](../"),
            "{}: names a path outside the repository",
            page.display()
        );
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") || target.is_empty()
            {
                continue;
            }
            let dir = page.parent().unwrap_or(Path::new(""));
            let resolved = root().join(dir).join(&target);
            assert!(
                resolved.exists(),
                "{}: the link {target} names no file of the repository",
                page.display()
            );
        }
    }
    let readme = read("README.md");
    for page in [
        "docs/contract.md",
        "docs/getting-started.md",
        "docs/configuration.md",
    ] {
        assert!(readme.contains(page), "README.md points at {page}");
    }
}

#[test]
fn the_paths_the_docs_name_exist() {
    // Every `path/with/slash` in backticks that starts at a top-level directory of
    // the repository names a file or directory that exists.
    let top = [
        "src/",
        "api/",
        "runtime/",
        "executors/",
        "tests/",
        "samples/",
        "docs/",
        "deployments/",
        "scripts/",
        "wit/",
    ];
    let mut pages = vec!["README.md".to_string()];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        pages.push(format!("docs/{}", e.unwrap().file_name().to_string_lossy()));
    }
    for page in pages {
        let text = read(&page);
        for quoted in text.split('`').skip(1).step_by(2) {
            let path = quoted.split_whitespace().next().unwrap_or("");
            if !top.iter().any(|t| path.starts_with(t)) || path.contains(['<', '*', '$', '{']) {
                continue;
            }
            let path = path.trim_end_matches([',', '.', ':', ')']);
            assert!(
                root().join(path).exists(),
                "{page}: `{path}` does not exist"
            );
        }
    }
}
