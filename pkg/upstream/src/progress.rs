//! Progress notifications on their way from an upstream tool to whoever called it
//! (an MCP client, an SSE stream, a WebSocket): each hop awaits its call while relaying
//! the updates that arrive meanwhile, in order, and all of them before the result.

use std::future::Future;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

/// One progress notification from an upstream tool, without the upstream's token.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a caller wants a call's progress notifications to go.
pub type ProgressSink = mpsc::UnboundedSender<Progress>;

/// Awaits `call`, handing each update from `updates` to `relay` as it comes; updates
/// already sent when the call finishes are relayed before its result is returned, and
/// so are those that arrive within `linger` after it (for sources that may deliver an
/// update a moment after the result it preceded).
pub async fn relay_progress<T, U, R: Future<Output = ()>>(
    call: impl Future<Output = T>,
    mut updates: impl Stream<Item = U> + Unpin,
    linger: Duration,
    mut relay: impl FnMut(U) -> R,
) -> T {
    let mut call = std::pin::pin!(call);
    loop {
        tokio::select! {
            biased;
            Some(update) = updates.next() => relay(update).await,
            result = &mut call => {
                while let Some(Some(update)) = updates.next().now_or_never() {
                    relay(update).await;
                }
                let until = tokio::time::Instant::now() + linger;
                while let Ok(Some(update)) = tokio::time::timeout_at(until, updates.next()).await {
                    relay(update).await;
                }
                return result;
            }
        }
    }
}
