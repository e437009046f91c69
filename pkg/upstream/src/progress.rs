//! Progress notifications on their way from an upstream tool to whoever called it
//! (an MCP client, an SSE stream, a WebSocket): each hop awaits its call while relaying
//! the updates that arrive meanwhile, in order, and all of them before the result.
//!
//! rmcp runs notification handlers in tasks of their own, so an update handled that
//! way can land after the result it came before. [`ProgressTap`] hands each update on
//! as the transport reads it instead, before the next message (the result) is read at
//! all: the order on the wire is the order of delivery, and nobody needs to wait for
//! stragglers.

use std::future::Future;

use futures::{FutureExt, Stream, StreamExt};
use rmcp::handler::client::progress::ProgressDispatcher;
use rmcp::model::{JsonRpcMessage, ServerNotification};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleClient;
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
/// already delivered when the call finishes are relayed before its result is returned.
pub async fn relay_progress<T, U, R: Future<Output = ()>>(
    call: impl Future<Output = T>,
    mut updates: impl Stream<Item = U> + Unpin,
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
                return result;
            }
        }
    }
}

/// A client transport that delivers progress notifications to their subscribers as
/// it reads them, so each is with its subscriber before any later message (the
/// call's result) reaches rmcp. The notification still goes on to rmcp afterwards.
pub(crate) struct ProgressTap<T> {
    inner: T,
    progress: ProgressDispatcher,
}

impl<T> ProgressTap<T> {
    pub(crate) fn new(inner: T, progress: ProgressDispatcher) -> Self {
        Self { inner, progress }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for ProgressTap<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await?;
        if let JsonRpcMessage::Notification(notification) = &message {
            if let ServerNotification::ProgressNotification(progress) = &notification.notification {
                self.progress
                    .handle_notification(progress.params.clone())
                    .await;
            }
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
