//! `GET /servers`: the named servers, how each is reached (never its secrets) and how
//! it fares now; `/servers/{name}/mcp`: each one's MCP endpoint ([`super::relay`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use mcp_jobs_contract::{RemoteTransport, ServerConfig};
use mcp_jobs_upstream::{Health, Pool};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::StreamableHttpService;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::relay::{ListedTools, Relay};
use super::NamedServer;
use super::Registry;
use crate::app::{mcp_config, mcp_service};
use crate::config::{KeyScope, ServerSettings};
use crate::tasks::TasksSlot;

/// What the named-server routes need.
#[derive(Clone)]
pub struct Named {
    pub registry: Arc<Registry>,
    pub pool: Pool,
    pub settings: Arc<ServerSettings>,
    pub listed: ListedTools,
    pub sessions: SessionServices,
    /// Durable tasks, when mcp-server has Kafka.
    pub tasks: Option<TasksSlot>,
    /// Ends open MCP streams at shutdown.
    pub stop: CancellationToken,
}

pub fn routes() -> Router<Named> {
    Router::new()
        .route("/servers", get(list))
        .route("/servers/{name}/mcp", any(relay))
}

/// One named server's MCP endpoint; a name not in the servers file is 404, as any
/// path that does not exist.
async fn relay(State(named): State<Named>, Path(name): Path<String>, request: Request) -> Response {
    let Some(server) = named.registry.servers().get(&name).cloned() else {
        let body = Json(json!({ "error": format!("there is no named server {name:?}") }));
        return (StatusCode::NOT_FOUND, body).into_response();
    };
    let relay = Relay::new(&name, server.clone(), &named);
    if server.options.sessions {
        let service = named.sessions.service(&name, &server, || {
            let config = mcp_config(&named.settings, named.stop.clone());
            let sessions = Arc::new(LocalSessionManager::default());
            StreamableHttpService::new(
                move || Ok(relay.clone()),
                sessions,
                config.with_legacy_session_mode(true),
            )
        });
        return service.handle(request).await.into_response();
    }
    mcp_service(relay, &named.settings, named.stop.clone())
        .handle(request)
        .await
        .into_response()
}

/// The services of named servers whose legacy clients get sessions, each with its
/// sessions, kept for the server's description now: a server the servers file changed
/// gets a new service and its old sessions end (their clients get 404 and start anew,
/// as the spec has them do).
#[derive(Clone, Default)]
pub struct SessionServices(Arc<Mutex<HashMap<String, Sessions>>>);

type SessionService = StreamableHttpService<Relay, LocalSessionManager>;

/// A server's service with its sessions, and the description it was started for.
type Sessions = (Arc<NamedServer>, SessionService);

impl SessionServices {
    fn service(
        &self,
        name: &str,
        server: &Arc<NamedServer>,
        start: impl FnOnce() -> SessionService,
    ) -> SessionService {
        let mut services = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match services.get(name) {
            Some((described, service)) if Arc::ptr_eq(described, server) => service.clone(),
            _ => {
                let service = start();
                services.insert(name.to_owned(), (server.clone(), service.clone()));
                service
            }
        }
    }
}

#[derive(Serialize)]
struct Listing {
    servers: Vec<Listed>,
}

#[derive(Serialize)]
struct Listed {
    name: String,
    transport: &'static str,
    /// The command, or the remote's origin: never args, env or headers.
    target: String,
    trusted: bool,
    health: Health,
}

async fn list(State(named): State<Named>, Extension(scope): Extension<KeyScope>) -> Json<Listing> {
    let servers = named.registry.servers();
    let mut listed = Vec::with_capacity(servers.len());
    for (name, server) in servers.iter().filter(|(name, _)| scope.allows_server(name)) {
        listed.push(Listed {
            name: name.clone(),
            transport: transport(&server.config),
            target: target(&server.config),
            trusted: server.options.trusted,
            health: named.pool.health(&server.config, server.trust()).await,
        });
    }
    Json(Listing { servers: listed })
}

fn transport(config: &ServerConfig) -> &'static str {
    match config {
        ServerConfig::Stdio(_) => "stdio",
        ServerConfig::Remote(remote) => match remote.transport {
            RemoteTransport::StreamableHttp => "streamable-http",
            RemoteTransport::Sse => "sse",
        },
    }
}

fn target(config: &ServerConfig) -> String {
    match config {
        ServerConfig::Stdio(stdio) => stdio.command.clone(),
        ServerConfig::Remote(remote) => url::Url::parse(&remote.url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| "(invalid URL)".to_owned()),
    }
}
