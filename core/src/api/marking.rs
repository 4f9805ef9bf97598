//! Marked goods (docs/contract.md §12): `POST /v1/kkt/marking/check` — the till checks a code
//! while scanning — and the gate every receipt with marked items passes before its intent row
//! is stored: each code's verdict (the till's check by its id, a recent one of the same code, or
//! one made now within the online budget), a refused code answered `422 marking_refused` with
//! the reason in Russian, the verdict attached to the item for the register (2106, 1260).

use super::{ApiError, AppState};
use crate::buffer::marking::StoredCheck;
use crate::marking::{Check, Code, Query};
use crate::receipt::{ItemMarking, Receipt, ReceiptType};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

fn code_hash(code: &Code) -> String {
    hex::encode(Sha256::digest(code.as_str().as_bytes()))
}

/// The body of a check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    code: String,
    #[serde(default)]
    operation: Option<String>,
    /// Accepted for the contract's shape; the check does not depend on them yet.
    #[serde(default)]
    #[allow(dead_code)]
    quantity: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    measure: Option<String>,
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![crate::receipt::FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

/// Runs a check and keeps it.
pub(super) async fn check_now(state: &AppState, code: &Code, refund: bool) -> Result<Check, ApiError> {
    let check = state
        .marking
        .check(&Query {
            code: code.clone(),
            refund,
        })
        .await;
    let json = serde_json::to_string(&check).map_err(|_| ApiError::Internal)?;
    state
        .buffer
        .store_marking_check(StoredCheck {
            check_id: check.check_id.clone(),
            code_hash: code_hash(code),
            operation: check.operation.clone(),
            verdict: check.verdict.as_str().into(),
            checked_at_ms: state.clock.now_ms(),
            json,
        })
        .await?;
    tracing::info!(check_id = %check.check_id, code = %check.code, verdict = ?check.verdict, source = %check.permissive.source, "marking code checked");
    Ok(check)
}

/// `POST /v1/kkt/marking/check` `{"code", "operation": "sale"|"refund", "quantity", "measure"}`.
pub async fn check(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let bytes = super::receipts::read_body(body).await?;
    let b: CheckBody =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedJson(format!("body is not a check: {e}")))?;
    let code = Code::new(&b.code);
    if b.code.is_empty() || b.code.chars().count() > 223 {
        return Err(invalid("code", "must be the scanned code, 1–223 characters"));
    }
    if !code.well_formed() {
        return Err(invalid(
            "code",
            "is not a marking code (GS1: 01 + GTIN + 21 + serial, the group separator as the byte 0x1D)",
        ));
    }
    let refund = match b.operation.as_deref() {
        None | Some("sale") => false,
        Some("refund") => true,
        Some(_) => return Err(invalid("operation", "must be \"sale\" or \"refund\"")),
    };
    let check = check_now(&state, &code, refund).await?;
    Ok(Json(check).into_response())
}

/// `GET /v1/kkt/marking/checks?date=YYYY-MM-DD` (the register's day; today by default): the
/// day's checks, oldest first, with counts per verdict — the window's «Маркировка» view.
pub async fn day(
    State(state): State<AppState>,
    q: axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let day = match q.get("date").map(|d| d.trim()).filter(|d| !d.is_empty()) {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("date {d:?} is not YYYY-MM-DD")))?,
        None => {
            let now = chrono::DateTime::from_timestamp_millis(state.clock.wall_ms()).unwrap_or_default();
            state.zone.local(now).date()
        }
    };
    let (from, to) = state.zone.day_bounds(day);
    let checks: Vec<serde_json::Value> = state
        .buffer
        .marking_checks_between(from, to)
        .await?
        .iter()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    let count = |v: &str| checks.iter().filter(|c| c["verdict"] == v).count();
    let body = serde_json::json!({
        "mode": state.marking.settings.mode,
        "date": day.to_string(),
        "counts": {"allowed": count("allowed"), "refused": count("refused"), "unknown": count("unknown")},
        "checks": checks,
    });
    Ok(Json(body).into_response())
}

/// The gate of a new receipt: every marked item's verdict, or `422 marking_refused`.
pub(super) async fn gate(state: &AppState, key: &str, mut receipt: Receipt) -> Result<Receipt, ApiError> {
    if !state.marking.enabled() || receipt.items.iter().all(|i| i.marking_code.is_none()) {
        return Ok(receipt);
    }
    // A replay is answered from the buffer: its codes were checked when it was taken.
    if state.buffer.knows_receipt_key(key.to_string()).await? {
        return Ok(receipt);
    }
    let refund = matches!(
        receipt.kind,
        ReceiptType::SaleRefund
            | ReceiptType::BuyRefund
            | ReceiptType::SaleRefundCorrection
            | ReceiptType::BuyRefundCorrection
    );
    let operation = if refund { "refund" } else { "sale" };
    let reuse_since = state.clock.now_ms() - state.marking.settings.reuse.as_millis() as i64;
    for (n, item) in receipt.items.iter_mut().enumerate() {
        let Some(raw) = item.marking_code.clone() else {
            continue;
        };
        let code = Code::new(&raw);
        let hash = code_hash(&code);
        let parse = |json: String| serde_json::from_str::<Check>(&json).map_err(|_| ApiError::Internal);
        let check = match &item.marking_check_id {
            Some(id) => {
                let field = format!("items[{n}].marking_check_id");
                let (h, json) = state.buffer.marking_check(id.clone()).await?.ok_or_else(|| {
                    invalid(
                        &field,
                        "no such check: check the code first (POST /v1/kkt/marking/check)",
                    )
                })?;
                if h != hash {
                    return Err(invalid(&field, "is the check of another code"));
                }
                let c = parse(json)?;
                if c.operation != operation {
                    return Err(invalid(
                        &field,
                        "is the check of another operation (a sale's check for a refund, or back)",
                    ));
                }
                c
            }
            None => match state
                .buffer
                .recent_marking_check(hash, operation.into(), reuse_since)
                .await?
            {
                Some(json) => parse(json)?,
                None => check_now(state, &code, refund).await?,
            },
        };
        if !state.marking.may_sell(&check) {
            return Err(ApiError::MarkingRefused {
                item: n,
                check_id: check.check_id,
                reason: check.reason,
            });
        }
        item.marking = Some(ItemMarking {
            check_id: check.check_id,
            verdict: check.verdict.as_str().into(),
            tag_2106: check.fn_check.map(|f| f.tag_2106),
            req_id: check.permissive.req_id,
            req_timestamp: check.permissive.req_timestamp,
        });
    }
    Ok(receipt)
}
