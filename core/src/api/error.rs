//! `ApiError`: every error answer of the local API, with one exhaustive mapping to the contract's
//! JSON error body (`code`, `message`, and `details` for validation errors).

use crate::receipt::FieldError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    MissingIdempotencyKey,
    InvalidIdempotencyKey,
    MalformedJson(String),
    Validation(Vec<FieldError>),
    IdempotencyKeyReused,
    IdempotencyInProgress,
    UnsupportedMediaType,
    PayloadTooLarge,
    /// This address sent too many wrong tokens lately (guards::THROTTLE_AFTER a minute).
    TooManyAuthFailures {
        retry_after_secs: u64,
    },
    /// A till's own token posting another till's receipt (reading one is a 404).
    NotYourTill,
    /// The request body did not arrive within `[http] body_timeout_secs` (api/serve.rs).
    RequestTimeout,
    BufferFull {
        retry_after_secs: u64,
    },
    /// The row could not be made durable (the cause is logged): before the register had it
    /// (`printed: false`, nothing happened) or after it printed the receipt (`printed: true`,
    /// its result is stored with a later write and a retry of the key gets it).
    StorageUnavailable {
        printed: bool,
    },
    NotFound(&'static str),
    RouteNotFound,
    MethodNotAllowed,
    Unauthorized,
    /// LAN mode: a receipt call without the POS token.
    PosUnauthorized,
    /// A request header block over the limit.
    HeadersTooLarge,
    Forbidden(&'static str),
    BadRequest(String),
    /// Anything else that failed on our side. The cause is logged where it happened.
    Internal,
    ServiceUnavailable(&'static str),
    /// The buffer database failed a read or a change (the cause is logged by the `From`).
    Database,
    /// The FN takes no receipts: one has waited 30 days for the OFD (54-FZ). Nothing was stored.
    FnBlocked(String),
    /// The shift is over 24 h old and must be closed first. Nothing was stored.
    ShiftExpired(String),
    /// A shift report asked for while no shift is open.
    NoOpenShift(String),
    /// The register is not set up for this (its own code says so): a person must fix it.
    KktMisconfigured(String),
    /// The register cannot answer now (not connected, no paper, …).
    DeviceUnavailable(String),
    /// A decision for a receipt that is not waiting for one (§10.5).
    NotInReview(String),
    /// The document a person named is not this receipt's (another operation or total, another
    /// receipt's tag), or another receipt already has it.
    DocumentMismatch(String),
    DocumentTaken(String),
    /// A marked item's code may not be sold (§12): the reason in Russian.
    MarkingRefused {
        item: usize,
        check_id: String,
        reason: String,
    },
}

/// The one path from a buffer failure to an answer: the cause is logged here, once; the till
/// or the window gets an opaque 503.
impl From<crate::buffer::Error> for ApiError {
    fn from(e: crate::buffer::Error) -> Self {
        tracing::error!(error = %e, "the buffer database failed");
        ApiError::Database
    }
}

/// Intake's refusals, each to its answer (a storage failure logged once, here).
impl From<crate::buffer::AdmitError> for ApiError {
    fn from(e: crate::buffer::AdmitError) -> Self {
        use crate::buffer::AdmitError;
        match e {
            AdmitError::KeyReused => ApiError::IdempotencyKeyReused,
            AdmitError::InProgress => ApiError::IdempotencyInProgress,
            AdmitError::BufferFull { .. } => ApiError::BufferFull { retry_after_secs: 30 },
            AdmitError::Storage(cause) => {
                tracing::error!(%cause, "receipt not stored: storage unavailable");
                ApiError::StorageUnavailable { printed: false }
            }
            AdmitError::ResultUnstored(cause) => {
                tracing::error!(%cause, "receipt printed but its result not stored: storage unavailable");
                ApiError::StorageUnavailable { printed: true }
            }
            AdmitError::NotTaken { reason, message } => ApiError::from_not_taken(reason, message),
        }
    }
}

/// A decision that was not applied.
impl From<crate::buffer::ResolveError> for ApiError {
    fn from(e: crate::buffer::ResolveError) -> Self {
        use crate::buffer::ResolveError;
        match e {
            ResolveError::NotFound => ApiError::NotFound("receipt"),
            e @ ResolveError::NotInReview(_) => ApiError::NotInReview(e.to_string()),
            e @ ResolveError::NumberTaken { .. } => ApiError::DocumentTaken(e.to_string()),
            ResolveError::Storage(cause) => {
                tracing::error!(%cause, "a decision on a receipt was not stored");
                ApiError::Database
            }
        }
    }
}

/// The register's own refusals of a request that is not a receipt (shift reports).
impl From<crate::kkt::DeviceError> for ApiError {
    fn from(e: crate::kkt::DeviceError) -> Self {
        use crate::kkt::DeviceError;
        match e {
            DeviceError::NotTaken { reason, message } => ApiError::from_not_taken(reason, message),
            DeviceError::Unavailable(m) => ApiError::DeviceUnavailable(m),
            DeviceError::Refused { code, message } | DeviceError::Unexpected { code, message } => {
                ApiError::DeviceUnavailable(format!("{code}: {message}"))
            }
            DeviceError::NeedsReview { reason, .. } => ApiError::DeviceUnavailable(reason),
        }
    }
}

impl ApiError {
    fn from_not_taken(reason: crate::kkt::NotTaken, message: String) -> ApiError {
        use crate::kkt::NotTaken;
        match reason {
            NotTaken::FnBlocked => ApiError::FnBlocked(message),
            NotTaken::ShiftExpired => ApiError::ShiftExpired(message),
            NotTaken::NoOpenShift => ApiError::NoOpenShift(message),
            NotTaken::Misconfigured => ApiError::KktMisconfigured(message),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [FieldError]>,
}

impl ApiError {
    pub(super) fn parts(&self) -> (StatusCode, &'static str, String) {
        use ApiError::*;
        match self {
            MissingIdempotencyKey => (
                StatusCode::BAD_REQUEST,
                "idempotency_key_missing",
                "the Idempotency-Key header is required".into(),
            ),
            InvalidIdempotencyKey => (
                StatusCode::BAD_REQUEST,
                "idempotency_key_invalid",
                "the Idempotency-Key header must be 1-255 visible ASCII characters".into(),
            ),
            MalformedJson(m) => (StatusCode::BAD_REQUEST, "malformed_json", m.clone()),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                "the receipt is not valid; see details".into(),
            ),
            IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body".into(),
            ),
            IdempotencyInProgress => (
                StatusCode::CONFLICT,
                "idempotency_request_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly".into(),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/json".into(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is over 1 MiB".into(),
            ),
            TooManyAuthFailures { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_auth_failures",
                "too many wrong tokens from this address: wait and check the token".into(),
            ),
            NotYourTill => (
                StatusCode::FORBIDDEN,
                "pos_id_mismatch",
                "this till's token may post only receipts with its own pos_id".into(),
            ),
            RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time; send it again".into(),
            ),
            BufferFull { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "buffer_full",
                "the buffer of unsynced receipts is at capacity; retry later".into(),
            ),
            StorageUnavailable { printed: false } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the receipt could not be stored durably; nothing was printed — retry with the same Idempotency-Key"
                    .into(),
            ),
            StorageUnavailable { printed: true } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the receipt was printed, but its fiscal result could not be stored yet — retry with the same \
                 Idempotency-Key to get it; it will not be printed again"
                    .into(),
            ),
            NotFound(what) => (StatusCode::NOT_FOUND, "not_found", format!("{what} not found")),
            RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found", "no such endpoint".into()),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method".into(),
            ),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this call needs Authorization: Bearer <admin token> (reads: or the read token)".into(),
            ),
            PosUnauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this adapter takes receipts only with Authorization: Bearer <POS token>".into(),
            ),
            HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "the request headers are too large".into(),
            ),
            Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", (*why).into()),
            BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error; see the adapter's log".into(),
            ),
            ServiceUnavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", (*m).into()),
            Database => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the buffer database is unavailable; see the adapter's log".into(),
            ),
            FnBlocked(m) => (StatusCode::SERVICE_UNAVAILABLE, "fn_blocked", m.clone()),
            ShiftExpired(m) => (StatusCode::CONFLICT, "shift_expired", m.clone()),
            NoOpenShift(m) => (StatusCode::CONFLICT, "shift_not_open", m.clone()),
            KktMisconfigured(m) => (StatusCode::SERVICE_UNAVAILABLE, "kkt_misconfigured", m.clone()),
            DeviceUnavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "device_unavailable", m.clone()),
            NotInReview(m) => (StatusCode::CONFLICT, "not_in_review", m.clone()),
            DocumentMismatch(m) => (StatusCode::UNPROCESSABLE_ENTITY, "document_mismatch", m.clone()),
            DocumentTaken(m) => (StatusCode::CONFLICT, "document_taken", m.clone()),
            MarkingRefused { item, check_id, reason } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "marking_refused",
                format!("items[{item}]: {reason} (check {check_id})"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let details = match &self {
            ApiError::Validation(d) => Some(d.as_slice()),
            _ => None,
        };
        let body = serde_json::to_vec(&Body { code, message, details }).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let ApiError::BufferFull { retry_after_secs } | ApiError::TooManyAuthFailures { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if matches!(self, ApiError::Unauthorized | ApiError::PosUnauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::AdmitError;

    #[test]
    fn a_storage_failure_says_whether_the_receipt_was_printed() {
        let before = ApiError::from(AdmitError::Storage("disk full".into())).parts();
        let after = ApiError::from(AdmitError::ResultUnstored("disk full".into())).parts();
        for (status, code, _) in [&before, &after] {
            assert_eq!(
                (*status, *code),
                (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
            );
        }
        assert!(before.2.contains("nothing was printed"), "{}", before.2);
        assert!(
            after.2.contains("was printed") && after.2.contains("not be printed again"),
            "{}",
            after.2
        );
    }
}
