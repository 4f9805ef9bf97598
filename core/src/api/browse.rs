//! The manager's window's reads (docs/contract.md §9): find a receipt, its slip and QR code, the
//! last hours as a chart, and the DLQ and a day's receipts as CSV for the accountant.
//!
//! CSV is written for a Russian spreadsheet: UTF-8 with a byte-order mark, `;` between fields and
//! a decimal comma (what Excel and LibreOffice expect under a Russian locale), times in the
//! register's zone (`[fiscal] timezone`).

use super::AppState;
use super::error::ApiError;
use crate::buffer::{ReceiptRow, Search};
use crate::money::Kopecks;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

/// A query string that does not parse is the caller's mistake: 400 naming what is wrong.
pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))
}

fn date(text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("date {text:?} is not YYYY-MM-DD")))
}

/// `GET /v1/kkt/receipts` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Fiscal document number, receipt id (or its first 8+ characters) or idempotency key.
    q: Option<String>,
    /// A day in the register's zone, `YYYY-MM-DD`.
    date: Option<String>,
    pos_id: Option<String>,
    /// The receipt's total, e.g. `100` or `99.90`.
    amount: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/kkt/receipts?q=&date=&pos_id=&amount=&limit=` — newest first, at most `limit` (50).
pub async fn search(
    State(state): State<AppState>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let (from_ms, to_ms) = match q.date.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(d) => {
            let (a, b) = state.zone.day_bounds(date(d)?);
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    let total = match q.amount.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => Some(
            Kopecks::parse(&a.replace(',', "."))
                .map_err(|_| ApiError::BadRequest(format!("amount {a:?} is not a sum in rubles")))?,
        ),
        None => None,
    };
    let found = state
        .buffer
        .search(Search {
            q: q.q,
            from_ms,
            to_ms,
            pos_id: q.pos_id.filter(|p| !p.trim().is_empty()),
            total,
            limit: q.limit.unwrap_or(50),
        })
        .await?;
    Ok(Json(serde_json::json!({ "receipts": found })).into_response())
}

/// `GET /v1/kkt/activity?hours=24&interval_minutes=60`: receipts taken, delivered and failed per
/// interval, and the OFD outages. Counts only: open like the status.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    hours: Option<u32>,
    interval_minutes: Option<u32>,
}

pub async fn activity(
    State(state): State<AppState>,
    q: Result<Query<ActivityQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let hours = q.hours.unwrap_or(24);
    let minutes = q.interval_minutes.unwrap_or(60);
    if !(1..=168).contains(&hours) || !(5..=1440).contains(&minutes) {
        return Err(ApiError::BadRequest(
            "hours must be 1–168 and interval_minutes 5–1440".into(),
        ));
    }
    // The chart ends at the end of the current interval, so the last bar fills as time passes.
    let step = i64::from(minutes) * 60_000;
    let now = state.clock.wall_ms();
    let to = (now / step + 1) * step;
    Ok(Json(state.buffer.activity(to, hours, minutes).await?).into_response())
}

fn registered(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound("receipt"))?;
    if id.len() > 64 {
        return Err(ApiError::NotFound("receipt"));
    }
    Ok(id)
}

/// `GET /v1/kkt/receipt/{id}/slip`: the slip as the register prints it (text).
pub async fn slip(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = registered(id)?;
    let (receipt, doc) = state
        .buffer
        .printed(id.clone())
        .await?
        .ok_or(ApiError::NotFound("printed receipt"))?;
    let text = crate::kkt::slip::text(&state.seller, &state.zone, &id, &receipt, &doc);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /v1/kkt/receipt/{id}/qr.svg`: the receipt's QR code (the FNS's `t=…&s=…&fn=…&i=…&fp=…&n=…`)
/// as an SVG image, drawn by the `qrcode` crate.
pub async fn qr(State(state): State<AppState>, id: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let id = registered(id)?;
    let (_, doc) = state
        .buffer
        .printed(id)
        .await?
        .ok_or(ApiError::NotFound("printed receipt"))?;
    let code =
        qrcode::QrCode::with_error_correction_level(doc.qr_code_data.as_bytes(), qrcode::EcLevel::M).map_err(|e| {
            tracing::error!(error = %e, "the receipt's QR data cannot be encoded");
            ApiError::Internal
        })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

fn rubles(k: Kopecks) -> String {
    k.to_decimal_string().replace('.', ",")
}

/// A cell a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, carriage return
/// first: OWASP "CSV Injection") gets a leading `'`, which makes it text: a till's `pos_id` or
/// an OFD's error text `=HYPERLINK(…)` is shown, never run, when the accountant opens the file.
pub(super) fn neutralized(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn csv_response(name: &str, rows: Vec<Vec<String>>) -> Result<Response, ApiError> {
    let mut out = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "cannot write CSV");
        ApiError::Internal
    };
    for row in rows {
        out.write_record(row.iter().map(|cell| neutralized(cell).into_owned()))
            .map_err(|e| failed(&e))?;
    }
    let bytes = out.into_inner().map_err(|e| failed(&e))?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .unwrap_or_default()
}

/// `GET /v1/kkt/dlq.csv`: the DLQ for the accountant.
pub async fn dlq_csv(State(state): State<AppState>) -> Result<Response, ApiError> {
    let zone = state.zone;
    let mut rows = vec![
        [
            "ФД №",
            "Время продажи",
            "Касса",
            "Тип",
            "Сумма, ₽",
            "Оплата",
            "Причина",
            "В DLQ с",
            "Попыток",
            "Последняя ошибка",
            "ID чека",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in state.buffer.dlq().await? {
        let paid = e
            .payments
            .iter()
            .map(|p| format!("{} {}", p.kind.label_ru().to_lowercase(), rubles(p.amount)))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![
            e.fiscal_doc_number.to_string(),
            zone.local_text(ms(&e.created_at)),
            e.pos_id,
            e.kind,
            rubles(e.total),
            paid,
            e.reason,
            zone.local_text(ms(&e.moved_at)),
            e.retry_count.to_string(),
            e.last_error.unwrap_or_default(),
            e.receipt_id,
        ]);
    }
    csv_response("kkt-dlq.csv", rows)
}

/// `GET /v1/kkt/receipts.csv?date=YYYY-MM-DD`: a day's receipts (the register's zone; today by default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    date: Option<String>,
}

pub async fn day_csv(
    State(state): State<AppState>,
    q: Result<Query<DayQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let zone = state.zone;
    let day = match q.date.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(d) => date(d)?,
        None => {
            let now = chrono::DateTime::from_timestamp_millis(state.clock.wall_ms()).unwrap_or_default();
            zone.local(now).date()
        }
    };
    let (from, to) = zone.day_bounds(day);
    let mut rows = vec![
        [
            "ФД №",
            "Время продажи",
            "Касса",
            "Тип",
            "Сумма, ₽",
            "Статус",
            "Доставлен в ОФД",
            "ID чека",
            "Ключ идемпотентности",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in state.buffer.taken_between(from, to).await? {
        let ReceiptRow {
            receipt_id,
            fiscal_doc_number,
            created_at,
            pos_id,
            kind,
            total,
            status,
            synced_at,
            idempotency_key,
            ..
        } = r;
        rows.push(vec![
            fiscal_doc_number.map(|n| n.to_string()).unwrap_or_default(),
            zone.local_text(ms(&created_at)),
            pos_id,
            kind,
            rubles(total),
            status.as_str().to_string(),
            synced_at.map(|s| zone.local_text(ms(&s))).unwrap_or_default(),
            receipt_id,
            idempotency_key,
        ]);
    }
    csv_response(&format!("kkt-receipts-{day}.csv"), rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_cells_are_made_text_and_others_left_alone() {
        for bad in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(super::neutralized(bad), format!("'{bad}"));
        }
        for good in ["POS-001", "100,00", "", "a=b", "ФД №"] {
            assert_eq!(super::neutralized(good), good);
        }
    }
}
