//! Schedules and delayed jobs end to end: real broker, real dispatchers (`kafka-worker
//! scheduler` and `run`), real worker and mcp-server running the jobs, the
//! `kafka-worker schedules` and `publish --in` commands as an operator types them.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mcp_jobs_e2e::{
    fixture, free_port, headers, outcomes_of, publish_later, sample, scrape, start_dispatcher,
    start_worker, wait_for, worker_cli, worker_cli_ok, worker_command, Broker, Deployment,
    McpServer, Outcome, Process, Record, Status,
};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

/// A schedules file with one schedule of `cron` whose job calls the fixture's `tool`.
fn schedules_file(
    name: &str,
    cron: &str,
    tool: &str,
    arguments: Value,
    extra: Value,
) -> tempfile::NamedTempFile {
    let mut schedule = json!({
        "name": name,
        "cron": cron,
        "job": {
            "jobType": "tool-call",
            "payload": {
                "mcpServers": { "fx": { "command": fixture() } },
                "server": "fx", "tool": tool, "arguments": arguments
            }
        }
    });
    if let (Some(schedule), Some(extra)) = (schedule.as_object_mut(), extra.as_object()) {
        schedule.extend(extra.clone());
    }
    let file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), json!({ "schedules": [schedule] }).to_string())
        .expect("write schedules");
    file
}

fn apply(broker: &Broker, topic: &str, file: &tempfile::NamedTempFile) -> String {
    worker_cli_ok(
        broker,
        topic,
        &[
            "schedules",
            "apply",
            file.path().to_str().expect("utf-8 path"),
        ],
    )
}

/// The nominal time in an occurrence's jobID (`name@2026-12-02T03:00:00Z`).
fn nominal(job_id: &str) -> DateTime<Utc> {
    let (_, time) = job_id.split_once('@').expect("name@time");
    DateTime::parse_from_rfc3339(time)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// The jobs of schedule `name` on the jobs topic, by jobID, in the order published.
fn occurrences(broker: &Broker, topic: &str, name: &str) -> Vec<(String, Record)> {
    broker
        .read_all(topic)
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(name))
        .map(|r| (r.json()["jobID"].as_str().expect("jobID").to_owned(), r))
        .collect()
}

/// Waits until `/ready` of the dispatcher on `port` says it is active.
fn wait_active(port: u16, process: &mut Process) {
    let url = format!("http://127.0.0.1:{port}/ready");
    wait_for("the dispatcher to be active", MINUTE, || {
        assert!(
            process.is_running(),
            "the dispatcher exited: {}",
            process.output()
        );
        let body = reqwest::blocking::get(&url).ok()?.text().ok()?;
        body.contains("scheduler: active").then_some(())
    });
}

fn metric(port: u16, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(
        &scrape(&format!("http://127.0.0.1:{port}/metrics")),
        name,
        labels,
    )
    .unwrap_or(0.0)
}

/// Two dispatchers, a schedule every 3 s, the active one SIGKILLed after 20 s: over
/// the minute, every occurrence is on the jobs topic exactly once, none missed, and
/// each has an outcome.
#[test]
fn two_dispatchers_fire_every_occurrence_once_across_a_sigkill() {
    let deployment = Deployment::new("sched-failover").partitions(3).start();
    let (broker, topic, group) = deployment.parts();
    let file = schedules_file(
        "every3",
        "*/3 * * * * *",
        "echo",
        json!({"text": "tick"}),
        json!({"overlap": "allow"}),
    );
    apply(broker, topic, &file);

    let (port_a, port_b) = (free_port(), free_port());
    let mut first = start_dispatcher(broker, topic, group, port_a, "dispatcher-a");
    wait_active(port_a, &mut first);
    let mut second = start_dispatcher(broker, topic, group, port_b, "dispatcher-b");
    wait_for("the second dispatcher to stand by", MINUTE, || {
        let body = reqwest::blocking::get(format!("http://127.0.0.1:{port_b}/ready"))
            .ok()?
            .text()
            .ok()?;
        body.contains("scheduler: standby (active: dispatcher-a)")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(20));
    let fired_by_first = metric(
        port_a,
        "mcp_jobs_scheduler_fired_total",
        &[("schedule", "every3")],
    );
    assert!(
        fired_by_first >= 5.0,
        "the first dispatcher fired {fired_by_first}"
    );
    first.kill9();
    let killed_at = Utc::now();
    wait_active(port_b, &mut second);
    std::thread::sleep(Duration::from_secs(40));
    // What the dead one missed fired late, once the second took over.
    let late = metric(
        port_b,
        "mcp_jobs_scheduler_late_total",
        &[("schedule", "every3")],
    );
    assert!(late >= 1.0, "no occurrence fired late after the takeover");
    second.terminate(MINUTE);
    // One line per occurrence is DEBUG: at INFO a minute's are summed up in one.
    let log = second.output();
    assert!(!log.contains("occurrence fired"), "{log}");

    let fired = occurrences(broker, topic, "every3");
    let ids: Vec<&str> = fired.iter().map(|(id, _)| id.as_str()).collect();
    let distinct: BTreeSet<DateTime<Utc>> = ids.iter().map(|id| nominal(id)).collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "an occurrence fired twice: {ids:?}"
    );
    let first_time = *distinct.first().expect("occurrences");
    let last_time = *distinct.last().expect("occurrences");
    assert!(
        last_time - first_time >= chrono::Duration::seconds(60),
        "{first_time} to {last_time}"
    );
    let expected = (last_time - first_time).num_seconds() / 3 + 1;
    assert_eq!(
        distinct.len() as i64,
        expected,
        "an occurrence is missing: {ids:?}"
    );
    assert!(
        distinct.iter().any(|t| *t > killed_at),
        "the second dispatcher fired nothing"
    );

    let outcomes = outcomes_of(broker, topic, ids.len(), MINUTE);
    for id in &ids {
        let outcome = outcomes
            .iter()
            .find(|o| o.job_id.as_deref() == Some(*id))
            .unwrap_or_else(|| panic!("no outcome for {id}"));
        assert_eq!(outcome.status, Status::Succeeded, "{outcome:#?}");
        let due = DateTime::parse_from_rfc3339(id.split_once('@').expect("@").1)
            .expect("RFC 3339")
            .with_timezone(&Utc);
        assert_eq!(outcome.scheduled_at, Some(due), "{outcome:#?}");
    }
}

/// A job 15 s ahead with three jobs behind it on the same partition and key: the
/// three finish first; it waits in the delayed topic and starts at its time.
#[test]
fn a_delayed_job_waits_in_the_delayed_topic_without_holding_its_partition() {
    // The deployment's shape: the worker runs the dispatcher too.
    let deployment = Deployment::new("delayed")
        .worker_env(&[("SCHEDULER_ENABLED", "true")])
        .start();
    let (broker, topic, _) = deployment.parts();

    let job = |id: &str| {
        serde_json::to_vec(&mcp_jobs_e2e::fixture_job(id, "echo", json!({"text": id})))
            .expect("json")
    };
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), job("later")).expect("job file");
    let published_at = Utc::now();
    let published = worker_cli(
        broker,
        topic,
        &[
            "publish",
            "--in",
            "15s",
            "--key",
            "k",
            file.path().to_str().expect("utf-8"),
        ],
    );
    let said = String::from_utf8_lossy(&published.stderr);
    assert!(published.status.success(), "{said}");
    // The harness sets RDKAFKA_SESSION_TIMEOUT_MS, as the README advises: a producer is
    // not given it, so it does not warn that it ignores it.
    assert!(!said.contains("CONFWARN"), "{said}");
    let behind: Vec<Vec<u8>> = ["behind-1", "behind-2", "behind-3"].map(job).into();
    broker.produce(
        topic,
        &behind
            .iter()
            .map(|j| (Some("k"), j.as_slice()))
            .collect::<Vec<_>>(),
    );

    let outcomes = outcomes_of(broker, topic, 4, MINUTE);
    let by_id: HashMap<&str, &Outcome> = outcomes
        .iter()
        .filter_map(|o| Some((o.job_id.as_deref()?, o)))
        .collect();
    let later = by_id["later"];
    assert_eq!(later.status, Status::Succeeded, "{later:#?}");
    let due = later.scheduled_at.expect("scheduledAt");
    assert!(
        due - published_at >= chrono::Duration::seconds(14),
        "due {due}, published {published_at}"
    );
    let started = later.started_at;
    assert!(started >= due, "started {started} before it was due {due}");
    assert!(
        started - due < chrono::Duration::seconds(5),
        "started {started}, due {due}"
    );
    for id in ["behind-1", "behind-2", "behind-3"] {
        let finished = by_id[id].finished_at;
        assert!(
            finished < due,
            "{id} finished at {finished}, after the delayed job was due"
        );
    }
    // It waited as a record keyed by its jobID, and left a tombstone when sent.
    let delayed = broker.read_all(&format!("{topic}.delayed"));
    let keys: Vec<(Option<&str>, bool)> = delayed
        .iter()
        .map(|r| (r.key.as_deref(), r.payload.is_empty()))
        .collect();
    assert_eq!(keys, [(Some("later"), false), (Some("later"), true)]);
    assert_eq!(delayed[0].header(headers::ORIGINAL_KEY), Some("k"));
}

/// Two jobs 8 s ahead, as an operator sees them with `kafka-worker delayed`: both listed
/// (earliest first), one shown with its secrets hidden, one cancelled. The cancelled one
/// never runs and its result record says it was cancelled; the other runs at its time.
#[test]
fn a_waiting_job_is_listed_shown_and_cancelled_and_never_runs() {
    let deployment = Deployment::new("delayed-cancel")
        .worker_env(&[("SCHEDULER_ENABLED", "true")])
        .start();
    let (broker, topic, _) = deployment.parts();
    let mut secret = mcp_jobs_e2e::fixture_job("cancel-me", "echo", json!({"text": "no"}));
    secret["payload"]["mcpServers"]["fx"]["env"] = json!({"TOKEN": "hunter2-secret"});
    publish_later(broker, topic, &secret, "8s");
    let kept = mcp_jobs_e2e::fixture_job("keep-me", "echo", json!({"text": "yes"}));
    publish_later(broker, topic, &kept, "9s");

    let listed = wait_for("both jobs waiting", MINUTE, || {
        let out = worker_cli_ok(broker, topic, &["delayed", "list", "--json"]);
        let listed: Vec<Value> = serde_json::from_str(&out).expect("a JSON list");
        (listed.len() == 2).then_some(listed)
    });
    let ids: Vec<&str> = listed.iter().filter_map(|j| j["jobId"].as_str()).collect();
    assert_eq!(
        ids,
        ["cancel-me", "keep-me"],
        "earliest due first: {listed:#?}"
    );
    let table = worker_cli(broker, topic, &["delayed", "list"]);
    let said = String::from_utf8_lossy(&table.stderr);
    assert!(said.contains("2 shown of 2 waiting"), "{said}");

    let shown = worker_cli_ok(broker, topic, &["delayed", "show", "cancel-me", "--json"]);
    assert!(!shown.contains("hunter2"), "a secret shown: {shown}");
    let shown: Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["waiting"]["jobId"], "cancel-me");
    assert_eq!(shown["job"]["payload"]["tool"], "echo");
    assert!(shown["waiting"]["due"].as_str().is_some(), "{shown:#?}");

    let cancelled = worker_cli_ok(broker, topic, &["delayed", "cancel", "cancel-me"]);
    assert!(cancelled.contains("cancelled cancel-me"), "{cancelled}");
    for (args, why) in [
        (
            ["delayed", "cancel", "cancel-me"],
            "no job \"cancel-me\" waits",
        ),
        (["delayed", "show", "nobody"], "no job \"nobody\" waits"),
    ] {
        let refused = worker_cli(broker, topic, &args);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && said.contains(why),
            "{args:?}: {said}"
        );
    }
    let left = worker_cli_ok(broker, topic, &["delayed", "list", "--json"]);
    let left: Vec<Value> = serde_json::from_str(&left).expect("a JSON list");
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["jobId"], "keep-me");

    outcomes_of(broker, topic, 2, MINUTE);
    // The kept job ran at its time, after the cancelled one was due: had that one been
    // sent, it would have run by now too.
    std::thread::sleep(Duration::from_secs(3));
    let outcomes = broker
        .read_all(&format!("{topic}.results"))
        .iter()
        .map(Record::outcome)
        .collect::<Vec<_>>();
    let of = |id: &str| -> Vec<&Outcome> {
        outcomes
            .iter()
            .filter(|o| o.job_id.as_deref() == Some(id))
            .collect()
    };
    assert_eq!(of("keep-me").len(), 1, "{outcomes:#?}");
    assert_eq!(of("keep-me")[0].status, Status::Succeeded);
    let gone = of("cancel-me");
    assert_eq!(gone.len(), 1, "the cancelled job ran: {outcomes:#?}");
    assert_eq!(gone[0].error_kind(), Some("cancelled"), "{:#?}", gone[0]);
    assert!(
        gone[0]
            .error_message()
            .unwrap_or_default()
            .contains("while waiting for its time"),
        "{:#?}",
        gone[0]
    );
    let dead_letters = broker.read_all(&format!("{topic}.dlq"));
    assert!(
        dead_letters.is_empty(),
        "a cancellation is no fault: {}",
        dead_letters.len()
    );
}

/// All dispatchers down for 25 s under a schedule every 2 s with a 10 s catch-up
/// window: on restart, the occurrences missed by at most 10 s fire late, oldest
/// first; the older ones are skipped and counted.
#[test]
fn missed_occurrences_fire_late_inside_the_catchup_window_and_are_skipped_outside() {
    let broker = Broker::start();
    let topic = broker.name("catchup");
    let group = broker.name("g-catchup");
    broker.create_job_topics(&topic, 1);
    let file = schedules_file(
        "every2",
        "*/2 * * * * *",
        "echo",
        json!({"text": "x"}),
        json!({"overlap": "allow", "catchupWindow": "10s"}),
    );
    apply(&broker, &topic, &file);

    let port = free_port();
    let mut dispatcher = start_dispatcher(&broker, &topic, &group, port, "before");
    wait_active(port, &mut dispatcher);
    wait_for("two occurrences", MINUTE, || {
        (metric(
            port,
            "mcp_jobs_scheduler_fired_total",
            &[("schedule", "every2")],
        ) >= 2.0)
            .then_some(())
    });
    dispatcher.kill9();
    let down_since = Utc::now();
    std::thread::sleep(Duration::from_secs(25));
    let port = free_port();
    let restarted_at = Utc::now();
    let mut dispatcher = start_dispatcher(&broker, &topic, &group, port, "after");
    wait_active(port, &mut dispatcher);
    wait_for("an occurrence on time after the restart", MINUTE, || {
        let fired = occurrences(&broker, &topic, "every2");
        fired
            .iter()
            .any(|(id, _)| nominal(id) > restarted_at + chrono::Duration::seconds(10))
            .then_some(())
    });
    let skipped = metric(
        port,
        "mcp_jobs_scheduler_skipped_total",
        &[("schedule", "every2"), ("reason", "outside_catchup")],
    );
    let late = metric(
        port,
        "mcp_jobs_scheduler_late_total",
        &[("schedule", "every2")],
    );
    dispatcher.terminate(MINUTE);

    let fired = occurrences(&broker, &topic, "every2");
    let times: Vec<DateTime<Utc>> = fired.iter().map(|(id, _)| nominal(id)).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "not oldest first, or repeated: {times:?}"
    );
    let last_before = *times
        .iter()
        .filter(|t| **t <= down_since)
        .max()
        .expect("fired before the kill");
    let first_after = *times
        .iter()
        .find(|t| **t > last_before)
        .expect("fired after the restart");
    // Every occurrence from the first one fired after the restart on is there.
    let missing_after = (times.last().copied().expect("times") - first_after).num_seconds() / 2 + 1
        - times.iter().filter(|t| **t >= first_after).count() as i64;
    assert_eq!(missing_after, 0, "{times:?}");
    // Those between were skipped, and counted; the ones fired late were inside the window.
    let gap = (first_after - last_before).num_seconds() / 2 - 1;
    assert!(gap >= 5, "a gap of {gap} occurrences: {times:?}");
    assert_eq!(
        skipped as i64, gap,
        "skipped occurrences are counted: {times:?}"
    );
    assert!(late >= 3.0, "late occurrences: {late}");
    for (id, record) in &fired {
        let published =
            DateTime::from_timestamp_millis(record.timestamp_ms.expect("timestamp")).expect("time");
        assert!(
            published - nominal(id) <= chrono::Duration::seconds(11),
            "{id} fired at {published}, outside its 10 s catch-up window"
        );
    }
}

/// A schedule every 2 s whose job takes 5 s, under `overlap: skip` (the default): runs
/// never overlap, and the occurrences in between are skipped. Then pause, resume,
/// trigger, delete, and files with mistakes.
#[test]
fn overlap_skip_pause_resume_trigger_delete_and_bad_files() {
    let deployment = Deployment::new("overlap").start();
    let (broker, topic, group) = deployment.parts();
    let file = schedules_file(
        "slow",
        "*/2 * * * * *",
        "sleep",
        json!({"ms": 5000}),
        json!({}),
    );
    assert!(apply(broker, topic, &file).contains("created 1"));
    assert!(apply(broker, topic, &file).contains("unchanged 1"));
    let port = free_port();
    let mut dispatcher = start_dispatcher(broker, topic, group, port, "only");
    wait_active(port, &mut dispatcher);

    let outcomes = outcomes_of(broker, topic, 3, MINUTE);
    let mut runs: Vec<_> = outcomes
        .iter()
        .map(|o| (o.started_at, o.finished_at))
        .collect();
    runs.sort();
    for pair in runs.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlap: {pair:?}");
    }
    let overlapped = metric(
        port,
        "mcp_jobs_scheduler_skipped_total",
        &[("schedule", "slow"), ("reason", "overlap")],
    );
    assert!(overlapped >= 2.0, "skipped for overlap: {overlapped}");

    assert!(worker_cli_ok(broker, topic, &["schedules", "pause", "slow"]).contains("slow paused"));
    let paused_at = Utc::now();
    let listed: Value = serde_json::from_str(&worker_cli_ok(
        broker,
        topic,
        &["schedules", "list", "--json"],
    ))
    .expect("json");
    assert_eq!(listed[0]["paused"], true, "{listed:#}");
    std::thread::sleep(Duration::from_secs(8));
    let fired = occurrences(broker, topic, "slow");
    assert!(
        fired
            .iter()
            .all(|(id, _)| nominal(id) <= paused_at + chrono::Duration::seconds(1)),
        "fired while paused: {:?}",
        fired.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );

    assert!(
        worker_cli_ok(broker, topic, &["schedules", "resume", "slow"]).contains("slow resumed")
    );
    let resumed_at = Utc::now();
    wait_for("an occurrence after resume", MINUTE, || {
        occurrences(broker, topic, "slow")
            .iter()
            .any(|(id, _)| nominal(id) > resumed_at)
            .then_some(())
    });
    let table = worker_cli_ok(broker, topic, &["schedules", "list"]);
    assert!(
        table.starts_with("NAME") && table.contains("slow") && table.contains("active"),
        "{table}"
    );

    let triggered = worker_cli_ok(broker, topic, &["schedules", "trigger", "slow"]);
    let trigger_id = triggered
        .split_whitespace()
        .find(|w| w.starts_with("slow@"))
        .unwrap_or_else(|| panic!("no job id in {triggered:?}"))
        .to_owned();
    wait_for("the triggered job", MINUTE, || {
        occurrences(broker, topic, "slow")
            .iter()
            .any(|(id, _)| *id == trigger_id)
            .then_some(())
    });

    assert!(
        worker_cli_ok(broker, topic, &["schedules", "delete", "slow"]).contains("deleted slow")
    );
    let deleted_at = Instant::now();
    let count_after_delete = |broker: &Broker| occurrences(broker, topic, "slow").len();
    let before = count_after_delete(broker);
    std::thread::sleep(Duration::from_secs(6).saturating_sub(deleted_at.elapsed()));
    assert!(
        count_after_delete(broker) <= before + 1,
        "fired after delete"
    );
    let listed: Value = serde_json::from_str(&worker_cli_ok(
        broker,
        topic,
        &["schedules", "list", "--json"],
    ))
    .expect("json");
    assert_eq!(listed, json!([]));
    let unknown = worker_cli(broker, topic, &["schedules", "pause", "slow"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no schedule named \"slow\""));
    // The run in flight at the delete finished since (its job takes 5 s): the
    // dispatcher wrote no state for the schedule that is gone.
    let last_state = broker
        .read_all(&format!("{topic}.schedules"))
        .into_iter()
        .rfind(|r| r.key.as_deref() == Some("slow/state"))
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned());
    assert_eq!(
        last_state.as_deref(),
        Some(""),
        "a live state record is left"
    );
    // Re-created under the same name, it inherits nothing: what it has fired, it
    // fired since.
    let recreated_at = Utc::now();
    assert!(apply(broker, topic, &file).contains("created 1"));
    let listed: Value = serde_json::from_str(&worker_cli_ok(
        broker,
        topic,
        &["schedules", "list", "--json"],
    ))
    .expect("json");
    let inherited = listed[0]["lastFired"]
        .as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|at| at < recreated_at - chrono::Duration::seconds(1));
    assert!(!inherited, "{listed:#}");
    assert!(
        worker_cli_ok(broker, topic, &["schedules", "delete", "slow"]).contains("deleted slow")
    );
    // A record that is not a schedule can be removed by its key.
    broker.produce(
        &format!("{topic}.schedules"),
        &[(Some("junk"), b"not json".as_slice())],
    );
    assert!(
        worker_cli_ok(broker, topic, &["schedules", "delete", "--key", "junk"])
            .contains("deleted the record with key \"junk\"")
    );
    let junk = broker
        .read_all(&format!("{topic}.schedules"))
        .into_iter()
        .rfind(|r| r.key.as_deref() == Some("junk"))
        .map(|r| r.payload);
    assert_eq!(junk, Some(Vec::new()), "tombstoned");
    // A reader that goes away early (`schedules list | head`) is no error.
    let mut command = worker_command(broker, topic, "cli", &[]);
    let mut listing = command
        .args(["schedules", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kafka-worker schedules list");
    drop(listing.stdout.take());
    let closed = listing.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(
        closed.status.success() && !stderr.contains("Broken pipe"),
        "{stderr}"
    );

    // A file with mistakes changes nothing and names each one.
    let bad = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    std::fs::write(
        bad.path(),
        format!(
            "schedules:\n  - name: good\n    cron: '@hourly'\n    job: {{jobType: list-tools, payload: {{mcpServers: {{t: {{command: {fx}}}}}}}}}\n  - name: bad-cron\n    cron: '99 * * * *'\n    job: {{jobType: list-tools, payload: {{mcpServers: {{t: {{command: {fx}}}}}}}}}\n  - name: bad-zone\n    cron: '@daily'\n    timezone: Europe/Atlantis\n    job: {{jobType: list-tools, payload: {{mcpServers: {{t: {{command: {fx}}}}}}}}}\n  - name: no-type\n    cron: '@daily'\n    job: {{payload: {{mcpServers: {{t: {{command: {fx}}}}}}}}}\n",
            fx = fixture()
        ),
    )
    .expect("write");
    let refused = worker_cli(
        broker,
        topic,
        &["schedules", "apply", bad.path().to_str().expect("utf-8")],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    for field in [
        "schedules[1].cron",
        "schedules[2].timezone",
        "schedules[3].job.jobType",
    ] {
        assert!(stderr.contains(field), "{field} is not named: {stderr}");
    }
    let listed: Value = serde_json::from_str(&worker_cli_ok(
        broker,
        topic,
        &["schedules", "list", "--json"],
    ))
    .expect("json");
    assert_eq!(listed, json!([]), "a bad file changed something");
    dispatcher.terminate(MINUTE);
}

/// Every command an operator waits for, against a broker that is not there: one error
/// naming the brokers and the wait, within the wait (and a little), not a hang or a
/// screen of librdkafka retries.
#[test]
fn commands_against_an_unreachable_broker_fail_in_bounded_time_with_one_error() {
    let broker = Broker::start();
    let topic = broker.name("unreachable");
    let job = tempfile::NamedTempFile::new().expect("temp file");
    let message = mcp_jobs_e2e::fixture_job("j", "echo", json!({"text": "x"}));
    std::fs::write(job.path(), message.to_string()).expect("job file");
    let job = job.path().to_str().expect("utf-8");
    let closed = format!("127.0.0.1:{}", free_port());
    for args in [
        vec!["publish", job],
        vec!["publish", "--in", "5m", job],
        vec!["schedules", "list"],
        vec!["dlq", "list"],
        vec!["lag"],
        vec!["create-topics"],
    ] {
        let started = Instant::now();
        let output = worker_command(
            &broker,
            &topic,
            "cli",
            &[
                ("KAFKA_BROKERS", closed.as_str()),
                ("KAFKA_CLI_TIMEOUT", "3s"),
                ("RUST_BACKTRACE", "0"),
            ],
        )
        .args(&args)
        .output()
        .expect("kafka-worker runs");
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
        assert!(
            stderr.contains(&format!(
                "cannot reach Kafka at {closed} (KAFKA_BROKERS) within 3s"
            )),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("ERROR"), "{args:?}: {stderr}");
    }
}

/// `create-topics` makes every topic as mcp-jobs needs it, and says what is wrong with
/// topics that were there already (made by hand, or auto-created by the broker).
#[test]
fn create_topics_checks_what_exists_and_the_worker_never_auto_creates_the_delayed_topic() {
    let broker = Broker::start();
    let fresh = broker.name("fresh");
    let made = worker_cli(&broker, &fresh, &["create-topics", "--partitions", "3"]);
    let said = String::from_utf8_lossy(&made.stderr);
    assert!(
        made.status.success() && said.contains("topics ready (8 created)"),
        "{said}"
    );
    let again = worker_cli(&broker, &fresh, &["create-topics", "--partitions", "3"]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && said.contains("topics ready (0 created)"),
        "{said}"
    );

    // As an auto-creating broker or a hasty operator would leave them.
    let topic = broker.name("by-hand");
    broker.create_topic(&topic, 1);
    broker.create_topic_with(
        &format!("{topic}.results"),
        3,
        &[("max.message.bytes", "100000")],
    );
    broker.create_topic(&format!("{topic}.dlq"), 3);
    broker.create_topic(&format!("{topic}.delayed"), 3);
    broker.create_topic_with(
        &format!("{topic}.schedules"),
        2,
        &[("cleanup.policy", "compact")],
    );
    let checked = worker_cli(&broker, &topic, &["create-topics", "--partitions", "3"]);
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success(), "{said}");
    for problem in [
        format!("{topic} (the jobs topic) has 1 partitions, fewer than the 3 asked for"),
        format!("{topic}.results (the results topic) takes records of at most 100000 bytes"),
        format!("{topic}.delayed (the delayed-jobs topic (a job waits there until it is due)) has cleanup.policy=delete"),
        format!("{topic}.schedules (the schedules topic (its one partition elects the dispatcher)) has 2 partitions"),
    ] {
        assert!(said.contains(&problem), "{problem}\nnot in:\n{said}");
    }
    assert!(
        said.contains("4 of the topics are not as mcp-jobs needs them"),
        "{said}"
    );

    // No delayed topic: a job not due yet is refused with the reason, and the worker
    // does not make the topic.
    let bare = broker.name("no-delayed");
    broker.create_topic(&bare, 1);
    broker.create_topic(&format!("{bare}.results"), 1);
    broker.create_topic(&format!("{bare}.dlq"), 1);
    let server = McpServer::start(&[]);
    let _worker = start_worker(
        &broker,
        &server.url(),
        &bare,
        &broker.name("g-no-delayed"),
        &[],
    );
    let mut job = mcp_jobs_e2e::fixture_job("later", "echo", json!({"text": "x"}));
    job["scheduledAt"] = json!((Utc::now() + chrono::Duration::minutes(5)).to_rfc3339());
    let bytes = job.to_string().into_bytes();
    broker.produce(&bare, &[(None, bytes.as_slice())]);
    let outcome = outcomes_of(&broker, &bare, 1, MINUTE).remove(0);
    assert_eq!(outcome.status, Status::Failed, "{outcome:#?}");
    assert_eq!(outcome.error_kind(), Some("delay_refused"), "{outcome:#?}");
    let message = outcome.error_message().unwrap_or_default();
    assert!(
        message.contains(&format!("the delayed topic {bare}.delayed does not exist"))
            && message.contains("kafka-worker create-topics"),
        "{message}"
    );
    let listed = worker_cli(&broker, &bare, &["create-topics", "--partitions", "1"]);
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("(5 created)"),
        "the worker created a topic: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

/// With `SCHEDULER_ENABLED=false` on every worker nothing dispatches: `publish --in`,
/// `schedules list`, the worker's `/ready` and metrics and the console's overview all
/// say so, until a dispatcher runs (and the waiting job then runs).
#[test]
fn with_no_dispatcher_anywhere_every_view_says_so() {
    let worker_port = free_port();
    let port = worker_port.to_string();
    let deployment = Deployment::new("no-dispatcher")
        .worker_env(&[("METRICS_PORT", port.as_str())])
        .start();
    let (broker, topic, group) = deployment.parts();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let job = mcp_jobs_e2e::fixture_job("waits", "echo", json!({"text": "x"}));
    std::fs::write(file.path(), job.to_string()).expect("job file");
    let job_path = file.path().to_str().expect("utf-8");
    let none_active = format!("no active dispatcher in group {group}.scheduler");
    // The CLI as an operator of this deployment runs it: its group named.
    let cli = |args: &[&str]| {
        worker_command(broker, topic, group, &[])
            .args(args)
            .output()
            .expect("kafka-worker runs")
    };

    let published = cli(&["publish", "--in", "5s", job_path]);
    let said = String::from_utf8_lossy(&published.stderr);
    assert!(published.status.success(), "{said}");
    assert!(said.contains(&format!("warning: {none_active}")), "{said}");
    let listed = cli(&["schedules", "list"]);
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(said.contains(&none_active), "{said}");

    let ready_url = format!("http://127.0.0.1:{worker_port}/ready");
    let ready = |needle: &str| {
        let needle = needle.to_owned();
        wait_for(&format!("/ready to say {needle:?}"), MINUTE, || {
            let body = reqwest::blocking::get(&ready_url).ok()?.text().ok()?;
            body.contains(&needle).then_some(body)
        })
    };
    ready(&none_active);
    let seen = sample(
        &scrape(&format!("http://127.0.0.1:{worker_port}/metrics")),
        "mcp_jobs_scheduler_dispatcher_seen",
        &[],
    );
    assert_eq!(seen, Some(0.0));

    // The console's overview says it too.
    let console_port = free_port();
    let _console = mcp_jobs_e2e::start_console(
        broker,
        topic,
        console_port,
        &[("CONSOLE_API_KEYS", "k"), ("MCP_CONSUMER_GROUP", group)],
    );
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = client
        .post(format!("http://127.0.0.1:{console_port}/login"))
        .form(&[("key", "k"), ("next", "/")])
        .send()
        .expect("login");
    let cookie = mcp_jobs_e2e::session_cookie(&login);
    wait_for(
        "the overview to say no dispatcher is active",
        MINUTE,
        || {
            let page = client
                .get(format!("http://127.0.0.1:{console_port}/"))
                .header("cookie", &cookie)
                .send()
                .ok()?
                .text()
                .ok()?;
            page.contains(&none_active).then_some(())
        },
    );

    // A dispatcher starts: the job that waited runs, and the warnings stop.
    let dispatcher_port = free_port();
    let _dispatcher = start_dispatcher(broker, topic, group, dispatcher_port, "the-one");
    let outcome = outcomes_of(broker, topic, 1, MINUTE).remove(0);
    assert_eq!(outcome.job_id.as_deref(), Some("waits"));
    assert_eq!(outcome.status, Status::Succeeded, "{outcome:#?}");
    ready("active: the-one");
    let listed = cli(&["schedules", "list"]);
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(!said.contains("no active dispatcher"), "{said}");
}
