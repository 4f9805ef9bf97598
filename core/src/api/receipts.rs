//! `POST /v1/kkt/receipt` (Phase 1) and `GET /v1/kkt/receipt/{id}`.

use super::{ApiError, AppState, Caller};
use crate::buffer::AdmitRequest;
use crate::counters::Intake;
use crate::receipt::{self, Invalid};
use axum::Extension;
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

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get("idempotency-key").ok_or(ApiError::MissingIdempotencyKey)?;
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    let key = String::from_utf8_lossy(bytes).into_owned();
    if crate::buffer::jobs::front_of_key(&key) != "api" {
        // The vendor fronts' own keys (docs/contract.md §13): a native request under one would
        // take a front's job's receipt, or be taken by it.
        return Err(ApiError::BadRequest(
            "Idempotency-Key must not begin with \"atol:\" or \"kkmserver:\": those are the vendor fronts' keys".into(),
        ));
    }
    Ok(key)
}

/// The request body, whole, within [`MAX_BODY`] and the body deadline.
pub(super) async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        // The causes, outermost first: the limit's error, or the deadline's under axum's wrappers.
        let chain = std::iter::successors(std::error::Error::source(&e), |s| s.source());
        let (mut too_large, mut too_slow) = (false, false);
        for cause in chain {
            too_large |= cause.is::<http_body_util::LengthLimitError>();
            too_slow |= cause.is::<super::serve::BodyTooSlow>();
        }
        if too_large {
            ApiError::PayloadTooLarge
        } else if too_slow {
            ApiError::RequestTimeout
        } else {
            ApiError::BadRequest(format!("cannot read the body: {e}"))
        }
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let till = super::counter::till_of(caller);
    match admit(&state, till.as_deref(), &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            state.metrics.record_intake(Intake::Refused);
            e.into_response()
        }
    }
}

async fn admit(state: &AppState, till: Option<&str>, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let key = idempotency_key(headers)?;
    let bytes = read_body(body).await?;
    let response = take(state, till, key, &bytes).await?;
    state.metrics.record_intake(if is_replay(&response) {
        Intake::Replayed
    } else {
        Intake::Created
    });
    Ok(response)
}

/// Whether an answer of [`take`] replays a stored one.
pub(super) fn is_replay(response: &Response) -> bool {
    response.headers().contains_key("idempotent-replayed")
}

/// A receipt's body under its key: parsed, its marked items checked, stored, registered and
/// answered (or the stored answer replayed). The vendor fronts call it too (§13); each caller
/// counts its own intake (a front's job run again after a poll is not a till's retry).
pub(super) async fn take(
    state: &AppState,
    till: Option<&str>,
    key: String,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let receipt = receipt::parse(bytes, &state.defaults).map_err(|e| match e {
        Invalid::Malformed(m) => ApiError::MalformedJson(m),
        Invalid::Fields(f) => ApiError::Validation(f),
    })?;
    if till.is_some_and(|pos| pos != receipt.pos_id) {
        return Err(ApiError::NotYourTill);
    }
    let body_hash = hex::encode(Sha256::digest(bytes));
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
    // Inside the key's guard: a concurrent duplicate gets 409 at once instead of asking the
    // marking services and the FN again.
    let receipt = super::marking::gate(state, &key, receipt).await?;
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
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    } else {
        state.worker.wake();
    }
    Ok(response)
}

/// A receipt: whole for the admin and read tokens and for its own till's token; another till's
/// receipt is "not found" to a till's own token; for the shared POS token and an anonymous
/// local caller (who cannot be told apart from any other till), without the personal data of
/// the request (`customer`, `cashier`).
pub async fn show(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A path segment that is not UTF-8 names nothing here.
    let Path(id) = id.map_err(|_| ApiError::NotFound("receipt"))?;
    if id.len() > 64 {
        return Err(ApiError::NotFound("receipt"));
    }
    let mut view = state.buffer.receipt(id).await?.ok_or(ApiError::NotFound("receipt"))?;
    match caller.map_or(Caller::Anonymous, |c| c.0) {
        Caller::Admin | Caller::Reader => {}
        Caller::Till(Some(pos)) if pos == view.pos_id => {}
        Caller::Till(Some(_)) => return Err(ApiError::NotFound("receipt")),
        Caller::Till(None) | Caller::Anonymous => view.request = without_personal_data(&view.request),
    }
    Ok(Json(view).into_response())
}

/// The stored request without the customer's contact and the cashier (152-FZ personal data).
fn without_personal_data(request: &serde_json::value::RawValue) -> Box<serde_json::value::RawValue> {
    let mut v: serde_json::Value = serde_json::from_str(request.get()).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("customer");
        o.remove("cashier");
    }
    serde_json::value::to_raw_value(&v).unwrap_or_else(|_| request.to_owned())
}
