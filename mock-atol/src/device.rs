//! The device behind the mock web server: its fiscal drive (documents, shift, OFD exchange) and
//! how it executes one JSON task. Result shapes and error codes follow
//! docs/research/atol-web-server.md §2 (sources cited there).

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Device faults, switchable at run time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub paper_out: bool,
    pub cover_open: bool,
    /// The device does not answer the web server (error 2).
    pub disconnected: bool,
    /// Tasks stay `inProgress` until this is switched off.
    pub hang: bool,
    /// The next fiscal task is registered in the FN, then its job is lost (404).
    pub crash_after_register: bool,
    /// The FN sends nothing to the OFD.
    pub ofd_down: bool,
    /// How long a task takes, in milliseconds.
    pub task_ms: u64,
    /// Results with `errorCode`/`errorDescription` instead of `error: {code, description}`.
    pub flat_errors: bool,
    /// The next receipt is refused as the driver refuses a task it cannot parse (501).
    pub refuse: bool,
    /// `GET /api/v2/requests/{uuid}` answers with text that is not JSON.
    pub garbage: bool,
    /// `GET /api/v2/requests/{uuid}` answers with 5 MiB.
    pub huge: bool,
    /// Answers are sent a byte at a time, slowly.
    pub trickle: bool,
}

/// One fiscal document in the FN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub number: i64,
    /// `receipt`, `openShift`, `closeShift`.
    pub kind: String,
    /// The task's type (`sell`, …) for receipts.
    pub operation: String,
    /// The job that made it (the web server's uuid): what the tests count duplicates by.
    pub uuid: String,
    pub at_ms: i64,
    pub total: f64,
    pub sign: String,
}

/// The fiscal drive and the device's clock; persisted as JSON after every change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fn {
    pub fn_number: String,
    pub registration_number: String,
    pub last_doc: i64,
    pub shift_open: bool,
    pub shift_number: i64,
    pub shift_opened_at_ms: i64,
    pub receipts_in_shift: i64,
    /// Added to the wall clock (`POST /mock/clock`).
    pub clock_offset_ms: i64,
    /// The OFD has confirmed every document up to this number.
    pub sent_up_to: i64,
    pub documents: Vec<Document>,
}

impl Fn {
    pub fn new(fn_number: &str) -> Fn {
        Fn {
            fn_number: fn_number.into(),
            registration_number: "0000000000054321".into(),
            last_doc: 0,
            shift_open: false,
            shift_number: 0,
            shift_opened_at_ms: 0,
            receipts_in_shift: 0,
            clock_offset_ms: 0,
            sent_up_to: 0,
            documents: Vec::new(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.clock_offset_ms
    }

    fn expired(&self) -> bool {
        self.shift_open && self.now_ms() - self.shift_opened_at_ms >= 24 * 3600 * 1000
    }

    /// What the OFD has received by now: everything, unless the link is down.
    pub fn exchange(&mut self, faults: &Faults) {
        if !faults.ofd_down {
            self.sent_up_to = self.last_doc;
        }
    }
}

/// The device's local time (Moscow) in the driver's format `2024-05-06T12:34:00+03:00`.
fn local(ms: i64) -> String {
    let msk =
        FixedOffset::east_opt(3 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    t.with_timezone(&msk).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn sign(fn_number: &str, number: i64, at_ms: i64) -> String {
    let d = Sha256::digest(format!("{fn_number}/{number}/{at_ms}"));
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]).to_string()
}

/// A driver error: code and description.
pub type TaskError = (i64, String);

fn parse_error(what: impl Into<String>) -> TaskError {
    (501, what.into())
}

const RECEIPT_TYPES: [&str; 8] = [
    "sell",
    "sellReturn",
    "buy",
    "buyReturn",
    "sellCorrection",
    "sellReturnCorrection",
    "buyCorrection",
    "buyReturnCorrection",
];
const TAXES: [&str; 12] = [
    "vat20", "vat10", "vat120", "vat110", "vat0", "none", "vat5", "vat7", "vat105", "vat107", "vat22", "vat122",
];
const PAYMENT_METHODS: [&str; 7] = [
    "fullPrepayment",
    "prepayment",
    "advance",
    "fullPayment",
    "partialPayment",
    "credit",
    "creditPayment",
];
const TAXATION: [&str; 5] = ["osn", "usnIncome", "usnIncomeOutcome", "esn", "patent"];
const PAYMENT_TYPES: [&str; 5] = ["cash", "electronically", "prepaid", "credit", "other"];

/// Whether a task type makes a fiscal document.
pub fn is_fiscal(kind: &str) -> bool {
    RECEIPT_TYPES.contains(&kind) || kind == "openShift" || kind == "closeShift"
}

fn money(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Checks a receipt task as the driver's own scripts do (`myscripts_base_receipt.js`).
fn validate(task: &Value) -> Result<f64, TaskError> {
    let items = task["items"]
        .as_array()
        .ok_or_else(|| parse_error("Поле \"items\" отсутствует"))?;
    if items.is_empty() {
        return Err(parse_error("Поле \"items\" не может быть пустым"));
    }
    let mut sum = 0.0;
    for (i, it) in items.iter().enumerate() {
        if it["type"] != "position" {
            continue;
        }
        for key in ["name", "price", "quantity", "amount"] {
            if it.get(key).is_none() {
                return Err(parse_error(format!("Поле \"items[{i}].{key}\" отсутствует")));
            }
        }
        let tax = it["tax"]["type"].as_str().unwrap_or_default();
        if !TAXES.contains(&tax) {
            return Err(parse_error(format!(
                "Некорректное значение поля \"items[{i}].tax.type\""
            )));
        }
        if let Some(m) = it["paymentMethod"].as_str()
            && !PAYMENT_METHODS.contains(&m)
        {
            return Err(parse_error(format!(
                "Некорректное значение поля \"items[{i}].paymentMethod\""
            )));
        }
        sum += money(&it["amount"])
            .ok_or_else(|| parse_error(format!("Поле \"items[{i}].amount\" имеет неверный тип")))?;
    }
    if let Some(t) = task["taxationType"].as_str()
        && !TAXATION.contains(&t)
    {
        return Err(parse_error("Некорректное значение поля \"taxationType\""));
    }
    let mut paid = 0.0;
    for p in task["payments"]
        .as_array()
        .ok_or_else(|| parse_error("Поле \"payments\" отсутствует"))?
    {
        if !PAYMENT_TYPES.contains(&p["type"].as_str().unwrap_or_default()) {
            return Err(parse_error("Некорректное значение поля \"payments[].type\""));
        }
        paid += money(&p["sum"]).unwrap_or(0.0);
    }
    let total = task["total"].as_f64().unwrap_or(sum);
    if paid + 0.005 < total {
        return Err((66, "Неверная сумма оплаты: чек оплачен не полностью".into()));
    }
    if task["type"].as_str().is_some_and(|t| t.ends_with("Correction")) && task["correctionBaseDate"].as_str().is_none()
    {
        return Err(parse_error("Поле \"correctionBaseDate\" отсутствует"));
    }
    Ok((total * 100.0).round() / 100.0)
}

impl Fn {
    fn document(&mut self, kind: &str, operation: &str, uuid: &str, total: f64) -> Document {
        self.last_doc += 1;
        let at_ms = self.now_ms();
        let doc = Document {
            number: self.last_doc,
            kind: kind.into(),
            operation: operation.into(),
            uuid: uuid.into(),
            at_ms,
            total,
            sign: sign(&self.fn_number, self.last_doc, at_ms),
        };
        self.documents.push(doc.clone());
        doc
    }

    fn fiscal_params(&self, d: &Document) -> Value {
        json!({"fiscalDocumentNumber": d.number, "fiscalDocumentSign": d.sign,
               "fiscalDocumentDateTime": local(d.at_ms), "fnNumber": self.fn_number,
               "registrationNumber": self.registration_number, "fnsUrl": "www.nalog.gov.ru",
               "shiftNumber": self.shift_number, "fiscalReceiptNumber": self.receipts_in_shift, "total": d.total})
    }

    fn open_shift(&mut self, uuid: &str) -> Document {
        self.shift_number += 1;
        self.shift_open = true;
        self.shift_opened_at_ms = self.now_ms();
        self.receipts_in_shift = 0;
        self.document("openShift", "openShift", uuid, 0.0)
    }

    /// Executes one task; `Ok` is the task's `result`.
    pub fn execute(&mut self, task: &Value, uuid: &str, faults: &Faults) -> Result<Value, TaskError> {
        let kind = task["type"].as_str().unwrap_or_default();
        if faults.disconnected {
            return Err((2, "Нет связи".into()));
        }
        match kind {
            k if RECEIPT_TYPES.contains(&k) => {
                if faults.cover_open {
                    return Err((45, "Открыта крышка".into()));
                }
                if faults.paper_out {
                    return Err((44, "Нет бумаги".into()));
                }
                if faults.refuse {
                    return Err(parse_error("Некорректное значение поля \"items[0].price\""));
                }
                let total = validate(task)?;
                if self.expired() {
                    return Err((68, "Смена превысила 24 часа".into()));
                }
                if !self.shift_open {
                    self.open_shift(uuid);
                }
                self.receipts_in_shift += 1;
                // §2.9 of docs/research/atol-web-server.md: getFnDocument names a correction so.
                let kind = if k.ends_with("Correction") {
                    "receiptCorrection"
                } else {
                    "receipt"
                };
                let doc = self.document(kind, k, uuid, total);
                Ok(json!({"fiscalParams": self.fiscal_params(&doc), "warnings": {"notPrinted": false}}))
            }
            "openShift" => {
                if self.shift_open {
                    // §4 (error codes): 83 DENIED_IN_OPENED_SHIFT.
                    return Err((83, "Смена открыта, операция невозможна".into()));
                }
                let doc = self.open_shift(uuid);
                Ok(json!({"fiscalParams": self.fiscal_params(&doc), "warnings": {"notPrinted": false}}))
            }
            "closeShift" => {
                if !self.shift_open {
                    return Err((73, "Смена закрыта - операция невозможна".into()));
                }
                let receipts = self.receipts_in_shift;
                let doc = self.document("closeShift", "closeShift", uuid, 0.0);
                self.shift_open = false;
                let mut params = self.fiscal_params(&doc);
                params["receiptsCount"] = json!(receipts);
                Ok(json!({"fiscalParams": params, "warnings": {"notPrinted": false}}))
            }
            "getShiftStatus" => {
                let state = if !self.shift_open {
                    "closed"
                } else if self.expired() {
                    "expired"
                } else {
                    "opened"
                };
                Ok(json!({"shiftStatus": {"state": state, "number": self.shift_number,
                          "expiredTime": local(self.shift_opened_at_ms + 24 * 3600 * 1000)}}))
            }
            "getDeviceStatus" => Ok(json!({"deviceStatus": {
                "currentDateTime": local(self.now_ms()),
                "shift": if !self.shift_open { "closed" } else if self.expired() { "expired" } else { "opened" },
                "blocked": false, "coverOpened": faults.cover_open, "paperPresent": !faults.paper_out,
                "fiscal": true, "fnFiscal": true, "fnPresent": true, "cashDrawerOpened": false}})),
            "ofdExchangeStatus" => {
                self.exchange(faults);
                let first = self.documents.iter().find(|d| d.number > self.sent_up_to);
                Ok(json!({"status": {
                    "notSentCount": self.last_doc - self.sent_up_to,
                    "notSentFirstDocNumber": first.map_or(0, |d| d.number),
                    "notSentFirstDocDateTime": first.map(|d| local(d.at_ms)),
                    "lastSuccessKeysUpdate": local(self.now_ms())},
                    "errors": {"fnCommandCode": 0, "documentNumber": 0,
                               "network": {"code": if faults.ofd_down { 1 } else { 0 },
                                           "description": if faults.ofd_down { "Нет соединения с ОФД" } else { "" }},
                               "fn": {"code": 0, "description": ""}, "ofd": {"code": 0, "description": ""}}}))
            }
            "getFnStatus" => Ok(json!({"fnStatus": {"fiscalDocumentNumber": self.last_doc,
                                        "fiscalReceiptNumber": self.receipts_in_shift,
                                        "warnings": {"ofdTimeout": false}}})),
            "getFnDocument" => {
                let n = task["fiscalDocumentNumber"]
                    .as_i64()
                    .ok_or_else(|| parse_error("Поле \"fiscalDocumentNumber\" отсутствует"))?;
                let d = self
                    .documents
                    .iter()
                    .find(|d| d.number == n)
                    // §4 (error codes): 123 FN_NO_MORE_DATA.
                    .ok_or_else(|| (123, format!("В ФН нет запрошенных данных (документ {n})")))?;
                Ok(
                    json!({"documentTLV": {"fiscalDocumentType": d.kind, "1040": d.number, "1077": d.sign,
                                           "1012": local(d.at_ms), "1020": d.total, "1041": self.fn_number}}),
                )
            }
            other => Err(parse_error(format!("Неизвестный тип задания \"{other}\""))),
        }
    }
}
