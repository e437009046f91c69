//! The worker is one user of the Kafka layer, not the layer: the crates that read and
//! write the topics beside it must not depend on it (they would pull in the consumer
//! and the engine, and every change to either would rebuild and risk them).

use std::process::Command;

use serde_json::Value;

#[test]
fn no_crate_but_the_worker_binary_depends_on_the_worker() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let dependents: Vec<&str> = packages
        .iter()
        .filter(|package| {
            package["dependencies"]
                .as_array()
                .is_some_and(|deps| deps.iter().any(|dep| dep["name"] == "mcp-jobs-worker"))
        })
        .filter_map(|package| package["name"].as_str())
        .collect();
    assert_eq!(
        dependents,
        ["kafka-worker"],
        "only the binary uses pkg/worker"
    );
    for layer in ["mcp-jobs-scheduler", "mcp-jobs-console"] {
        let package = packages
            .iter()
            .find(|package| package["name"] == layer)
            .expect("the package exists");
        let uses_kafka = package["dependencies"]
            .as_array()
            .is_some_and(|deps| deps.iter().any(|dep| dep["name"] == "mcp-jobs-kafka"));
        assert!(uses_kafka, "{layer} reaches Kafka through pkg/kafka");
    }
}
