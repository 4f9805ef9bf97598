//! Counter operations (docs/contract.md §11): `POST /v1/kkt/shift/open`, `…/shift/close`,
//! `…/report/x`, `…/cash`, `…/drawer/open`, `…/print`, `…/receipt/{id}/copy`. Each takes an
//! `Idempotency-Key` and is exactly once, as a receipt is: the buffer stores the intent, the
//! register does it once, a replay answers the same bytes, the key with another body is `422`.
//! POS token rules as for receipts; the window calls them with the admin token.

use super::receipts::{idempotency_key, is_json, read_body};
use super::{ApiError, AppState, Caller};
use crate::buffer::OpRequest;
use crate::receipt::counter::Operation;
use crate::receipt::{Invalid, OpKind, parse_operation};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State, rejection::PathRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Stores and runs one operation; the answer as stored. The vendor fronts call it too (§13).
pub(super) async fn operate(
    state: &AppState,
    till: Option<&str>,
    key: String,
    body: &[u8],
    op: Operation,
) -> Result<Response, ApiError> {
    // What the key stands for: the endpoint, the operation as stored (a copy names its
    // receipt), the body as sent, and the till that sent it — the same key from another till,
    // on another endpoint or for another receipt is another request (422), never a replay of
    // someone else's answer.
    let mut hash = Sha256::new();
    let canonical = serde_json::to_string(&op).map_err(|_| ApiError::Internal)?;
    for part in [
        op.name().as_bytes(),
        canonical.as_bytes(),
        till.unwrap_or_default().as_bytes(),
        body,
    ] {
        hash.update(part);
        hash.update([0]);
    }
    let body_hash = hex::encode(hash.finalize());
    let name = op.name();
    let admitted = state
        .buffer
        .operate(OpRequest {
            idempotency_key: key,
            body_hash,
            op,
        })
        .await?;
    if !admitted.replayed {
        tracing::info!(
            operation_id = %admitted.receipt_id,
            operation = %name,
            status = admitted.http_status,
            "counter operation answered"
        );
    }
    let status = StatusCode::from_u16(admitted.http_status).unwrap_or(StatusCode::OK);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], admitted.body).into_response();
    if admitted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    // A closed shift may let receipts held for an expired one through.
    if status == StatusCode::OK && !admitted.replayed && name == "shift_close" {
        state.buffer.wake_device().await;
    }
    Ok(response)
}

/// The till's own `pos_id` when its own token calls.
pub(super) fn till_of(caller: Option<Extension<Caller>>) -> Option<String> {
    match caller.map(|c| c.0) {
        Some(Caller::Till(Some(pos))) => Some(pos),
        _ => None,
    }
}

/// An operation whose body the endpoint's kind parses.
async fn with_body(
    state: AppState,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
    kind: OpKind,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let bytes = read_body(body).await?;
    if !bytes.is_empty() && !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let op = parse_operation(kind, &bytes, &state.defaults).map_err(|e| match e {
        Invalid::Malformed(m) => ApiError::MalformedJson(m),
        Invalid::Fields(f) => ApiError::Validation(f),
    })?;
    operate(&state, till_of(caller).as_deref(), key, &bytes, op).await
}

/// `POST /v1/kkt/shift/open` `{"cashier": {"name", "inn"}}`.
pub async fn shift_open(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    with_body(state, caller, headers, body, OpKind::ShiftOpen).await
}

/// `POST /v1/kkt/shift/close` `{"cashier": …}`: the Z-report with the register's totals. A
/// caller of the earlier contract that sends no `Idempotency-Key` still closes the shift, once
/// per request (a second close finds no open shift: `409 shift_not_open`).
pub async fn shift_close(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    mut headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !headers.contains_key("idempotency-key") {
        let key = format!("shift-close-{}", uuid::Uuid::new_v4());
        headers.insert(
            "idempotency-key",
            HeaderValue::from_str(&key).map_err(|_| ApiError::Internal)?,
        );
    }
    with_body(state, caller, headers, body, OpKind::ShiftClose).await
}

/// `POST /v1/kkt/report/x` `{"cashier": …}`: the shift's totals, printed; the shift stays open.
pub async fn report_x(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    with_body(state, caller, headers, body, OpKind::ReportX).await
}

/// `POST /v1/kkt/cash` `{"direction": "in"|"out", "amount": 1000.00, "cashier": …}`.
pub async fn cash(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    with_body(state, caller, headers, body, OpKind::Cash).await
}

/// `POST /v1/kkt/print` `{"lines": ["…"]}`: non-fiscal text (a bank terminal's slip).
pub async fn print(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    with_body(state, caller, headers, body, OpKind::Print).await
}

/// `POST /v1/kkt/drawer/open`.
pub async fn drawer_open(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let bytes = read_body(body).await?;
    operate(&state, till_of(caller).as_deref(), key, &bytes, Operation::DrawerOpen).await
}

/// `POST /v1/kkt/receipt/{id}/copy`: that receipt's document printed again from the FN. A
/// till's own token copies only its own receipts.
pub async fn copy(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound("receipt"))?;
    let key = idempotency_key(&headers)?;
    let bytes = read_body(body).await?;
    if id.len() > 64 {
        return Err(ApiError::NotFound("receipt"));
    }
    let (receipt, doc) = state
        .buffer
        .printed(id.clone())
        .await?
        .ok_or(ApiError::NotFound("fiscalized receipt"))?;
    let till = till_of(caller);
    if till.as_ref().is_some_and(|pos| *pos != receipt.pos_id) {
        return Err(ApiError::NotFound("fiscalized receipt"));
    }
    let op = Operation::Copy {
        receipt_id: id,
        fiscal_doc_number: doc.fiscal_doc_number,
    };
    operate(&state, till.as_deref(), key, &bytes, op).await
}
