//! Secrets a job hands to its MCP servers (env values, header values, a URL's
//! password) must never come back out: not from mcp-server (its log, its errors, its
//! tool results) and not from the console or the CLI that show a job's message. One
//! definition of what is secret and how it is hidden, for all of them.
//!
//! Redaction follows the data, not its shape: a payload given as a JSON *string* is
//! read like an object; a field or a Kafka header whose name says it holds a
//! credential (`authorization`, `*token*`, `*secret*`, `*password*`, `*key`, …) is
//! hidden whatever it holds; and every value found secret is then hidden wherever
//! else it appears (an argument or an error message repeating it).

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not treated as secrets: redacting `1`, `on` or `info`
/// would mangle every line while protecting nothing a guess would not find.
const MIN_SECRET_LEN: usize = 6;

/// Parts of a name that say its value is a credential.
const CREDENTIAL_WORDS: [&str; 13] = [
    "authorization",
    "cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "privatekey",
    "private_key",
];

/// Whole names (or `-`/`_`/`.`-separated parts of one) that say the same.
const CREDENTIAL_PARTS: [&str; 5] = ["auth", "pw", "pwd", "session", "sessionid"];

/// Whether a field or header called `name` holds a credential, so its value is
/// hidden whatever it is. mcp-jobs' own headers (`mcp-jobs-…`) never do.
pub fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name.starts_with("mcp-jobs-") {
        return false;
    }
    CREDENTIAL_WORDS.iter().any(|word| name.contains(word))
        || name.ends_with("key")
        || name
            .split(['-', '_', '.'])
            .any(|part| CREDENTIAL_PARTS.contains(&part))
}

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

/// Hides the secrets of a job message, wherever it sits (the envelope's payload, as
/// an object or as a string holding JSON; a schedule's job; a malformed message) and
/// returns them, so other text about the message (an error quoting a field) is
/// redacted alike. Each value of an `env` or `headers` field becomes [`REDACTED`]
/// (names stay: they say what was set), so does a `url`'s password and any field
/// named as a credential; those values are then redacted anywhere else they appear.
pub fn redact_job_secrets(message: &mut Value) -> Secrets {
    redact_record(message, &mut [])
}

/// A Kafka record as people may see it: its message as [`redact_job_secrets`] hides
/// it, and its headers with those named as credentials hidden and every secret of
/// the message taken out of the rest. Returns all the secrets found.
pub fn redact_record(message: &mut Value, headers: &mut [(String, String)]) -> Secrets {
    let mut found = Vec::new();
    take_secrets(message, &mut found);
    for (name, value) in headers.iter_mut() {
        if is_credential_name(name) {
            found.push(std::mem::replace(value, REDACTED.to_owned()));
        }
    }
    let secrets = Secrets::new(found.iter().map(String::as_str));
    redact_nested(&secrets, message);
    for (_, value) in headers.iter_mut() {
        secrets.redact_in_place(value);
    }
    secrets
}

/// The secrets of a message given as bytes (that may not even be JSON): for
/// redacting what is said about a message that could not be read as a job.
pub fn secrets_of_message(bytes: &[u8]) -> Secrets {
    serde_json::from_slice::<Value>(bytes)
        .map(|mut message| redact_job_secrets(&mut message))
        .unwrap_or_default()
}

/// A string that holds a JSON object or array (a payload given as a string).
fn embedded_json(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

fn take_secrets(value: &mut Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                match (name.as_str(), field) {
                    ("env" | "headers", Value::Object(secrets)) => {
                        secrets.values_mut().for_each(|v| take_whole(v, found));
                    }
                    // An env or headers that is not an object is still what it names.
                    ("env" | "headers", field) => take_whole(field, found),
                    ("url", Value::String(text)) => {
                        if let Some((at, password)) = url_password(text) {
                            // Both as written and as it means (percent-decoded).
                            let decoded = percent_encoding::percent_decode_str(password);
                            found.push(decoded.decode_utf8_lossy().into_owned());
                            found.push(password.to_owned());
                            text.replace_range(at.clone(), REDACTED);
                        }
                    }
                    // Server names are names, not fields: look inside each config.
                    ("mcpServers", Value::Object(servers)) => {
                        servers.values_mut().for_each(|v| take_secrets(v, found));
                    }
                    (name, field) if is_credential_name(name) => take_whole(field, found),
                    (_, field) => take_secrets(field, found),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| take_secrets(v, found)),
        Value::String(text) => {
            if let Some(mut nested) = embedded_json(text) {
                take_secrets(&mut nested, found);
                *text = nested.to_string();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// [`Secrets::redact_json`] that also reads strings holding JSON, where a secret may
/// be escaped (`\"`) and so not found in the text as it is.
fn redact_nested(secrets: &Secrets, value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(mut nested) = embedded_json(text) {
                redact_nested(secrets, &mut nested);
                *text = nested.to_string();
            }
            secrets.redact_in_place(text);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_nested(secrets, v)),
        Value::Object(fields) => fields.values_mut().for_each(|v| redact_nested(secrets, v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Where a URL's password is, as written (`scheme://user:PASSWORD@host/…`), read from
/// the text itself: a URL that does not parse may still hold one.
fn url_password(url: &str) -> Option<(std::ops::Range<usize>, &str)> {
    let authority_at = url.find("://")? + 3;
    let rest = &url[authority_at..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let password_at = userinfo.find(':')? + 1;
    let start = authority_at + password_at;
    let end = authority_at + userinfo.len();
    (start < end).then(|| (start..end, &url[start..end]))
}

/// Takes every value inside `value` as a secret and replaces it with [`REDACTED`].
fn take_whole(value: &mut Value, found: &mut Vec<String>) {
    fn collect(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::String(text) => found.push(text.clone()),
            Value::Number(n) => found.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
            Value::Object(fields) => fields.values().for_each(|v| collect(v, found)),
            Value::Null | Value::Bool(_) => {}
        }
    }
    collect(value, found);
    *value = Value::String(REDACTED.to_owned());
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

    #[test]
    fn a_payload_given_as_a_string_is_redacted_like_an_object() {
        let payload = json!({
            "mcpServers": {"t": {"command": "nc", "env": {"DB_PASSWORD": "pa55word-xyz"}}},
            "server": "t", "tool": "x", "arguments": {"pw": "pa55word-xyz", "note": "use pa55word-xyz"}
        });
        let mut message =
            json!({"jobID": "s", "jobType": "tool-call", "payload": payload.to_string()});
        let secrets = redact_job_secrets(&mut message);
        assert!(!message.to_string().contains("pa55word-xyz"), "{message}");
        let inner: Value = serde_json::from_str(message["payload"].as_str().unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(inner["mcpServers"]["t"]["env"]["DB_PASSWORD"], REDACTED);
        assert_eq!(inner["arguments"]["note"], "use [redacted]");
        assert_eq!(
            secrets.redact("invalid type: string \"pa55word-xyz\""),
            "invalid type: string \"[redacted]\""
        );
    }

    #[test]
    fn credential_names_hide_their_values_in_fields_and_headers() {
        for name in [
            "Authorization",
            "cookie",
            "x-api-key",
            "GITHUB_TOKEN",
            "client_secret",
            "db-password",
            "pw",
            "auth",
            "accessKey",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in [
            "tenant",
            "traceparent",
            "author",
            "timezone",
            "mcp-jobs-original-key",
            "monkeys",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
        let mut message = json!({"payload": {"mcpServers": {"token-server": {"command": "x"}},
            "arguments": {"apiKey": {"nested": "k-123456789"}, "keep": "visible"}}});
        let mut headers = vec![
            (
                "authorization".to_owned(),
                "Bearer sekret-bearer".to_owned(),
            ),
            ("tenant".to_owned(), "seven".to_owned()),
            ("x-copy".to_owned(), "k-123456789 again".to_owned()),
        ];
        redact_record(&mut message, &mut headers);
        assert_eq!(
            message["payload"]["mcpServers"]["token-server"]["command"],
            "x"
        );
        assert_eq!(message["payload"]["arguments"]["apiKey"], REDACTED);
        assert_eq!(message["payload"]["arguments"]["keep"], "visible");
        assert_eq!(headers[0].1, REDACTED);
        assert_eq!(headers[1].1, "seven");
        assert_eq!(headers[2].1, "[redacted] again");
    }

    #[test]
    fn an_env_that_is_not_an_object_is_still_secret() {
        let mut message = json!({"payload": {"mcpServers": {"t": {"command": "x", "env": "DB_PASSWORD=hunter22"}}}});
        let secrets = redact_job_secrets(&mut message);
        assert_eq!(message["payload"]["mcpServers"]["t"]["env"], REDACTED);
        assert_eq!(secrets.redact("got DB_PASSWORD=hunter22"), "got [redacted]");
    }
}
