//! `kafka-worker lag` against a real broker: exact per-partition and total lag for a
//! group with a known backlog, the replica count it calls for, and clear errors for a
//! group or topic that does not exist.

use std::process::{Command, Output};

use mcp_jobs_e2e::{bin, Broker};

fn lag(broker: &Broker, topic: &str, group: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin("kafka-worker"))
        .arg("lag")
        .args(args)
        .env("KAFKA_BROKERS", &broker.address)
        .env("KAFKA_TOPIC", topic)
        .env("MCP_CONSUMER_GROUP", group)
        .envs(env.iter().copied())
        .output()
        .expect("run kafka-worker lag")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kafka-worker lag failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn lag_and_replicas_for_a_known_backlog() {
    let broker = Broker::start();
    let topic = broker.name("jobs");
    broker.create_topic(&topic, 3);
    broker.produce_to(&topic, 0, 5);
    broker.produce_to(&topic, 1, 4);
    broker.produce_to(&topic, 2, 3);
    // Partition 0 is 2 records in, partition 1 is caught up, partition 2 has no commit.
    broker.commit("workers", &topic, &[(0, 2), (1, 4)]);

    let table = stdout(&lag(&broker, &topic, "workers", &[], &[]));
    let rows: Vec<Vec<String>> = table
        .lines()
        .filter_map(|line| {
            let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            fields.first()?.parse::<i32>().ok().map(|_| fields)
        })
        .collect();
    assert_eq!(
        rows,
        [
            ["0", "2", "5", "3"],
            ["1", "4", "4", "0"],
            ["2", "-", "3", "3"]
        ],
        "{table}"
    );
    assert!(table.contains("total lag 6"), "{table}");

    let replicas = |env: &[(&str, &str)]| {
        stdout(&lag(&broker, &topic, "workers", &["--replicas"], env))
            .trim()
            .to_owned()
    };
    assert_eq!(replicas(&[("LAG_PER_REPLICA", "4")]), "2", "ceil(6 / 4)");
    assert_eq!(
        replicas(&[("LAG_PER_REPLICA", "1")]),
        "3",
        "capped at 3 partitions"
    );
    assert_eq!(
        replicas(&[("LAG_PER_REPLICA", "1"), ("MAX_REPLICAS", "2")]),
        "2",
        "capped at MAX_REPLICAS"
    );
    assert_eq!(
        replicas(&[("LAG_PER_REPLICA", "100"), ("MIN_REPLICAS", "2")]),
        "2",
        "at least MIN_REPLICAS"
    );
    let flags = stdout(&lag(
        &broker,
        &topic,
        "workers",
        &["--replicas", "--lag-per-replica", "3"],
        &[],
    ));
    assert_eq!(flags.trim(), "2", "flags work like the variables");
}

#[test]
fn a_missing_group_or_topic_is_a_clear_error() {
    let broker = Broker::start();
    let topic = broker.name("jobs");
    broker.create_topic(&topic, 2);
    let failed = |topic: &str, group: &str| {
        let output = lag(&broker, topic, group, &["--replicas"], &[]);
        assert!(!output.status.success(), "{topic}/{group} should fail");
        assert!(
            output.stdout.is_empty(),
            "nothing on stdout for kubectl to read"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = failed(&topic, "nobody");
    assert!(
        stderr.contains("consumer group \"nobody\" does not exist"),
        "{stderr}"
    );
    let stderr = failed("no-such-topic", "nobody");
    assert!(
        stderr.contains("topic \"no-such-topic\" does not exist"),
        "{stderr}"
    );
}
