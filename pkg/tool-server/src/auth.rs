//! The API-key gate ([`mcp_jobs_auth`]), and what each key may reach. Browsers cannot
//! set headers on a WebSocket, so `/ws/` routes also take the key as an `api_key` query
//! parameter. A key scoped to some named servers finds the others absent (404), and a
//! key without the meta-tools finds `/mcp`, `/tools`, `/ws/tools` and `/stats` absent.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mcp_jobs_auth::{matching_key, presented_key};
use serde_json::json;

use crate::config::{Auth, KeyScope};

/// Lets a request through only if it carries one of the configured keys and the path
/// is within that key's scope; handlers find the scope in the request's extensions.
pub async fn require_api_key(
    State(auth): State<Auth>,
    mut request: Request,
    next: Next,
) -> Response {
    let scope = match &auth {
        Auth::Disabled => KeyScope::FULL,
        Auth::ApiKeys { keys, scopes } => match presented_key(request.headers())
            .map(str::to_owned)
            .or_else(|| websocket_query_key(request.uri()))
            .as_deref()
        {
            Some(key) => match matching_key(keys, key) {
                Some(index) => scopes[index].clone(),
                None => return unauthorized("invalid API key"),
            },
            None => {
                return unauthorized(
                    "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                )
            }
        },
    };
    if !reaches(&scope, request.uri().path()) {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": "not found" }))).into_response();
    }
    request.extensions_mut().insert(scope);
    next.run(request).await
}

/// Whether `scope` reaches `path`: a named server's endpoint if the key may use that
/// server, the listing always (it shows only those), anything else with the meta-tools.
fn reaches(scope: &KeyScope, path: &str) -> bool {
    match path.strip_prefix("/servers") {
        Some("" | "/") => true,
        Some(rest) => rest
            .strip_prefix('/')
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|name| scope.allows_server(name)),
        None => scope.meta_tools,
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
        Json(json!({ "error": reason })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scoped_key_reaches_its_servers_and_the_listing_only() {
        let scope = KeyScope {
            servers: Some(["time".to_owned()].into()),
            meta_tools: false,
        };
        assert!(reaches(&scope, "/servers"));
        assert!(reaches(&scope, "/servers/time/mcp"));
        assert!(!reaches(&scope, "/servers/github/mcp"));
        assert!(!reaches(&scope, "/servers/timex/mcp"));
        for meta in [
            "/mcp",
            "/tools",
            "/tools/call_tool",
            "/ws/tools/call_tool",
            "/stats",
        ] {
            assert!(!reaches(&scope, meta), "{meta}");
            assert!(reaches(&KeyScope::FULL, meta), "{meta}");
        }
    }
}
