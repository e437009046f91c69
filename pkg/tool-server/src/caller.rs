//! What a relayed call owes its caller: the upstream's progress notifications, sent on
//! to a caller that gave a progress token (each before the result it precedes), and
//! an end to the call when the caller cancels it or goes away.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use mcp_jobs_upstream::{relay_progress, Progress, ProgressSink};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use rmcp::RoleServer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Runs `call`, given a sink when the caller sent a progress `token`, and notifies
/// `peer` of every update until the call ends.
pub async fn with_progress<T, F: Future<Output = T>>(
    token: Option<ProgressToken>,
    peer: Peer<RoleServer>,
    call: impl FnOnce(Option<ProgressSink>) -> F,
) -> T {
    let Some(token) = token else {
        return call(None).await;
    };
    let (sink, updates) = mpsc::unbounded_channel();
    relay_progress(
        call(Some(sink)),
        UnboundedReceiverStream::new(updates),
        |update: Progress| {
            let mut notification = ProgressNotificationParam::new(token.clone(), update.progress);
            notification.total = update.total;
            notification.message = update.message;
            let peer = peer.clone();
            async move {
                // A caller that stopped listening does not stop the call.
                let _ = peer.notify_progress(notification).await;
            }
        },
    )
    .await
}

/// `call`'s output, or `None` if the caller cancelled (or its connection closed) first:
/// the call is then dropped, which frees its slot in the pool and tells the upstream.
pub async fn unless_cancelled<T>(
    cancelled: &CancellationToken,
    call: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        output = call => Some(output),
        () = cancelled.cancelled() => None,
    }
}

/// The answer to a call its caller cancelled; nobody may be left to read it.
pub fn cancelled_error() -> rmcp::ErrorData {
    rmcp::ErrorData::internal_error("cancelled by the caller", None)
}
