//! The job engine: everything about running a job that does not depend on where the
//! job came from, so Kafka and later sources share it.
//!
//! - [`lifecycle`]: one message's way to a durable outcome (decode, run now, wait,
//!   delay or refuse, run, hand to the source's sink), for every source.
//! - [`window`]: which received messages may start, key ordering, and how far each
//!   partition may be committed (the contiguous finished prefix).
//! - [`runner`]: runs one message to an outcome (`mcp_jobs_contract::outcome`), with
//!   job retries and indefinite waits for infrastructure.
//! - [`tool_client`]: the MCP client of mcp-server, spread over replicas with failover.
//! - [`servers`]: which named servers mcp-server has, to check jobs that name one.
//! - [`traced_http`]: its HTTP client, sending each call's trace context as W3C headers.
//! - [`fit`]: outcome and dead-letter records cut to fit a record limit, marked, never refused for size.
//! - [`retry`]: the backoff schedules.
//! - [`timing`]: whether a job with a `scheduledAt` runs now, waits in its slot or is
//!   delayed.
//! - [`metrics`]: the job metrics every source reports alike.

pub mod fit;
pub mod lifecycle;
pub mod metrics;
pub mod retry;
pub mod runner;
pub mod servers;
pub mod timing;
pub mod tool_client;
pub mod traced_http;
pub mod window;
