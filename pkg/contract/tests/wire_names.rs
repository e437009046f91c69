//! The wire is this crate's: no other crate spells one of mcp-jobs' Kafka header names,
//! so a name changed here cannot leave a reader or writer elsewhere behind.

use std::path::{Path, PathBuf};

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

#[test]
fn no_header_name_is_spelled_outside_the_contract() {
    let contract = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = contract.join("../..");
    let mut files = Vec::new();
    for dir in ["pkg", "cmd", "tests", "bench"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let own = contract.canonicalize().expect("the contract crate");
    let spelled: Vec<String> = files
        .iter()
        .filter(|file| !file.canonicalize().is_ok_and(|f| f.starts_with(&own)))
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            text.lines()
                .enumerate()
                .filter(|(_, line)| {
                    line.contains("\"mcp-jobs-") && !line.trim_start().starts_with("//")
                })
                .map(|(n, line)| format!("{}:{}: {}", file.display(), n + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        spelled.is_empty(),
        "use mcp_jobs_contract::headers instead of spelling these:\n{}",
        spelled.join("\n")
    );
}
