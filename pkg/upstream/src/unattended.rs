//! What mcp-server answers when an upstream tool asks its caller for input
//! (2026-07-28 input-required results) and no person or model stands behind the call:
//! a job, or a meta-tool call. As an MCP client with no user it declines elicitations
//! and has no roots (rmcp's own client defaults); it cannot sample, so a tool that
//! needs a model's answer cannot be run this way.

use rmcp::model::{ElicitResult, ElicitationAction, InputRequest, InputRequests, InputResponses};
use serde_json::json;

/// The answers to `asked`, or `None` if one of them needs what only a caller with a
/// model could give (sampling).
pub(crate) fn answers(asked: Option<InputRequests>) -> Option<InputResponses> {
    let mut answers = InputResponses::new();
    for (key, request) in asked.unwrap_or_default() {
        let answer = match request {
            InputRequest::Elicitation(_) => {
                serde_json::to_value(ElicitResult::new(ElicitationAction::Decline)).ok()?
            }
            // (rmcp marks its roots types deprecated, as SEP-2577 does the feature.)
            InputRequest::ListRoots(_) => json!({ "roots": [] }),
            _ => return None,
        };
        answers.insert(key, answer);
    }
    Some(answers)
}
