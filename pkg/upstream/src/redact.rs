//! Secrets a job hands to an upstream (env values, env-file values, header values, a
//! URL's password) must never come back out of mcp-server: not in its log (a child's
//! stderr is logged), not in an error message, not in a tool result.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, MetaObject, ResourceContents};
use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not treated as secrets: redacting `1`, `on` or `info`
/// would mangle every line while protecting nothing a guess would not find.
const MIN_SECRET_LEN: usize = 6;

/// The secret values of one upstream; cheap to clone.
#[derive(Clone, Default)]
pub struct Secrets(Arc<[String]>);

impl Secrets {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .map(str::to_owned)
            .collect();
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self(values.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`]; borrowed when there was none.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for secret in self.0.iter() {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), REDACTED));
            }
        }
        text
    }

    /// Redacts every string value inside `value` (object keys are names, not data).
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.redact(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(fields) => fields.values_mut().for_each(|v| self.redact_json(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A tool result with the secrets taken out of its data: text blocks, embedded text
    /// resources, structured content and `_meta`. Type tags and other protocol fields
    /// are left alone, so the result stays a valid result whatever the secrets are.
    pub fn redact_result(&self, mut result: CallToolResult) -> CallToolResult {
        if self.is_empty() {
            return result;
        }
        let redact_meta = |meta: &mut Option<MetaObject>| {
            if let Some(meta) = meta {
                meta.0.values_mut().for_each(|v| self.redact_json(v));
            }
        };
        for block in &mut result.content {
            match block {
                ContentBlock::Text(text) => {
                    self.redact_in_place(&mut text.text);
                    redact_meta(&mut text.meta);
                }
                ContentBlock::Resource(embedded) => {
                    if let ResourceContents::TextResourceContents { text, meta, .. } =
                        &mut embedded.resource
                    {
                        self.redact_in_place(text);
                        redact_meta(meta);
                    }
                }
                _ => {}
            }
        }
        if let Some(structured) = &mut result.structured_content {
            self.redact_json(structured);
        }
        redact_meta(&mut result.meta);
        result
    }

    fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replaces_every_secret_and_ignores_short_values() {
        let secrets = Secrets::new(["hunter2-secret", "hunter2", "info"]);
        assert_eq!(
            secrets.redact("token=hunter2-secret other=hunter2 level=info"),
            "token=[redacted] other=[redacted] level=info"
        );
        assert!(matches!(secrets.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn redacts_inside_json_values() {
        let secrets = Secrets::new(["s3cr3t-value"]);
        let mut value = json!({ "a": ["x s3cr3t-value y", 1], "b": { "c": "s3cr3t-value" } });
        secrets.redact_json(&mut value);
        assert_eq!(
            value,
            json!({ "a": ["x [redacted] y", 1], "b": { "c": "[redacted]" } })
        );
    }

    #[test]
    fn a_secret_that_looks_like_a_protocol_word_leaves_the_result_valid() {
        // "text" is too short to be a secret; "resource" is not, and must not break tags.
        let secrets = Secrets::new(["text", "resource", "hunter2-secret"]);
        let result = CallToolResult::success(vec![ContentBlock::text(
            "token hunter2-secret, type resource",
        )]);
        let redacted = secrets.redact_result(result);
        let ContentBlock::Text(text) = &redacted.content[0] else {
            panic!("still a text block: {redacted:?}");
        };
        assert_eq!(text.text, "token [redacted], type [redacted]");
    }
}
