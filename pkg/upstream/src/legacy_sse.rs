//! The HTTP+SSE transport of MCP 2024-11-05, which many deployed servers still speak.
//! The client holds a GET event stream open; its first `endpoint` event names the URL
//! to POST messages to, and every answer arrives as a `message` event on that stream.
//! rmcp ships only the newer Streamable HTTP client, so this is the old one as an rmcp
//! [`Transport`].

use std::future::Future;

use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleClient;
use sse_stream::{Sse, SseStream};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum LegacySseError {
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the endpoint event holds no usable URL: {0}")]
    EndpointUrl(#[from] url::ParseError),
    #[error("the event stream ended before it named the endpoint to post to")]
    NoEndpoint,
    #[error("the event stream names an endpoint on another origin ({origin}); refused")]
    ForeignEndpoint { origin: String },
    #[error("the event stream failed: {0}")]
    Stream(String),
}

type Events = BoxStream<'static, Result<Sse, sse_stream::Error>>;

pub(crate) struct LegacySseTransport {
    http: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    events: Events,
}

impl LegacySseTransport {
    /// Opens the event stream at `url` and waits for the server to name its endpoint.
    pub(crate) async fn connect(
        http: reqwest::Client,
        url: &str,
        headers: HeaderMap,
    ) -> Result<Self, LegacySseError> {
        let base = Url::parse(url)?;
        let response = http
            .get(base.clone())
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await?
            .error_for_status()?;
        let mut events: Events = SseStream::from_bytes_stream(response.bytes_stream()).boxed();
        let endpoint = loop {
            match events.next().await {
                Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                    break base.join(event.data.as_deref().unwrap_or_default().trim())?;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(LegacySseError::Stream(e.to_string())),
                None => return Err(LegacySseError::NoEndpoint),
            }
        };
        // The host was allowed for `url`; a server must not redirect our posts elsewhere.
        if endpoint.origin() != base.origin() {
            return Err(LegacySseError::ForeignEndpoint {
                origin: endpoint.origin().ascii_serialization(),
            });
        }
        Ok(Self {
            http,
            endpoint,
            headers,
            events,
        })
    }
}

impl Transport<RoleClient> for LegacySseTransport {
    type Error = LegacySseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let request = self
            .http
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .json(&item);
        async move {
            request.send().await?.error_for_status()?;
            Ok(())
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let event = match self.events.next().await? {
                Ok(event) => event,
                Err(e) => {
                    tracing::debug!(error = %e, "legacy SSE stream failed");
                    return None;
                }
            };
            if event.event.as_deref().is_some_and(|name| name != "message") {
                continue;
            }
            let Some(data) = event.data else { continue };
            match serde_json::from_str(&data) {
                Ok(message) => return Some(message),
                Err(e) => {
                    tracing::warn!(error = %e, "legacy SSE server sent a message that is not JSON-RPC")
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.events = futures::stream::empty().boxed();
        Ok(())
    }
}
