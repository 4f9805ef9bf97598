//! ATOL Web Requests front, everything but the receipt's fields (docs/contract.md §13; the shapes
//! from docs/research/atol-web-server.md §1.2–§1.4 and §2.3–§2.8, sources S1, S2, S5, S6 named
//! there): which tasks a job may hold, the counter operations' bodies, a task's result entry
//! (`status`, the error both flat and nested — the servers' two generations — and `result`),
//! the native answers turned into it, and the queries' results from the register's state.

use super::atol_task::TaskError;
use crate::kkt::{DeviceInfo, ShiftState, ShiftStatus};
use crate::receipt::OpKind;
use serde_json::{Value, json};

/// Receipt tasks: one receipt each, under the job's uuid.
pub const RECEIPTS: &[&str] = &[
    "sell",
    "sellReturn",
    "buy",
    "buyReturn",
    "sellCorrection",
    "sellReturnCorrection",
    "buyCorrection",
    "buyReturnCorrection",
];

/// Fiscal tasks: ATOL's server takes at most one per job (400 "Too many fiscal sub-tasks"; S2
/// `Utils.java`, S5 `S_FISCAL_TASKS`).
pub fn is_fiscal(kind: &str) -> bool {
    RECEIPTS.contains(&kind) || matches!(kind, "openShift" | "closeShift")
}

/// What the adapter does with a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Receipt,
    /// A counter operation (§11), exactly once under the job's uuid and the task's index.
    Operation(Op),
    /// Read from the register (or the buffer) now.
    Query(Query),
    /// The adapter finishes an interrupted slip itself before the next document (§11).
    ContinuePrint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Parsed(OpKind),
    DrawerOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    ShiftStatus,
    DeviceStatus,
    FnInfo,
    OfdExchangeStatus,
}

/// The task's kind, or the driver's error for a type the adapter does not run.
pub fn classify(task: &Value) -> Result<Task, TaskError> {
    let Some(kind) = task["type"].as_str() else {
        return Err((501, "Поле \"type\" отсутствует".into()));
    };
    Ok(match kind {
        k if RECEIPTS.contains(&k) => Task::Receipt,
        "openShift" => Task::Operation(Op::Parsed(OpKind::ShiftOpen)),
        "closeShift" => Task::Operation(Op::Parsed(OpKind::ShiftClose)),
        "reportX" => Task::Operation(Op::Parsed(OpKind::ReportX)),
        "cashIn" | "cashOut" => Task::Operation(Op::Parsed(OpKind::Cash)),
        "nonFiscal" => Task::Operation(Op::Parsed(OpKind::Print)),
        "openCashDrawer" => Task::Operation(Op::DrawerOpen),
        "continuePrint" => Task::ContinuePrint,
        "getShiftStatus" => Task::Query(Query::ShiftStatus),
        "getDeviceStatus" => Task::Query(Query::DeviceStatus),
        "getFnInfo" => Task::Query(Query::FnInfo),
        "ofdExchangeStatus" => Task::Query(Query::OfdExchangeStatus),
        other => {
            return Err((
                504,
                format!("Задание \"{other}\" не поддерживается адаптером (README «Use your existing POS»)"),
            ));
        }
    })
}

fn cashier(task: &Value) -> Option<Value> {
    let name = task["operator"]["name"].as_str()?;
    let mut c = json!({"name": name});
    if let Some(v) = task["operator"]["vatin"].as_str() {
        c["inn"] = json!(v);
    }
    Some(c)
}

/// The native body of a counter operation's task (`POST /v1/kkt/…`), which the operation
/// parser then checks as any other.
pub fn operation_body(kind: OpKind, task: &Value) -> Result<Value, TaskError> {
    let mut body = serde_json::Map::new();
    if let Some(c) = cashier(task) {
        body.insert("cashier".into(), c);
    }
    match kind {
        OpKind::Cash => {
            let sum = task["cashSum"]
                .as_f64()
                .ok_or_else(|| (501, "Поле \"cashSum\" отсутствует".to_string()))?;
            let direction = if task["type"] == "cashIn" { "in" } else { "out" };
            body.insert("direction".into(), json!(direction));
            body.insert("amount".into(), json!(sum));
        }
        OpKind::Print => {
            body.remove("cashier");
            let mut lines = Vec::new();
            let items = task["items"]
                .as_array()
                .ok_or_else(|| (501, "Поле \"items\" отсутствует".to_string()))?;
            for (i, item) in items.iter().enumerate() {
                match (item["type"].as_str(), item["text"].as_str()) {
                    (Some("text"), Some(text)) => lines.extend(text.lines().map(str::to_string)),
                    // Barcodes and pictures need the printer's own commands the adapter does not drive.
                    _ => return Err((501, format!("Некорректное значение поля \"items[{i}].type\""))),
                }
            }
            body.insert("lines".into(), json!(lines));
        }
        OpKind::ShiftOpen | OpKind::ShiftClose | OpKind::ReportX => {}
    }
    Ok(Value::Object(body))
}

/// One task's entry in `GET /api/v2/requests/{uuid}`: `status`, the error as the old servers
/// give it (`errorCode`, `errorDescription`) and as `/api/v2` does (`error`), and `result`.
pub fn entry(status: &str, code: i64, description: &str, result: Value) -> Value {
    json!({
        "status": status,
        "errorCode": code,
        "errorDescription": description,
        "error": {"code": code, "description": description},
        "result": result,
    })
}

pub fn ready(result: Value) -> Value {
    entry("ready", 0, "Ошибок нет", result)
}

pub fn error((code, description): TaskError) -> Value {
    entry("error", code, &description, Value::Null)
}

/// Not done because a task before it in the job failed (502, S2 `Consts.java`).
pub fn interrupted() -> Value {
    entry(
        "interrupted",
        502,
        "Выполнение прервано из-за предыдущих ошибок",
        Value::Null,
    )
}

/// Not started yet.
pub fn waiting() -> Value {
    entry("wait", 0, "Ошибок нет", Value::Null)
}

pub fn in_progress() -> Value {
    entry("inProgress", 0, "Ошибок нет", Value::Null)
}

/// Stored and waiting for the register (ATOL's queue "blocked" on a link or paper error, §1.6):
/// not final; it becomes `ready` or `error` by itself, never sent twice.
pub fn blocked(reason: &str) -> Value {
    entry(
        "blocked",
        2,
        &format!("Задание сохранено и будет выполнено, когда ККТ будет готова: {reason}"),
        Value::Null,
    )
}

/// Final: `ready`, `error`, `interrupted` (S2 `DriverWorker`); `wait`, `inProgress` and
/// `blocked` are not.
pub fn is_final(entry: &Value) -> bool {
    matches!(entry["status"].as_str(), Some("ready" | "error" | "interrupted"))
}

/// ATOL's code for a native error code (docs/research/atol-web-server.md §4).
fn code_of(native: &str) -> i64 {
    match native {
        "validation_error" | "malformed_json" | "bad_request" => 501,
        "shift_not_open" => 73,
        "shift_expired" => 68,
        "shift_open" | "shift_already_open" => 83,
        "fn_blocked" => 117,
        "device_unavailable" => 2,
        "marking_refused" => 421,
        "kkt_misconfigured" => 89,
        _ => 503,
    }
}

/// A native answer that says "the same key again later": nothing final happened — the buffer
/// could not store (or store the result of) it, another request under the key is running, or
/// the register cannot tell whether an operation happened and a person must look. Such a task
/// stays `blocked` and is asked again under its key, never reported as failed (a POS sends a
/// failed task again under a new uuid: a second receipt).
pub fn is_pending(http: u16, body: &Value) -> bool {
    http >= 500
        || matches!(
            body["code"].as_str(),
            Some("idempotency_request_in_progress" | "operation_unknown")
        )
}

/// A native refusal as ATOL's error: the register's own code when it refused, else ours.
pub fn refusal(body: &Value) -> TaskError {
    let device = &body["device_error"];
    if let Some(code) = device["code"].as_str() {
        let n = code.parse::<i64>().unwrap_or(503);
        return (n, device["message"].as_str().unwrap_or_default().to_string());
    }
    (
        code_of(body["code"].as_str().unwrap_or_default()),
        super::describe(body),
    )
}

/// A native answer (`POST /v1/kkt/receipt` or an operation) as the task's entry.
pub fn from_native(http: u16, body: &Value, fiscal_params: impl Fn(&Value) -> Value) -> Value {
    match http {
        200 => ready(fiscal_params(body)),
        202 => blocked(body["reason"].as_str().unwrap_or("ККТ не ответила")),
        _ if is_pending(http, body) => entry(
            "blocked",
            2,
            &format!(
                "Результат задания ещё не известен ({}): оно будет запрошено снова под тем же uuid",
                super::describe(body)
            ),
            Value::Null,
        ),
        _ => error(refusal(body)),
    }
}

/// A receipt's `result` (S1 `utils.getFiscalParams`): `fiscalParams` and `warnings`; the
/// document's time in the register's zone with its offset, as ATOL's server gives it
/// (docs/research/atol-web-server.md §3), not our wire's UTC.
pub fn receipt_result(body: &Value, zone: &crate::time::Zone) -> Value {
    let d = &body["fiscal_doc"];
    let at = d["fiscal_datetime"].as_str().map(|t| zone.with_offset(t));
    json!({
        "fiscalParams": {
            "total": d["total"],
            "fiscalDocumentNumber": d["fiscal_doc_number"],
            "fiscalDocumentDateTime": at,
            "fiscalDocumentSign": d["fiscal_sign"],
            "fnNumber": d["fn_number"],
            "registrationNumber": d["kkt_number"],
            "shiftNumber": d["shift_number"],
            "fiscalReceiptNumber": d["receipt_number"],
            "fnsUrl": "www.nalog.gov.ru",
        },
        "warnings": {"notPrinted": body["status"] == "buffered"},
    })
}

/// A counter operation's `result` (S1 `getFiscalDocumentResult`): the document's fiscal
/// parameters when it made one (open and close), with the native result kept alongside.
pub fn operation_result(body: &Value) -> Value {
    let mut out = json!({"warnings": {"notPrinted": false}});
    if body["fiscal_doc_number"].is_number() || body["shift_number"].is_number() {
        let mut p = json!({
            "shiftNumber": body["shift_number"],
            "fnsUrl": "www.nalog.gov.ru",
        });
        for (ours, theirs) in [
            ("fiscal_doc_number", "fiscalDocumentNumber"),
            ("fiscal_sign", "fiscalDocumentSign"),
            ("fn_number", "fnNumber"),
            ("receipts", "receiptsCount"),
        ] {
            if !body[ours].is_null() {
                p[theirs] = body[ours].clone();
            }
        }
        out["fiscalParams"] = p;
    }
    out["adapter"] = body.clone();
    out
}

fn shift_name(s: ShiftState) -> &'static str {
    match s {
        ShiftState::Open => "opened",
        ShiftState::Expired => "expired",
        ShiftState::Closed => "closed",
    }
}

/// `getShiftStatus` (§2.4).
pub fn shift_status(s: &ShiftStatus) -> Value {
    json!({"shiftStatus": {
        "state": shift_name(s.state),
        "number": s.number,
        "expiredTime": s.expires_at,
        "documentsCount": s.receipts,
    }})
}

/// `getDeviceStatus` (§2.5).
pub fn device_status(d: &DeviceInfo, now: &str) -> Value {
    json!({"deviceStatus": {
        "currentDateTime": now,
        "shift": shift_name(d.shift),
        "blocked": false,
        "coverOpened": d.cover_open.unwrap_or(false),
        "paperPresent": d.paper_present.unwrap_or(true),
        "fiscal": true,
        "fnFiscal": d.fn_phase.as_deref().is_none_or(|p| p == "fiscalMode"),
        "fnPresent": true,
        "cashDrawerOpened": d.drawer_open.unwrap_or(false),
        "model": d.model,
        "serialNumber": d.serial,
    }})
}

/// `getFnInfo` (§2.8).
pub fn fn_info(d: &DeviceInfo) -> Value {
    json!({"fnInfo": {
        "serial": d.fn_number,
        "ffdVersion": d.ffd_version,
        "fnFfdVersion": d.ffd_version,
        "validityDate": d.fn_valid_until,
        "livePhase": d.fn_phase.clone().unwrap_or_else(|| "fiscalMode".into()),
        "warnings": {"criticalError": false, "memoryOverflow": false, "needReplacement": false,
                     "ofdTimeout": false, "resourceExhausted": false},
    }})
}

/// `ofdExchangeStatus` (§2.6): the FN's unsent documents, and the adapter's own OFD backlog.
/// Its time in the register's zone with the offset, as ATOL's.
pub fn ofd_exchange(d: &DeviceInfo, backlog: u64, dead_letters: u64, zone: &crate::time::Zone) -> Value {
    json!({
        "status": {
            "notSentCount": d.fn_unsent,
            "notSentFirstDocNumber": d.fn_unsent_first.unwrap_or(0),
            "notSentFirstDocDateTime": d.fn_unsent_first_at.as_deref().map(|t| zone.with_offset(t)),
        },
        "errors": {"fn": {"code": 0, "description": ""}, "network": {"code": 0, "description": ""},
                   "ofd": {"code": 0, "description": ""}},
        "adapter": {"pending": backlog, "dlq": dead_letters},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_receipt(body: &Value) -> Value {
        receipt_result(body, &crate::time::Zone::Utc)
    }

    #[test]
    fn a_receipts_time_is_the_registers_local_time_with_its_offset_as_atols_server_gives_it() {
        let body = json!({"status": "printed", "fiscal_doc": {"fiscal_datetime": "2026-11-28T10:15:00Z",
            "fiscal_doc_number": 17, "total": 100.0}});
        let moscow = crate::time::Zone::parse("Europe/Moscow").unwrap();
        let p = &receipt_result(&body, &moscow)["fiscalParams"];
        assert_eq!(p["fiscalDocumentDateTime"], "2026-11-28T13:15:00+03:00");
        let omsk = crate::time::Zone::parse("Asia/Omsk").unwrap();
        assert_eq!(
            receipt_result(&body, &omsk)["fiscalParams"]["fiscalDocumentDateTime"],
            "2026-11-28T16:15:00+06:00"
        );
        assert_eq!(
            utc_receipt(&body)["fiscalParams"]["fiscalDocumentDateTime"],
            "2026-11-28T10:15:00+00:00"
        );
        assert_eq!(p["fiscalDocumentNumber"], 17);
        // A receipt still in the buffer has no time yet.
        let waiting = json!({"status": "buffered", "fiscal_doc": {}});
        assert!(receipt_result(&waiting, &moscow)["fiscalParams"]["fiscalDocumentDateTime"].is_null());
    }

    #[test]
    fn a_jobs_tasks_are_classified_and_unknown_ones_named() {
        assert_eq!(classify(&json!({"type": "sell"})), Ok(Task::Receipt));
        assert_eq!(
            classify(&json!({"type": "cashOut"})),
            Ok(Task::Operation(Op::Parsed(OpKind::Cash)))
        );
        let (code, text) = classify(&json!({"type": "fnChange"})).unwrap_err();
        assert_eq!(code, 504);
        assert!(text.contains("fnChange"), "{text}");
        assert!(is_fiscal("closeShift") && !is_fiscal("cashIn"));
    }

    #[test]
    fn native_answers_become_atol_entries() {
        let refused = json!({"code": "kkt_refused", "device_error": {"code": "44", "message": "Нет бумаги"}});
        let e = from_native(422, &refused, utc_receipt);
        assert_eq!(
            (e["status"].as_str(), e["errorCode"].as_i64()),
            (Some("error"), Some(44))
        );
        assert_eq!(e["error"]["description"], "Нет бумаги");
        let closed = json!({"code": "shift_not_open", "message": "no open shift"});
        assert_eq!(from_native(409, &closed, utc_receipt)["errorCode"], 73);
        let unstored = json!({"code": "storage_unavailable", "message": "disk full", "printed": true});
        assert_eq!(from_native(503, &unstored, utc_receipt)["status"], "blocked");
        let unknown = json!({"code": "operation_unknown", "message": "check the X-report"});
        assert_eq!(from_native(409, &unknown, operation_result)["status"], "blocked");
        let waiting = json!({"status": "awaiting_device", "reason": "no paper"});
        let b = from_native(202, &waiting, utc_receipt);
        assert_eq!(b["status"], "blocked");
        assert!(!is_final(&b) && is_final(&interrupted()));
        let cash = operation_body(OpKind::Cash, &json!({"type": "cashIn", "cashSum": 100.5})).unwrap();
        assert_eq!(cash, json!({"direction": "in", "amount": 100.5}));
    }
}
