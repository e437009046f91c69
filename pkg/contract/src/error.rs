//! Why a message is not a valid job. Every variant names the field at fault so the
//! dead-letter record tells an operator what to fix without reading the bytes.

use crate::FailureKind;

/// A message that can never become a runnable job: a permanent failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("message is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },

    #[error("message is not valid UTF-8 at byte {at}")]
    NotUtf8 { at: usize },

    #[error("{field}: malformed JSON: {reason}")]
    MalformedJson { field: String, reason: String },

    #[error("missing required field `{field}`")]
    MissingField { field: String },

    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },

    #[error("jobType: unknown job type {job_type:?} (expected one of server-init, list-tools, tool-call)")]
    UnknownJobType { job_type: String },
}

impl ContractError {
    /// Its kind, named in dead-letter headers and result records.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::TooLarge { .. } => FailureKind::TooLarge,
            Self::NotUtf8 { .. } => FailureKind::NotUtf8,
            Self::MalformedJson { .. } => FailureKind::MalformedJson,
            Self::MissingField { .. } => FailureKind::MissingField,
            Self::InvalidField { .. } => FailureKind::InvalidField,
            Self::UnknownJobType { .. } => FailureKind::UnknownJobType,
        }
    }

    /// The field at fault, when one is (`payload.mcpServers`, `jobType`…).
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MalformedJson { field, .. }
            | Self::MissingField { field }
            | Self::InvalidField { field, .. } => Some(field),
            Self::UnknownJobType { .. } => Some("jobType"),
            Self::TooLarge { .. } | Self::NotUtf8 { .. } => None,
        }
    }

    /// The same error with `secrets` taken out of every text it quotes.
    pub fn redacted(self, secrets: &crate::Secrets) -> Self {
        if secrets.is_empty() {
            return self;
        }
        let clean = |text: String| secrets.redact(&text).into_owned();
        match self {
            Self::MalformedJson { field, reason } => Self::MalformedJson {
                field: clean(field),
                reason: clean(reason),
            },
            Self::MissingField { field } => Self::MissingField {
                field: clean(field),
            },
            Self::InvalidField { field, reason } => Self::InvalidField {
                field: clean(field),
                reason: clean(reason),
            },
            Self::UnknownJobType { job_type } => Self::UnknownJobType {
                job_type: clean(job_type),
            },
            other @ (Self::TooLarge { .. } | Self::NotUtf8 { .. }) => other,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(field: impl Into<String>) -> Self {
        Self::MissingField {
            field: field.into(),
        }
    }

    /// Turns a type error found while deserializing the document at `prefix`
    /// (e.g. `payload`) into an error naming the full path of the field.
    pub(crate) fn from_serde(
        prefix: &str,
        err: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let path = err.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, "." | "?") => "(message)".to_owned(),
            (false, "." | "?") => prefix.to_owned(),
            (true, _) => path,
            (false, _) => format!("{prefix}.{path}"),
        };
        Self::InvalidField {
            field,
            reason: strip_position(&err.into_inner().to_string()),
        }
    }
}

/// serde_json appends " at line L column C", which adds little once the path is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}
