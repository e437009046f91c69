//! What the operator commands print as tables: one row per item, columns padded, no
//! borders (like `kubectl get`).

use chrono::{DateTime, Utc};
use comfy_table::presets::NOTHING;
use comfy_table::Table;
use mcp_jobs_console::dead_letters::DeadLetter;
use mcp_jobs_scheduler::delayed::WaitingJob;
use mcp_jobs_scheduler::manage::Listed;
use mcp_jobs_scheduler::schedule::rfc3339;

/// `schedules list`.
pub fn schedules(listed: &[Listed]) -> String {
    let rows = listed.iter().map(|l| {
        let status = if l.invalid.is_some() {
            "invalid"
        } else if l.paused {
            "paused"
        } else {
            "active"
        };
        vec![
            l.name.clone(),
            l.cron.clone(),
            l.timezone.clone(),
            status.to_owned(),
            time(l.last_fired),
            time(l.next),
            l.upcoming
                .first()
                .map_or_else(|| "-".to_owned(), |next| next.local.clone()),
        ]
    });
    plain(
        &[
            "NAME",
            "CRON",
            "TIMEZONE",
            "STATUS",
            "LAST FIRED",
            "NEXT",
            "NEXT, ITS CLOCK",
        ],
        rows,
    )
}

/// `dlq list`.
pub fn dead_letters(letters: &[DeadLetter]) -> String {
    let rows = letters.iter().map(|l| {
        let source = match (&l.source_topic, l.source_partition, l.source_offset) {
            (Some(topic), Some(partition), Some(offset)) => format!("{topic}/{partition}/{offset}"),
            _ => "-".into(),
        };
        vec![
            time(l.at),
            l.job_id.clone().unwrap_or_else(|| "-".into()),
            l.kind.clone(),
            l.attempts.map_or_else(|| "-".into(), |a| a.to_string()),
            source,
            l.dead_letter.clone(),
            l.error.chars().take(80).collect(),
        ]
    });
    plain(
        &[
            "AT",
            "JOB",
            "KIND",
            "ATTEMPTS",
            "SOURCE",
            "DEAD LETTER",
            "ERROR",
        ],
        rows,
    )
}

/// `delayed list`.
pub fn delayed(jobs: &[WaitingJob]) -> String {
    let rows = jobs.iter().map(|job| {
        vec![
            job.job_id.clone(),
            job.due_text(),
            job.delayed_from.clone().unwrap_or_else(|| "-".into()),
            format!("{}/{}", job.partition, job.offset),
            job.bytes.to_string(),
        ]
    });
    plain(&["JOB", "DUE", "DELAYED FROM", "WAITS AT", "BYTES"], rows)
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), rfc3339)
}

fn plain(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_style(NOTHING).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
