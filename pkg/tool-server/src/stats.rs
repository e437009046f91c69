//! Request figures for `/stats`: how many calls each tool got and how they ended, so an
//! operator can see at a glance whether failures are the jobs' or the upstreams'.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

pub struct RequestStats {
    started: Instant,
    /// tool → outcome (`ok`, `tool_error`, or a failure kind) → count.
    by_tool: Mutex<BTreeMap<&'static str, BTreeMap<&'static str, u64>>>,
}

impl Default for RequestStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            by_tool: Mutex::default(),
        }
    }
}

impl RequestStats {
    pub fn record(&self, tool: &'static str, outcome: &'static str) {
        if let Ok(mut by_tool) = self.by_tool.lock() {
            *by_tool.entry(tool).or_default().entry(outcome).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> Value {
        let by_tool = self.by_tool.lock().map(|t| t.clone()).unwrap_or_default();
        let total: u64 = by_tool.values().flat_map(|o| o.values()).sum();
        json!({
            "uptimeSeconds": self.started.elapsed().as_secs(),
            "total": total,
            "byTool": by_tool,
        })
    }
}
