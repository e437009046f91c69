//! Tool results with a job's secrets taken out (what is secret, and how text is
//! redacted, is [`Secrets`] in the job contract).

use mcp_jobs_contract::Secrets;
use rmcp::model::{CallToolResult, ContentBlock, MetaObject, ResourceContents, ServerResult};

/// A tool result with the secrets taken out of its data: text blocks, embedded text
/// resources, structured content and `_meta`. Type tags and other protocol fields
/// are left alone, so the result stays a valid result whatever the secrets are.
pub fn redact_result(secrets: &Secrets, mut result: CallToolResult) -> CallToolResult {
    if secrets.is_empty() {
        return result;
    }
    let redact_meta = |meta: &mut Option<MetaObject>| {
        if let Some(meta) = meta {
            meta.0.values_mut().for_each(|v| secrets.redact_json(v));
        }
    };
    for block in &mut result.content {
        match block {
            ContentBlock::Text(text) => {
                secrets.redact_in_place(&mut text.text);
                redact_meta(&mut text.meta);
            }
            ContentBlock::Resource(embedded) => {
                if let ResourceContents::TextResourceContents { text, meta, .. } =
                    &mut embedded.resource
                {
                    secrets.redact_in_place(text);
                    redact_meta(meta);
                }
            }
            _ => {}
        }
    }
    if let Some(structured) = &mut result.structured_content {
        secrets.redact_json(structured);
    }
    redact_meta(&mut result.meta);
    result
}

/// `answer` with every secret taken out of its strings (resources, prompts and
/// completions may quote what a server was configured with). `None` if a secret stood
/// where the protocol needs a fixed word: the answer is then withheld, never sent as it was.
pub fn redact_answer(secrets: &Secrets, answer: ServerResult) -> Option<ServerResult> {
    if secrets.is_empty() {
        return Some(answer);
    }
    let mut value = serde_json::to_value(&answer).ok()?;
    secrets.redact_json(&mut value);
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_that_looks_like_a_protocol_word_leaves_the_result_valid() {
        // "text" is too short to be a secret; "resource" is not, and must not break tags.
        let secrets = Secrets::new(["text", "resource", "hunter2-secret"]);
        let result = CallToolResult::success(vec![ContentBlock::text(
            "token hunter2-secret, type resource",
        )]);
        let redacted = redact_result(&secrets, result);
        let ContentBlock::Text(text) = &redacted.content[0] else {
            panic!("still a text block: {redacted:?}");
        };
        assert_eq!(text.text, "token [redacted], type [redacted]");
    }
}
