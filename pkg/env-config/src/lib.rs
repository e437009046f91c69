//! Settings from the environment, read the same way by both binaries: envy parses,
//! and every error names the variable as an operator spells it (`KAFKA_BROKERS`),
//! so a misconfigured process stops at start with a message that says what to fix.

use serde::de::DeserializeOwned;

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
}
