//! Secrets a job hands to its MCP servers (env values, header values, a URL's
//! password) must never come back out: not from mcp-server (its log, its errors, its
//! tool results) and not from the console that shows a job's message. One definition
//! of what is secret and how it is hidden, for both.

use std::borrow::Cow;
use std::sync::Arc;

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
            Value::String(s) => self.redact_in_place(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(fields) => fields.values_mut().for_each(|v| self.redact_json(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }
}

/// Hides the secrets of every server config inside a job message, wherever it sits
/// (the envelope's payload, a schedule's job, a malformed message): each value of an
/// `env` or `headers` object becomes [`REDACTED`] (names stay: they say what was
/// set), so does the password of a `url`, and those values are then redacted anywhere
/// else they appear (an argument that repeats a token).
pub fn redact_job_secrets(message: &mut Value) {
    let mut found = Vec::new();
    take_secrets(message, &mut found);
    let secrets = Secrets::new(found.iter().map(String::as_str));
    secrets.redact_json(message);
}

fn take_secrets(value: &mut Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                match (name.as_str(), field) {
                    ("env" | "headers", Value::Object(secrets)) => {
                        for secret in secrets.values_mut() {
                            if let Value::String(text) = secret {
                                found.push(std::mem::take(text));
                            }
                            *secret = Value::String(REDACTED.to_owned());
                        }
                    }
                    ("url", Value::String(text)) => {
                        if let Ok(mut url) = url::Url::parse(text) {
                            if let Some(password) = url.password().map(str::to_owned) {
                                if url.set_password(Some(REDACTED)).is_ok() {
                                    *text = url.to_string();
                                }
                                found.push(password);
                            }
                        }
                    }
                    (_, field) => take_secrets(field, found),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| take_secrets(v, found)),
        Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => {}
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
    fn a_job_message_keeps_its_shape_and_loses_its_secrets() {
        let mut message = json!({
            "jobID": "j-1",
            "payload": { "mcpServers": {
                "local": { "command": "tool", "args": ["--token", "tok-123456"],
                           "env": { "API_TOKEN": "tok-123456", "N": 5 } },
                "remote": { "url": "https://user:pa55word@example.com/mcp",
                            "headers": { "Authorization": "Bearer abcdefgh" } }
            }}
        });
        redact_job_secrets(&mut message);
        let servers = &message["payload"]["mcpServers"];
        assert_eq!(servers["local"]["env"]["API_TOKEN"], REDACTED);
        assert_eq!(servers["local"]["env"]["N"], REDACTED);
        assert_eq!(servers["local"]["args"][1], REDACTED);
        assert_eq!(servers["remote"]["headers"]["Authorization"], REDACTED);
        let url = servers["remote"]["url"].as_str().unwrap_or_default();
        assert!(!url.contains("pa55word") && url.contains("user:"), "{url}");
        let text = message.to_string();
        for secret in ["tok-123456", "pa55word", "abcdefgh"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
