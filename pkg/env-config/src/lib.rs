//! Settings from the environment, read the same way by both binaries: envy parses,
//! and every error names the variable as an operator spells it (`KAFKA_BROKERS`),
//! so a misconfigured process stops at start with a message that says what to fix.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("{name} is not set")]
    Missing { name: String },
    /// envy's own message, which names the variable and the value it could not parse.
    #[error("invalid environment: {0}")]
    Invalid(String),
    #[error("{name} is empty")]
    Empty { name: &'static str },
    #[error("{name} must be greater than 0")]
    Zero { name: &'static str },
}

impl From<envy::Error> for EnvError {
    fn from(error: envy::Error) -> Self {
        match error {
            // envy names a missing variable by its (lowercase) field name.
            envy::Error::MissingValue(field) => Self::Missing {
                name: field.to_uppercase(),
            },
            envy::Error::Custom(message) => Self::Invalid(message),
        }
    }
}

/// Deserializes `T` from variables whose names are its fields, uppercased.
pub fn from_vars<T: DeserializeOwned>(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, EnvError> {
    Ok(envy::from_iter(vars)?)
}

/// What `T` reads from `vars`, by variable name, defaults filled in: what a `config`
/// command shows an operator (or a deployment check). A value of one of `secrets`
/// reads `<set>`, and a URL's password `[redacted]`.
pub fn describe<T: DeserializeOwned + Serialize>(
    vars: impl IntoIterator<Item = (String, String)>,
    secrets: &[&str],
) -> Result<BTreeMap<String, Value>, EnvError> {
    let settings: T = from_vars(vars)?;
    let fields = match serde_json::to_value(&settings) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Ok(BTreeMap::new()),
        Err(e) => return Err(EnvError::Invalid(e.to_string())),
    };
    Ok(fields
        .into_iter()
        .map(|(field, value)| {
            let name = field.to_uppercase();
            let shown = match value {
                Value::Null => Value::Null,
                _ if secrets.contains(&name.as_str()) => Value::from("<set>"),
                Value::String(text) => Value::from(without_password(text)),
                other => other,
            };
            (name, shown)
        })
        .collect())
}

/// `text` with the password of a URL in it replaced.
fn without_password(text: String) -> String {
    match url::Url::parse(&text) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("[redacted]"));
            parsed.to_string()
        }
        _ => text,
    }
}

/// Like [`from_vars`], over only the variables starting with `prefix` (which is removed).
pub fn from_prefixed_vars<T: DeserializeOwned>(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, EnvError> {
    Ok(envy::prefixed(prefix).from_iter(vars)?)
}

/// Fails on the first variable whose value is blank.
pub fn require_non_empty(values: &[(&'static str, &str)]) -> Result<(), EnvError> {
    match values.iter().find(|(_, value)| value.trim().is_empty()) {
        Some((name, _)) => Err(EnvError::Empty { name }),
        None => Ok(()),
    }
}

/// Fails on the first variable whose value is 0.
pub fn require_positive(values: &[(&'static str, u64)]) -> Result<(), EnvError> {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((name, _)) => Err(EnvError::Zero { name }),
        None => Ok(()),
    }
}

/// The items of a comma-separated list, trimmed, without empty ones.
pub fn comma_separated(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Example {
        #[allow(dead_code)]
        kafka_brokers: String,
    }

    #[test]
    fn missing_variables_are_named_as_spelled() {
        let err = from_vars::<Example>(Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "KAFKA_BROKERS is not set");
    }

    #[test]
    fn checks_name_the_first_offender() {
        assert_eq!(
            require_positive(&[("A", 1), ("B", 0), ("C", 0)]),
            Err(EnvError::Zero { name: "B" })
        );
        assert_eq!(
            require_non_empty(&[("A", "x"), ("B", " ")]),
            Err(EnvError::Empty { name: "B" })
        );
        assert_eq!(comma_separated(" a, b ,,c"), ["a", "b", "c"]);
    }

    #[derive(serde::Deserialize, Serialize)]
    struct Env {
        #[serde(default = "default_port")]
        port: u16,
        api_key: Option<String>,
        redis_url: Option<String>,
    }

    fn default_port() -> u16 {
        8080
    }

    #[test]
    fn a_description_fills_in_defaults_and_hides_secrets() {
        let defaults = describe::<Env>(Vec::new(), &["API_KEY"]).expect("valid");
        assert_eq!(defaults["PORT"], 8080);
        assert_eq!(defaults["API_KEY"], Value::Null);
        let set = describe::<Env>(
            [
                ("API_KEY".to_owned(), "hunter2".to_owned()),
                ("REDIS_URL".to_owned(), "redis://:pw@cache:6379".to_owned()),
                ("PORT".to_owned(), "9000".to_owned()),
            ],
            &["API_KEY"],
        )
        .expect("valid");
        assert_eq!(set["API_KEY"], "<set>");
        assert_eq!(set["REDIS_URL"], "redis://:%5Bredacted%5D@cache:6379");
        assert_eq!(set["PORT"], 9000);
        assert!(describe::<Env>([("PORT".to_owned(), "x".to_owned())], &[]).is_err());
    }
}
