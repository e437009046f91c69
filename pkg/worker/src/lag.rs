//! `kafka-worker lag`: how far the job source is behind and how many worker replicas
//! that calls for — so that
//! `kubectl scale deployment kafka-worker --replicas=$(kafka-worker lag --replicas)`
//! scales on the same figure KEDA's Kafka scaler uses. With `JOB_SOURCE=redis`, the
//! figure is the stream group's undelivered plus pending entries.

use std::time::Duration;

use mcp_jobs_kafka::group::GroupError;
use redis::streams::StreamInfoGroupsReply;

use crate::config::WorkerSettings;

/// How long Redis may take to answer before the command gives up.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error("Redis at REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?} (REDIS_URL)")]
    RedisTimeout(Duration),
    #[error("stream {stream:?} does not exist (REDIS_STREAM)")]
    NoStream { stream: String },
    #[error("consumer group {group:?} does not exist on stream {stream:?} (MCP_CONSUMER_GROUP): no worker has started on it")]
    NoStreamGroup { group: String, stream: String },
    #[error("Redis cannot tell how many entries of {stream:?} group {group:?} has yet to read: entries were deleted from the stream, or the group's position was set without ENTRIESREAD")]
    StreamLagUnknown { group: String, stream: String },
}

/// How `--replicas` turns lag into a replica count.
#[derive(Debug, Clone, Copy)]
pub struct ScalePolicy {
    /// Lag one replica is expected to keep up with.
    pub lag_per_replica: u64,
    pub min_replicas: u32,
    pub max_replicas: u32,
}

impl ScalePolicy {
    /// `clamp(ceil(total_lag / lag_per_replica), min, min(max, partitions))`: more
    /// replicas than partitions would sit idle, since a partition has one consumer.
    /// `partitions` is `None` for a Redis stream, whose group feeds any number.
    pub fn replicas(&self, total_lag: i64, partitions: Option<usize>) -> u32 {
        let wanted = (total_lag.max(0) as u64).div_ceil(self.lag_per_replica.max(1));
        let ceiling = self
            .max_replicas
            .min(partitions.map_or(u32::MAX, |p| u32::try_from(p).unwrap_or(u32::MAX)));
        let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
        wanted.min(ceiling).max(self.min_replicas)
    }
}

/// How far a Redis Streams consumer group is behind (`JOB_SOURCE=redis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBacklog {
    pub stream: String,
    pub group: String,
    /// Entries never delivered to the group.
    pub undelivered: u64,
    /// Entries delivered but not acknowledged: running, or left by a worker that died.
    pub pending: u64,
}

impl StreamBacklog {
    /// Work not yet done, as Kafka's lag counts it from the committed offset: what is
    /// running is still behind.
    pub fn total(&self) -> i64 {
        i64::try_from(self.undelivered + self.pending).unwrap_or(i64::MAX)
    }
}

/// What `kafka-worker lag` prints for a stream.
impl std::fmt::Display for StreamBacklog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "stream {}, group {}", self.stream, self.group)?;
        writeln!(f, "undelivered {}", self.undelivered)?;
        writeln!(f, "pending {}", self.pending)?;
        write!(f, "total lag {}", self.total())
    }
}

/// Reads the group's lag and pending count from `XINFO GROUPS` (Redis 7 or later).
pub async fn stream_backlog(settings: &WorkerSettings) -> Result<StreamBacklog, LagError> {
    let redis = &settings.redis;
    let groups = tokio::time::timeout(TIMEOUT, async {
        let client = redis::Client::open(redis.url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::AsyncCommands::xinfo_groups::<_, StreamInfoGroupsReply>(
            &mut connection,
            &redis.stream,
        )
        .await
    })
    .await
    .map_err(|_| LagError::RedisTimeout(TIMEOUT))?
    .map_err(|e| {
        if e.to_string().contains("no such key") {
            LagError::NoStream {
                stream: redis.stream.clone(),
            }
        } else {
            LagError::Redis(e)
        }
    })?;
    let group = groups
        .groups
        .into_iter()
        .find(|g| g.name == settings.kafka.group)
        .ok_or_else(|| LagError::NoStreamGroup {
            group: settings.kafka.group.clone(),
            stream: redis.stream.clone(),
        })?;
    let undelivered = group.lag.ok_or_else(|| LagError::StreamLagUnknown {
        group: settings.kafka.group.clone(),
        stream: redis.stream.clone(),
    })?;
    Ok(StreamBacklog {
        stream: redis.stream.clone(),
        group: group.name,
        undelivered: undelivered as u64,
        pending: group.pending as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_follow_lag_within_bounds() {
        let policy = ScalePolicy {
            lag_per_replica: 100,
            min_replicas: 1,
            max_replicas: 10,
        };
        assert_eq!(policy.replicas(0, Some(6)), 1, "never below the minimum");
        assert_eq!(policy.replicas(1, Some(6)), 1);
        assert_eq!(policy.replicas(250, Some(6)), 3, "rounded up");
        assert_eq!(
            policy.replicas(10_000, Some(6)),
            6,
            "no more than partitions"
        );
        assert_eq!(
            policy.replicas(10_000, Some(60)),
            10,
            "no more than the maximum"
        );
        assert_eq!(
            policy.replicas(550, None),
            6,
            "a stream caps nothing but the maximum"
        );
        let idle = ScalePolicy {
            min_replicas: 0,
            ..policy
        };
        assert_eq!(idle.replicas(0, Some(6)), 0, "scale to zero when allowed");
    }
}
