//! `GET /stats/summary`: upstream's Summary API (`kubelet/pkg/apis/stats/v1alpha1`) with
//! what `kubectl top` and metrics consumers read, from the shared [`crate::stats`]
//! provider: the node's CPU and memory from `/proc`, per pod and container CPU
//! (`usageNanoCores`, `usageCoreNanoSeconds`) and memory (`workingSetBytes`) from the
//! runtime's container stats.
//!
//! CPU rates are taken between readings: a background task reads every
//! [`SAMPLE_INTERVAL`] so a request's rates cover at most that window.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{text_error, Kubelet};

/// How often CPU counters are read in the background.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Reads the summary forever (the server aborts it on shutdown), keeping CPU rates'
/// windows short.
pub async fn sample(kubelet: Arc<Kubelet>) {
    loop {
        let _ = kubelet
            .stats
            .summary_with_host(&kubelet.config.node_name, kubelet.config.runtime.as_ref())
            .await;
        tokio::time::sleep(SAMPLE_INTERVAL).await;
    }
}

/// The handler.
pub async fn summary(State(k): State<Arc<Kubelet>>) -> Response {
    let summary = k
        .stats
        .summary_with_host(&k.config.node_name, k.config.runtime.as_ref())
        .await;
    match summary.map(|s| serde_json::to_string(&s)) {
        Ok(Ok(body)) => ([(http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(Err(e)) => text_error(http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text_error(http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
