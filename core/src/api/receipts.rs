//! `POST /v1/kkt/receipt` (Phase 1) and `GET /v1/kkt/receipt/{id}`.

use super::{ApiError, AppState};
use crate::buffer::AdmitRequest;
use crate::counters::Intake;
use crate::receipt::{self, Invalid};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State, rejection::PathRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// Removes an idempotency key from the in-flight set when the request ends, however it ends.
struct InFlight<'a> {
    state: &'a AppState,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.state.in_flight.lock() {
            set.remove(&self.key);
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get("idempotency-key").ok_or(ApiError::MissingIdempotencyKey)?;
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match admit(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            state.metrics.record_intake(Intake::Refused);
            e.into_response()
        }
    }
}

async fn admit(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let key = idempotency_key(headers)?;
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(format!("cannot read the body: {e}"))
        }
    })?;
    let receipt = receipt::parse(&bytes, &state.defaults).map_err(|e| match e {
        Invalid::Malformed(m) => ApiError::MalformedJson(m),
        Invalid::Fields(f) => ApiError::Validation(f),
    })?;
    let body_hash = hex::encode(Sha256::digest(&bytes));
    {
        let mut set = state.in_flight.lock().map_err(|_| ApiError::Internal)?;
        if !set.insert(key.clone()) {
            return Err(ApiError::IdempotencyInProgress);
        }
    }
    let _guard = InFlight {
        state,
        key: key.clone(),
    };
    let admitted = state
        .buffer
        .admit(AdmitRequest {
            idempotency_key: key,
            body_hash,
            receipt,
        })
        .await?;
    let status = StatusCode::from_u16(admitted.http_status).unwrap_or(StatusCode::OK);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], admitted.body).into_response();
    if admitted.replayed {
        state.metrics.record_intake(Intake::Replayed);
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    } else {
        state.metrics.record_intake(Intake::Created);
        state.worker.wake();
    }
    Ok(response)
}

pub async fn show(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A path segment that is not UTF-8 names nothing here.
    let Path(id) = id.map_err(|_| ApiError::NotFound("receipt"))?;
    if id.len() > 64 {
        return Err(ApiError::NotFound("receipt"));
    }
    let view = state.buffer.receipt(id).await?.ok_or(ApiError::NotFound("receipt"))?;
    Ok(Json(view).into_response())
}
