//! The jobs in flight, as their workers report them on the status topic
//! ([`mcp_jobs_contract::status`]), followed in the background: one entry per job
//! running or waiting for its next attempt (its status, a few hundred bytes), gone
//! when the worker's tombstone for it arrives. What it holds grows with the jobs in
//! flight, which the workers' windows bound, not with the jobs run.

use std::collections::HashMap;

use mcp_jobs_contract::status::JobStatus;
use mcp_jobs_contract::task::JobState;
use mcp_jobs_contract::JsonRecord;
use mcp_jobs_kafka::follow::View;
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use serde::Serialize;

/// The jobs in flight, by jobID.
#[derive(Default)]
pub struct InFlight {
    jobs: HashMap<String, JobStatus>,
}

impl View for InFlight {
    fn apply(&mut self, message: &BorrowedMessage<'_>) {
        let Some(job_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return;
        };
        match message.payload().map(JobStatus::from_record) {
            Some(Ok(status)) => {
                self.jobs.insert(job_id.to_owned(), status);
            }
            // A tombstone; or a record no worker of this version writes, which says
            // nothing about the job being in flight.
            None | Some(Err(_)) => {
                self.jobs.remove(job_id);
            }
        }
    }
}

/// A job in flight, as a page shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInFlight {
    #[serde(rename = "jobID")]
    pub job_id: String,
    #[serde(flatten)]
    pub status: JobStatus,
}

/// What the Now page shows of the jobs in flight.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NowPage {
    /// The longest running first: a job stuck shows at the top.
    pub running: Vec<JobInFlight>,
    pub running_total: usize,
    /// The next to be tried again first.
    pub retrying: Vec<JobInFlight>,
    pub retrying_total: usize,
    /// How many of those in flight are durable tasks.
    pub tasks: usize,
    /// Whether the status topic has been read to its end (if not, more may be in flight).
    pub loaded: bool,
}

impl InFlight {
    /// Job `job_id`'s status, if it is in flight.
    pub fn get(&self, job_id: &str) -> Option<JobStatus> {
        self.jobs.get(job_id).cloned()
    }

    /// The first `limit` jobs running and retrying, and how many there are of each.
    pub fn page(&self, limit: usize, loaded: bool) -> NowPage {
        let (mut running, mut retrying): (Vec<_>, Vec<_>) = self
            .jobs
            .iter()
            .partition(|(_, status)| status.state != JobState::Retrying);
        let (running_total, retrying_total) = (running.len(), retrying.len());
        running.sort_by_key(|(id, status)| (status.at, *id));
        retrying.sort_by_key(|(id, status)| (status.next_attempt_at.unwrap_or(status.at), *id));
        let shown = |jobs: Vec<(&String, &JobStatus)>| -> Vec<JobInFlight> {
            jobs.into_iter()
                .take(limit)
                .map(|(id, status)| JobInFlight {
                    job_id: id.clone(),
                    status: status.clone(),
                })
                .collect()
        };
        NowPage {
            running: shown(running),
            running_total,
            retrying: shown(retrying),
            retrying_total,
            tasks: self.jobs.values().filter(|status| status.task).count(),
            loaded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: JobState, at_s: i64, task: bool) -> JobStatus {
        let at = chrono::DateTime::from_timestamp(1_800_000_000 + at_s, 0).unwrap_or_default();
        JobStatus {
            state,
            worker: "w-1".into(),
            attempt: 1,
            started_at: at,
            at,
            job_type: "tool-call".into(),
            calls: vec!["time/get_current_time".into()],
            more_calls: 0,
            error: None,
            next_attempt_at: None,
            task,
        }
    }

    #[test]
    fn the_longest_running_come_first_and_totals_count_them_all() {
        let mut in_flight = InFlight::default();
        for (id, state, at, task) in [
            ("b", JobState::Running, 20, false),
            ("a", JobState::Running, 10, true),
            ("c", JobState::Retrying, 5, false),
            ("d", JobState::Running, 30, false),
        ] {
            in_flight.jobs.insert(id.into(), status(state, at, task));
        }
        let page = in_flight.page(2, true);
        let ids: Vec<&str> = page.running.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            (page.running_total, page.retrying_total, page.tasks),
            (3, 1, 1)
        );
        assert_eq!(page.retrying[0].job_id, "c");
    }
}
