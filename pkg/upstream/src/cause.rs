//! Errors people read (outcomes, dead letters, the console) say in one sentence what
//! went wrong — `could not connect to http://127.0.0.1:9999/mcp: connection refused` —
//! not the types the error passed through: rmcp wraps a transport's error in layers
//! whose own text names generic types (`Transport [ProgressTap<WorkerTransport<…>>]
//! error`). These functions look through the layers for the cause.

use std::error::Error;

use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpError;
use rmcp::transport::worker::WorkerQuitReason;
use rmcp::transport::DynamicTransportError;

type HttpError = StreamableHttpError<reqwest::Error>;

/// Why opening a session failed.
pub(crate) fn of_handshake(error: &ClientInitializeError) -> String {
    match error {
        ClientInitializeError::TransportError { error, .. } => of_transport(error),
        ClientInitializeError::ConnectionClosed(_) => {
            "the server closed the connection before answering initialize".to_owned()
        }
        other => other.to_string(),
    }
}

/// Why a request on an open session failed.
pub(crate) fn of_request(error: &ServiceError) -> String {
    match error {
        ServiceError::TransportSend(error) => of_transport(error),
        ServiceError::TransportClosed => "the connection closed".to_owned(),
        other => other.to_string(),
    }
}

fn of_transport(error: &DynamicTransportError) -> String {
    of_error(error.error.as_ref())
}

fn of_error(error: &(dyn Error + 'static)) -> String {
    if let Some(quit) = error.downcast_ref::<WorkerQuitReason<HttpError>>() {
        return match quit {
            WorkerQuitReason::Fatal { error, .. } => of_http(error),
            other => other.to_string(),
        };
    }
    if let Some(http) = error.downcast_ref::<HttpError>() {
        return of_http(http);
    }
    if let Some(http) = error.downcast_ref::<reqwest::Error>() {
        return of_reqwest(http);
    }
    innermost(error)
}

fn of_http(error: &HttpError) -> String {
    match error {
        StreamableHttpError::Client(error) => of_reqwest(error),
        StreamableHttpError::Io(error) => error.kind().to_string(),
        other => other.to_string(),
    }
}

fn of_reqwest(error: &reqwest::Error) -> String {
    let url = error
        .url()
        .map_or_else(|| "the server".to_owned(), shown_url);
    if error.is_connect() {
        format!("could not connect to {url}: {}", innermost(error))
    } else if error.is_timeout() {
        format!("{url} did not answer in time")
    } else if let Some(status) = error.status() {
        format!("{url} answered HTTP {status}")
    } else {
        format!("the request to {url} failed: {}", innermost(error))
    }
}

/// A URL without what may be secret in it (user, password, query).
fn shown_url(url: &url::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.path()
    )
}

/// The last error of the chain: an OS error by its kind (`connection refused`).
fn innermost(error: &(dyn Error + 'static)) -> String {
    let mut last = error;
    while let Some(inner) = last.source() {
        last = inner;
    }
    match last.downcast_ref::<std::io::Error>() {
        Some(io) if io.raw_os_error().is_some() => io.kind().to_string(),
        _ => last.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_reads_as_one_sentence() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").ok();
            listener
                .and_then(|l| l.local_addr().ok())
                .map_or(9, |a| a.port())
        };
        let url = format!("http://user:pw-123456@127.0.0.1:{port}/mcp?token=abcdef");
        let error = reqwest::Client::new().post(&url).send().await.err();
        let text = error.as_ref().map(of_reqwest).unwrap_or_default();
        assert_eq!(
            text,
            format!("could not connect to http://127.0.0.1:{port}/mcp: connection refused")
        );
    }
}
