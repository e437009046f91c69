//! The HTTP client under the worker's MCP sessions: reqwest, plus the W3C trace context
//! of each request's `_meta` copied into the headers of the POST that carries it.
//!
//! One MCP session carries the requests of many jobs, so the context cannot be a
//! header of the session; it rides on each request's `_meta`, and this lifts it into
//! HTTP where proxies, load balancers and mcp-server's span look for it.
//!
//! It also takes out the progress token rmcp puts on every request: the worker never
//! listens to progress, and a token asks mcp-server to relay it (a streamed answer
//! instead of one JSON body).

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::Sse;

#[derive(Clone)]
pub struct TracedHttp(pub reqwest::Client);

type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;
type StreamResult =
    Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<reqwest::Error>>;

impl StreamableHttpClient for TracedHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        mut message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> PostResult {
        drop_progress_token(&mut message);
        add_trace_headers(&message, &mut custom_headers);
        self.0
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        mut message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> PostResult {
        drop_progress_token(&mut message);
        add_trace_headers(&message, &mut custom_headers);
        self.0
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.0
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> StreamResult {
        self.0
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> StreamResult {
        self.0
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

fn drop_progress_token(message: &mut ClientJsonRpcMessage) {
    if let JsonRpcMessage::Request(request) = message {
        if let ClientRequest::CallToolRequest(call) = &mut request.request {
            if let Some(meta) = &mut call.params.meta {
                meta.0 .0.remove("progressToken");
            }
        }
    }
}

/// Tool calls are the requests that belong to a job; the session's own requests
/// (initialize, pings) belong to none.
fn add_trace_headers(
    message: &ClientJsonRpcMessage,
    headers: &mut HashMap<HeaderName, HeaderValue>,
) {
    let JsonRpcMessage::Request(request) = message else {
        return;
    };
    let ClientRequest::CallToolRequest(call) = &request.request else {
        return;
    };
    let Some(meta) = &call.params.meta else {
        return;
    };
    let mut trace_headers = http::HeaderMap::new();
    mcp_jobs_telemetry::propagation::meta_to_http(&meta.0 .0, &mut trace_headers);
    headers.extend(
        trace_headers
            .into_iter()
            .filter_map(|(name, value)| Some((name?, value))),
    );
}
