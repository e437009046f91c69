//! The API-key gate ([`mcp_jobs_auth`]). Browsers cannot set headers on a WebSocket,
//! so `/ws/` routes also take the key as an `api_key` query parameter.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mcp_jobs_auth::{matching_key, presented_key};

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
            Some(key) if matching_key(keys, key).is_some() => next.run(request).await,
            Some(_) => unauthorized("invalid API key"),
            None => unauthorized(
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            ),
        },
    }
}

fn websocket_query_key(uri: &Uri) -> Option<String> {
    if !uri.path().starts_with("/ws/") {
        return None;
    }
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(name, _)| name == "api_key")
        .map(|(_, key)| key.into_owned())
}

fn unauthorized(reason: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": reason })),
    )
        .into_response()
}
