//! Progress for the caller: an upstream's progress notifications, sent on to whoever
//! called mcp-server with a progress token, each before the result it precedes.

use std::future::Future;

use mcp_jobs_upstream::{relay_progress, Progress, ProgressSink};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use rmcp::RoleServer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Runs `call`, given a sink when the caller sent a progress `token`, and notifies
/// `peer` of every update until the call ends.
pub async fn to_caller<T, F: Future<Output = T>>(
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
