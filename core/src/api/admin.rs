//! Admin endpoints (bearer admin token): manual sync and dead-letter retries; the DLQ listing.

use super::guards::require_admin;
use super::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State, rejection::PathRejection};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct SyncQuery {
    force: Option<bool>,
}

/// Wakes the one worker for an immediate cycle and returns that cycle's report.
pub async fn sync_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SyncQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let report = state
        .worker
        .sync_now(q.force.unwrap_or(false))
        .await
        .ok_or(ApiError::ServiceUnavailable("the sync worker is stopping"))?;
    Ok(Json(report).into_response())
}

#[derive(Serialize)]
struct DlqList {
    count: usize,
    entries: Vec<crate::buffer::DlqEntry>,
}

pub async fn dlq_list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    super::guards::require_pos(&state, &headers)?;
    let entries = state.buffer.dlq().await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the DLQ");
        ApiError::ServiceUnavailable("the buffer database cannot be read")
    })?;
    Ok(Json(DlqList {
        count: entries.len(),
        entries,
    })
    .into_response())
}

#[derive(Serialize)]
struct Retried {
    status: &'static str,
    retried: usize,
    receipt_ids: Vec<String>,
}

async fn retry(state: &AppState, id: Option<String>) -> Result<Vec<String>, ApiError> {
    let ids = state.buffer.retry_dlq(id).await.map_err(|e| {
        tracing::error!(error = %e, "cannot retry DLQ entries");
        ApiError::StorageUnavailable
    })?;
    if !ids.is_empty() {
        tracing::info!(count = ids.len(), "DLQ entries returned to pending by an operator");
        state.worker.wake();
    }
    Ok(ids)
}

pub async fn dlq_retry_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A path segment that is not UTF-8 names nothing here.
    let Path(id) = id.map_err(|_| ApiError::NotFound("DLQ entry"))?;
    require_admin(&state, &headers)?;
    let ids = retry(&state, Some(id)).await?;
    if ids.is_empty() {
        return Err(ApiError::NotFound("DLQ entry"));
    }
    Ok(Json(Retried {
        status: "pending",
        retried: ids.len(),
        receipt_ids: ids,
    })
    .into_response())
}

pub async fn dlq_retry_all(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let ids = retry(&state, None).await?;
    Ok(Json(Retried {
        status: "pending",
        retried: ids.len(),
        receipt_ids: ids,
    })
    .into_response())
}
