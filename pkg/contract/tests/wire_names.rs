//! The wire is this crate's: no other crate spells one of mcp-jobs' Kafka header names
//! or failure kinds, so a name changed here cannot leave a reader or writer elsewhere
//! behind.

use std::path::{Path, PathBuf};

use mcp_jobs_contract::FailureKind;

/// Every `.rs` file under `dir`, build output and installed packages left out.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && name != "node_modules" {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// `file:line: text` of every code line (comments aside) under `dirs` that `spells`,
/// this crate and the directories in `left_out` aside (both relative to the repository).
fn spelled_outside(dirs: &[&str], left_out: &[&str], spells: impl Fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 30, "found only {} source files", files.len());
    files
        .iter()
        .filter(|file| {
            let relative = file.strip_prefix(&root).unwrap_or(file);
            !["pkg/contract"]
                .iter()
                .chain(left_out)
                .any(|dir| relative.starts_with(dir))
        })
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.trim_start().starts_with("//") && spells(line))
                .map(|(n, line)| format!("{}:{}: {}", file.display(), n + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Left out: the layering test, which names crates (`mcp-jobs-worker` is a crate as
/// well as a header).
#[test]
fn no_header_name_is_spelled_outside_the_contract() {
    let crate_names = ["pkg/kafka/tests/layering.rs"];
    let spelled = spelled_outside(&["pkg", "cmd", "tests", "bench"], &crate_names, |line| {
        line.contains("\"mcp-jobs-")
    });
    assert!(
        spelled.is_empty(),
        "use mcp_jobs_contract::headers instead of spelling these:\n{}",
        spelled.join("\n")
    );
}

/// Left out on purpose: the end-to-end tests, which read outcomes as a consumer does (a
/// renamed kind must fail them); pkg/shared-state, whose messaging and stream tools name
/// kinds of their own in their results (`too_large` there is a message, not a job); and
/// `refused`, which is also an everyday word in JSON fields (`"refused": 3` replays).
#[test]
fn no_failure_kind_is_spelled_outside_the_contract() {
    let kinds: Vec<String> = FailureKind::names()
        .filter(|name| *name != "refused")
        .map(|name| format!("\"{name}\""))
        .collect();
    let spelled = spelled_outside(&["pkg", "cmd", "bench"], &["pkg/shared-state"], |line| {
        kinds.iter().any(|kind| line.contains(kind.as_str()))
    });
    assert!(
        spelled.is_empty(),
        "use mcp_jobs_contract::FailureKind instead of spelling these:\n{}",
        spelled.join("\n")
    );
}
