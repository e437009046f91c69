//! The API-key gate. Keys are compared in constant time so response timing says
//! nothing about how much of a guess was right. Browsers cannot set headers on a
//! WebSocket, so `/ws/` routes also take the key as an `api_key` query parameter.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use subtle::ConstantTimeEq;

use crate::config::Auth;

/// Lets a request through only if it carries one of the configured keys.
pub async fn require_api_key(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    match &auth {
        Auth::Disabled => next.run(request).await,
        Auth::ApiKeys(keys) => match presented_key(request.headers())
            .map(str::to_owned)
            .or_else(|| websocket_query_key(request.uri()))
            .as_deref()
        {
            Some(key) if matches_any(keys, key) => next.run(request).await,
            Some(_) => unauthorized("invalid API key"),
            None => unauthorized(
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            ),
        },
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn websocket_query_key(uri: &Uri) -> Option<String> {
    if !uri.path().starts_with("/ws/") {
        return None;
    }
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(name, _)| name == "api_key")
        .map(|(_, key)| key.into_owned())
}

/// Checks every key, without stopping at the first match, so the time taken does not
/// depend on which key (if any) matched.
fn matches_any(keys: &[String], presented: &str) -> bool {
    keys.iter().fold(false, |found, key| {
        found | bool::from(key.as_bytes().ct_eq(presented.as_bytes()))
    })
}

fn unauthorized(reason: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": reason })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(presented_key(&headers), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "xyz".parse().expect("header"));
        assert_eq!(presented_key(&headers), Some("xyz"));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(presented_key(&headers), None);
    }

    #[test]
    fn matching_is_exact() {
        let keys = vec!["secret-one".to_owned(), "secret-two".to_owned()];
        assert!(matches_any(&keys, "secret-two"));
        assert!(!matches_any(&keys, "secret"));
        assert!(!matches_any(&keys, "secret-one "));
    }
}
