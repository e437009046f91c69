//! Which named servers mcp-server has (`GET /servers`), so that `kafka-worker publish`
//! and `schedules apply` can refuse a job naming a server that is nowhere before it
//! ever runs.

use std::collections::BTreeSet;
use std::time::Duration;

use mcp_jobs_contract::ScheduledJobEnvelope;
use serde::Deserialize;

/// How long asking mcp-server may take: the check is a courtesy, not a gate.
const ASK_LIMIT: Duration = Duration::from_secs(5);

/// The servers `job`'s calls name without describing them.
pub fn named_by(job: &ScheduledJobEnvelope) -> BTreeSet<String> {
    job.calls
        .iter()
        .filter(|call| !job.mcp_servers.contains_key(&call.server))
        .map(|call| call.server.clone())
        .collect()
}

#[derive(Deserialize)]
struct Listing {
    servers: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    name: String,
}

/// Those of `names` that mcp-server at `server_url` (its `/mcp` URL) does not have, or
/// why it could not be asked.
pub async fn missing_named_servers(
    server_url: &str,
    api_key: Option<&str>,
    names: &BTreeSet<String>,
) -> Result<Vec<String>, reqwest::Error> {
    let base = server_url.trim_end_matches('/');
    let base = base.strip_suffix("/mcp").unwrap_or(base);
    let mut request = reqwest::Client::builder()
        .timeout(ASK_LIMIT)
        .build()?
        .get(format!("{base}/servers"));
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let listing: Listing = request.send().await?.error_for_status()?.json().await?;
    let known: BTreeSet<String> = listing.servers.into_iter().map(|s| s.name).collect();
    Ok(names.difference(&known).cloned().collect())
}
