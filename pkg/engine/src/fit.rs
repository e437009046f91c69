//! Every outcome fits in a record. A result or a dead letter larger than the limit is
//! cut to fit before it is produced, so the broker is never the first to say no and
//! a large tool result can never stall a partition behind a write retried for ever.
//!
//! A cut result keeps every server's output that fits whole, smallest first; each of
//! the others becomes a marker with its size, its sha256 and as much of its JSON as
//! fits: `{"truncated": true, "originalBytes": N, "sha256": "…", "preview": "…"}`.

use mcp_jobs_contract::headers::{ORIGINAL_BYTES, ORIGINAL_SHA256, TRUNCATED};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use mcp_jobs_contract::outcome::Outcome;

/// The least the limits may be: room for a failed record with its markers.
pub const MIN_RECORD_BYTES: usize = 4096;

/// The longest error message a cut record keeps.
const MAX_CUT_ERROR_CHARS: usize = 1024;

/// A result record ready to produce.
#[derive(Debug)]
pub struct Fitted {
    pub record: Vec<u8>,
    /// Whether anything was cut to make it fit.
    pub truncated: bool,
}

/// The record of `outcome`, at most `max_bytes` long.
pub fn fit_outcome(outcome: &Outcome, max_bytes: usize) -> Fitted {
    let whole = outcome.record();
    if whole.len() <= max_bytes {
        return Fitted {
            record: whole,
            truncated: false,
        };
    }
    let mut cut = outcome.clone();
    if let Some(error) = &mut cut.error {
        error.message = error.shortened(MAX_CUT_ERROR_CHARS);
    }
    let outputs: Vec<Output> = outcome
        .results
        .iter()
        .flatten()
        .map(|(server, output)| Output::of(server, output))
        .collect();
    let markers: Map<String, Value> = outputs
        .iter()
        .map(|output| (output.server.clone(), output.marker("")))
        .collect();
    cut.results = outcome.results.as_ref().map(|_| markers);
    let mut size = cut.record().len();
    if size > max_bytes {
        // Too many servers for even their markers: one marker for all of them.
        let all = outcome
            .results
            .as_ref()
            .map(|results| Output::of("*", results))
            .map(|all| all.marker(""));
        cut.results = all.map(|marker| Map::from_iter([("*".to_owned(), marker)]));
        return Fitted {
            record: cut.record(),
            truncated: true,
        };
    }

    // Whole outputs first, smallest first, while they fit.
    let mut by_size: Vec<&Output> = outputs.iter().collect();
    by_size.sort_by_key(|output| output.json.len());
    let mut still_cut = Vec::new();
    for output in by_size {
        let results = cut.results.get_or_insert_with(Map::new);
        let placeholder = results
            .get(&output.server)
            .map(encoded_len)
            .unwrap_or_default();
        let grows_by = output.json.len().saturating_sub(placeholder);
        if size + grows_by <= max_bytes {
            if let Some(whole) = outcome.results.as_ref().and_then(|r| r.get(&output.server)) {
                results.insert(output.server.clone(), whole.clone());
            }
            size += grows_by;
        } else {
            still_cut.push(output);
        }
    }

    // Then a share of what is left for each cut output's preview.
    let mut remaining = still_cut.len();
    for output in still_cut {
        let share = max_bytes.saturating_sub(size) / remaining.max(1);
        remaining -= 1;
        let results = cut.results.get_or_insert_with(Map::new);
        let without = results
            .get(&output.server)
            .map(encoded_len)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&output.json);
        // Escaping can make a preview longer than its text: shrink until it fits.
        let mut take = share;
        loop {
            let candidate = output.marker(prefix(&text, take));
            let grows_by = encoded_len(&candidate).saturating_sub(without);
            if grows_by <= share || take == 0 {
                if grows_by <= share {
                    results.insert(output.server.clone(), candidate);
                    size += grows_by;
                }
                break;
            }
            take = take.saturating_sub((grows_by - share).max(take / 8).max(1));
        }
    }
    Fitted {
        record: cut.record(),
        truncated: true,
    }
}

/// What was cut from a dead letter: the original's size and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub original_bytes: usize,
    pub sha256: String,
}

impl Cut {
    /// The Kafka headers that say so.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (TRUNCATED, "true".to_owned()),
            (ORIGINAL_BYTES, self.original_bytes.to_string()),
            (ORIGINAL_SHA256, self.sha256.clone()),
        ]
    }
}

/// A dead letter's payload: the original bytes, cut to `max_bytes` if they are longer,
/// and what was cut.
pub fn fit_dead_letter(original: &[u8], max_bytes: usize) -> (&[u8], Option<Cut>) {
    if original.len() <= max_bytes {
        return (original, None);
    }
    let cut = Cut {
        original_bytes: original.len(),
        sha256: sha256_hex(original),
    };
    (&original[..max_bytes], Some(cut))
}

/// One server's output as the record would carry it, hashed once for its markers.
struct Output {
    server: String,
    json: Vec<u8>,
    sha256: String,
}

impl Output {
    fn of(server: &str, output: &impl serde::Serialize) -> Self {
        let json = serde_json::to_vec(output).unwrap_or_default();
        Self {
            server: server.to_owned(),
            sha256: sha256_hex(&json),
            json,
        }
    }

    fn marker(&self, preview: &str) -> Value {
        json!({
            "truncated": true,
            "originalBytes": self.json.len(),
            "sha256": self.sha256,
            "preview": preview,
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encoded_len(value: &Value) -> usize {
    serde_json::to_vec(value)
        .map(|v| v.len())
        .unwrap_or_default()
}

/// The longest prefix of `text` of at most `bytes` bytes that ends on a char boundary.
fn prefix(text: &str, bytes: usize) -> &str {
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use mcp_jobs_contract::outcome::{Failure, Status};
    use mcp_jobs_contract::FailureKind;

    fn outcome(results: Vec<(&str, Value)>) -> Outcome {
        Outcome {
            job_id: Some("big".into()),
            job_type: Some("tool-call".into()),
            status: Status::Succeeded,
            results: Some(
                results
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            ),
            error: None,
            attempts: 1,
            scheduled_at: None,
            started_at: Utc::now(),
            finished_at: Utc::now(),
            worker: "w".into(),
            replay_of: None,
            attempt_log: Vec::new(),
        }
    }

    fn text(bytes: usize, fill: &str) -> Value {
        json!({ "content": [{ "type": "text", "text": fill.repeat(bytes / fill.len()) }] })
    }

    #[test]
    fn small_outcomes_are_untouched() {
        let small = outcome(vec![("a", text(100, "x"))]);
        let fitted = fit_outcome(&small, 10_000);
        assert!(!fitted.truncated);
        assert_eq!(fitted.record, small.record());
    }

    #[test]
    fn large_outputs_become_markers_with_previews_and_small_ones_stay_whole() {
        let big = text(3_000_000, "x");
        let expected_sha = sha256_hex(&serde_json::to_vec(&big).expect("json"));
        // Quotes and control characters escape to more bytes than they take.
        let escaping = text(500_000, "\"\u{1}é");
        let whole = outcome(vec![
            ("big", big),
            ("small", text(200, "y")),
            ("odd", escaping),
        ]);
        for limit in [MIN_RECORD_BYTES, 50_000, 900_000] {
            let fitted = fit_outcome(&whole, limit);
            assert!(fitted.truncated);
            assert!(
                fitted.record.len() <= limit,
                "{} > {limit}",
                fitted.record.len()
            );
            let record: Value = serde_json::from_slice(&fitted.record).expect("valid JSON");
            assert_eq!(record["status"], "succeeded");
            assert_eq!(
                record["results"]["small"],
                whole.results.as_ref().expect("results")["small"]
            );
            let marker = &record["results"]["big"];
            assert_eq!(marker["truncated"], true);
            assert_eq!(marker["sha256"], expected_sha.as_str());
            assert!(marker["originalBytes"].as_u64() > Some(3_000_000));
            assert_eq!(record["results"]["odd"]["truncated"], true);
            if limit == 900_000 {
                let kept = marker["preview"].as_str().map(str::len).unwrap_or_default()
                    + record["results"]["odd"]["preview"]
                        .as_str()
                        .map(str::len)
                        .unwrap_or_default();
                assert!(kept > 700_000, "keeps as much as fits: {kept}");
            }
        }
    }

    #[test]
    fn a_huge_error_message_and_many_servers_still_fit() {
        let mut failed = outcome((0..2000).map(|_| ("s", json!(null))).collect());
        failed.results = Some(
            (0..2000)
                .map(|i| (format!("server-{i}"), text(100, "z")))
                .collect(),
        );
        failed.status = Status::Failed;
        failed.error = Some(Failure {
            kind: FailureKind::ToolError,
            message: "e".repeat(2_000_000),
        });
        let fitted = fit_outcome(&failed, MIN_RECORD_BYTES);
        assert!(fitted.record.len() <= MIN_RECORD_BYTES);
        let record: Value = serde_json::from_slice(&fitted.record).expect("valid JSON");
        assert_eq!(record["error"]["kind"], FailureKind::ToolError.as_str());
        assert_eq!(record["results"]["*"]["truncated"], true);
    }

    #[test]
    fn dead_letters_keep_what_fits_and_say_what_they_were() {
        let original = vec![b'j'; 2_000_000];
        let (payload, cut) = fit_dead_letter(&original, 1000);
        assert_eq!(payload, &original[..1000]);
        let headers = cut.expect("a cut").headers();
        assert!(headers.contains(&(ORIGINAL_BYTES, "2000000".into())));
        assert!(headers.contains(&(ORIGINAL_SHA256, sha256_hex(&original))));
        let (payload, cut) = fit_dead_letter(b"small", 1000);
        assert_eq!(payload, b"small");
        assert!(cut.is_none());
    }
}
