//! Secrets a job hands to an upstream (env values, env-file values, header values, a
//! URL's password) must never come back out of mcp-server: not in its log (a child's
//! stderr is logged), not in an error message, not in a tool result.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::CallToolResult;
use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not treated as secrets: redacting `1` or `on` would
/// mangle every line while protecting nothing.
const MIN_SECRET_LEN: usize = 4;

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
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
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

    /// Redacts every string (keys included) inside `value`.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.redact(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(fields) => {
                let dirty: Vec<String> = fields
                    .keys()
                    .filter(|k| matches!(self.redact(k), Cow::Owned(_)))
                    .cloned()
                    .collect();
                for key in dirty {
                    if let Some(v) = fields.remove(&key) {
                        fields.insert(self.redact(&key).into_owned(), v);
                    }
                }
                fields.values_mut().for_each(|v| self.redact_json(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A tool result with the secrets taken out of its text, structured content and `_meta`.
    pub fn redact_result(&self, result: CallToolResult) -> CallToolResult {
        if self.is_empty() {
            return result;
        }
        let Ok(mut value) = serde_json::to_value(&result) else {
            return result;
        };
        self.redact_json(&mut value);
        serde_json::from_value(value).unwrap_or(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replaces_every_secret_and_ignores_short_values() {
        let secrets = Secrets::new(["hunter2-secret", "hunter2", "on"]);
        assert_eq!(
            secrets.redact("token=hunter2-secret other=hunter2 flag=on"),
            "token=[redacted] other=[redacted] flag=on"
        );
        assert!(matches!(secrets.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn redacts_inside_json() {
        let secrets = Secrets::new(["s3cr3t-value"]);
        let mut value = json!({ "a": ["x s3cr3t-value y", 1], "s3cr3t-value": true });
        secrets.redact_json(&mut value);
        assert_eq!(
            value,
            json!({ "a": ["x [redacted] y", 1], "[redacted]": true })
        );
    }
}
