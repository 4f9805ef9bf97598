//! Receipts the register cannot account for, and a person's decision on each
//! (docs/contract.md §10.5): `GET /v1/kkt/review` lists them with the FN documents that may be
//! theirs; `POST /v1/kkt/receipt/{id}/resolve` (admin) attaches one of those documents,
//! registers the receipt now, or voids it — each an event with the manager's words.

use super::{ApiError, AppState};
use crate::buffer::{ReceiptState, Resolution};
use crate::kkt::DeviceError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The longest comment kept with a decision.
const MAX_COMMENT: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `attach`, `register` or `void`.
    action: String,
    /// For `attach`: the FN document that is this receipt's.
    fiscal_doc_number: Option<i64>,
    /// The manager's words, kept with the decision's event.
    #[serde(default)]
    comment: String,
}

#[derive(Serialize)]
struct Decided {
    receipt_id: String,
    action: &'static str,
    status: ReceiptState,
    #[serde(skip_serializing_if = "Option::is_none")]
    fiscal_doc_number: Option<i64>,
    message: &'static str,
}

fn field(name: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![crate::receipt::FieldError {
        field: name.into(),
        message: message.into(),
    }])
}

/// `POST /v1/kkt/receipt/{id}/resolve`.
pub async fn resolve(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Decision>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound("receipt"))?;
    let Json(d) = body.map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        other => ApiError::MalformedJson(other.body_text()),
    })?;
    if d.comment.chars().count() > MAX_COMMENT {
        return Err(field("comment", "at most 500 characters"));
    }
    let (task, status) = state
        .buffer
        .task(id.clone())
        .await?
        .ok_or(ApiError::NotFound("receipt"))?;
    if status != ReceiptState::NeedsReview {
        return Err(ApiError::NotInReview(format!(
            "the receipt is {}, not waiting for a decision",
            status.as_str()
        )));
    }
    let resolution = match d.action.as_str() {
        "attach" => {
            let n = d
                .fiscal_doc_number
                .filter(|n| *n > 0)
                .ok_or_else(|| field("fiscal_doc_number", "attach needs the FN document's number (> 0)"))?;
            let kkt = state.kkt.clone();
            let found = tokio::task::spawn_blocking(move || kkt.attach(&task, n))
                .await
                .map_err(|_| ApiError::Internal)?;
            match found {
                Ok(f) => Resolution::Attach(f),
                Err(DeviceError::Refused { message, .. }) => return Err(ApiError::DocumentMismatch(message)),
                Err(e) => return Err(e.into()),
            }
        }
        "register" => Resolution::Register,
        "void" => Resolution::Void,
        _ => return Err(field("action", "one of attach, register, void")),
    };
    let number = match &resolution {
        Resolution::Attach(f) => Some(f.doc.fiscal_doc_number),
        _ => None,
    };
    let action = resolution.action();
    let status = state.buffer.resolve(id.clone(), resolution, d.comment).await?;
    let (code, message) = match status {
        ReceiptState::Fiscalizing => (
            StatusCode::ACCEPTED,
            "sent to the register again; the till's next try of its key gets the result",
        ),
        ReceiptState::Voided => (StatusCode::OK, "voided: it will not be registered"),
        _ => (
            StatusCode::OK,
            "attached: the receipt has this document and goes on to the OFD",
        ),
    };
    Ok((
        code,
        Json(Decided {
            receipt_id: id,
            action,
            status,
            fiscal_doc_number: number,
            message,
        }),
    )
        .into_response())
}

#[derive(Serialize)]
struct ReviewList {
    count: usize,
    receipts: Vec<crate::buffer::ReviewEntry>,
}

/// `GET /v1/kkt/review`: the receipts waiting for a decision, oldest first.
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let receipts = state.buffer.review().await?;
    Ok(Json(ReviewList {
        count: receipts.len(),
        receipts,
    })
    .into_response())
}
