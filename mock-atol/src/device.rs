//! The device behind the mock web server: its fiscal drive (documents, shift, OFD exchange) and
//! how it executes one JSON task. Result shapes and error codes follow
//! docs/research/atol-web-server.md §2 (sources cited there); documents as `getFnDocument`
//! gives them back are in [`crate::documents`].

use crate::documents::{Document, Item, local};
use crate::faults::Faults;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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
    /// The cash counter: what should be in the drawer (S1 `json_getShiftTotals.js`
    /// `cashDrawer.sum`): each receipt's cash, net of change, in or out by its operation.
    #[serde(default)]
    pub cash_sum: f64,
    /// Cash in and out in the current shift (`getShiftTotals` `income`/`outcome`).
    #[serde(default)]
    pub income: crate::counter::Counter,
    #[serde(default)]
    pub outcome: crate::counter::Counter,
    /// When the FN's keys run out (`getFnInfo` `validityDate`): 400 days after the FN was
    /// first used (0 in a state file of an earlier version: then 400 days from now).
    #[serde(default)]
    pub valid_until_ms: i64,
    /// Marking codes being validated and accepted (`crate::marks`).
    #[serde(default)]
    pub marks: crate::marks::Marks,
    /// Every counter task carried out (`crate::counter`), for tests to count.
    #[serde(default)]
    pub executed: Vec<crate::counter::Executed>,
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
            cash_sum: 0.0,
            income: Default::default(),
            outcome: Default::default(),
            valid_until_ms: Utc::now().timestamp_millis() + 400 * 86_400_000,
            marks: Default::default(),
            executed: Vec::new(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.clock_offset_ms
    }

    pub fn shift_expired(&self) -> bool {
        self.expired()
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

/// What a valid receipt task holds: its total, positions and additional attribute (1192).
struct Checked {
    total: f64,
    items: Vec<Item>,
    tag: Option<String>,
}

/// Checks a receipt task as the driver's own scripts do (`myscripts_base_receipt.js`,
/// `myscripts_validators.js`).
/// A receipt task's cash for the drawer: its cash payments less the change (payments above
/// the total), into the drawer for a sale or a buy refund (and their corrections), out of it
/// for the others.
fn cash_of(task: &Value, kind: &str, total: f64) -> f64 {
    let payments = task["payments"].as_array().cloned().unwrap_or_default();
    let sum = |cash_only: bool| -> f64 {
        payments
            .iter()
            .filter(|p| !cash_only || p["type"] == "cash")
            .filter_map(|p| p["sum"].as_f64())
            .sum()
    };
    let cash = (sum(true) - (sum(false) - total).max(0.0)).max(0.0);
    let into_drawer = matches!(kind, "sell" | "sellCorrection" | "buyReturn" | "buyReturnCorrection");
    if into_drawer { cash } else { -cash }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A receipt task's money per payment form, its cash net of change (`cash`).
fn payments_of(task: &Value, cash: f64) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for p in task["payments"].as_array().into_iter().flatten() {
        let kind = p["type"].as_str().unwrap_or("other").to_string();
        if kind != "cash" {
            *out.entry(kind).or_insert(0.0) += p["sum"].as_f64().unwrap_or(0.0);
        }
    }
    if cash > 0.0 {
        out.insert("cash".into(), round(cash));
    }
    out
}

fn validate(task: &Value) -> Result<Checked, TaskError> {
    let items = task["items"]
        .as_array()
        .ok_or_else(|| parse_error("Поле \"items\" отсутствует"))?;
    if items.is_empty() {
        return Err(parse_error("Поле \"items\" не может быть пустым"));
    }
    let mut sum = 0.0;
    let mut positions = Vec::new();
    let mut tag = None;
    for (i, it) in items.iter().enumerate() {
        if it["type"] == "additionalAttribute" {
            let value = it["value"]
                .as_str()
                .ok_or_else(|| parse_error(format!("Поле \"items[{i}].value\" отсутствует")))?;
            // At most 16 characters (KKTServiceLib AdditionalAttributeDocumentParams).
            if value.chars().count() > 16 {
                return Err(parse_error(format!("Поле \"items[{i}].value\" длиннее 16 символов")));
            }
            tag = Some(value.to_string());
            continue;
        }
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
        let amount = money(&it["amount"])
            .ok_or_else(|| parse_error(format!("Поле \"items[{i}].amount\" имеет неверный тип")))?;
        sum += amount;
        positions.push(Item {
            name: it["name"].as_str().unwrap_or_default().to_string(),
            price: it["price"].as_f64().unwrap_or(0.0),
            quantity: it["quantity"].as_f64().unwrap_or(0.0),
            amount,
        });
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
    Ok(Checked {
        total: (total * 100.0).round() / 100.0,
        items: positions,
        tag,
    })
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
            tag: None,
            items: Vec::new(),
            shift: self.shift_number,
            in_shift: self.receipts_in_shift,
            payments: Default::default(),
            electronically: false,
        };
        self.documents.push(doc.clone());
        doc
    }

    /// A receipt another program printed on this register: no job of ours, no tag.
    pub fn foreign(&mut self, operation: &str, total: f64, items: Vec<Item>) -> Document {
        if !self.shift_open {
            self.open_shift("");
        }
        self.receipts_in_shift += 1;
        let kind = if operation.ends_with("Correction") {
            "receiptCorrection"
        } else {
            "receipt"
        };
        self.document(kind, operation, "", total);
        let last = self.documents.len() - 1;
        self.documents[last].items = items;
        self.documents[last].clone()
    }

    fn fiscal_params(&self, d: &Document) -> Value {
        json!({"fiscalDocumentNumber": d.number, "fiscalDocumentSign": d.sign,
               "fiscalDocumentDateTime": local(d.at_ms), "fnNumber": self.fn_number,
               "registrationNumber": self.registration_number, "fnsUrl": "www.nalog.gov.ru",
               "shiftNumber": self.shift_number, "fiscalReceiptNumber": self.receipts_in_shift, "total": d.total})
    }

    /// Opens the shift (an FN document) for the first fiscal operation of a closed shift.
    pub fn open_shift_for(&mut self, uuid: &str) -> Document {
        self.open_shift(uuid)
    }

    fn open_shift(&mut self, uuid: &str) -> Document {
        self.shift_number += 1;
        self.shift_open = true;
        self.shift_opened_at_ms = self.now_ms();
        self.receipts_in_shift = 0;
        self.income = Default::default();
        self.outcome = Default::default();
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
                if let Some(code) = faults.error_code {
                    return Err((code, format!("Ошибка {code} (эмулятор)")));
                }
                let checked = validate(task)?;
                self.take_accepted(task)?;
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
                let doc = self.document(kind, k, uuid, checked.total);
                let cash = cash_of(task, k, checked.total);
                self.cash_sum += cash;
                let last = self.documents.len() - 1;
                self.documents[last].payments = payments_of(task, cash.abs());
                self.documents[last].electronically = task["electronically"] == true;
                self.documents[last].items = checked.items;
                self.documents[last].tag = checked.tag;
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
            // S1 `json_getDeviceInfo.js`: the model's code and name, serial, firmware, FFD.
            "getDeviceInfo" => Ok(json!({"deviceInfo": {
                "model": 57, "modelName": "АТОЛ 30Ф (эмулятор)", "serial": "00106700000001",
                "firmwareVersion": "5.8.100", "configurationVersion": "mock",
                "receiptLineLength": 48, "receiptLineLengthPix": 576,
                "ffdVersion": "1.2", "fnFfdVersion": "1.2"}})),
            // S1 `json_getShiftTotals.js`: per receipt type (`sell`, `sellReturn`, `buy`,
            // `buyReturn` — a correction counts with its operation) its count, sum and sum per
            // payment form (cash net of change; forms without money left out, as S1 leaves out
            // counters a model lacks); cash in and out of the drawer; the drawer's sum; the
            // shift's number.
            "getShiftTotals" => {
                let mut receipts = serde_json::Map::new();
                for d in self
                    .documents
                    .iter()
                    .filter(|d| d.shift == self.shift_number && d.kind.starts_with("receipt"))
                {
                    let entry = receipts
                        .entry(d.operation.trim_end_matches("Correction").to_string())
                        .or_insert_with(|| json!({"count": 0, "sum": 0.0, "payments": {}}));
                    entry["count"] = json!(entry["count"].as_i64().unwrap_or(0) + 1);
                    entry["sum"] = json!(round(entry["sum"].as_f64().unwrap_or(0.0) + d.total));
                    for (kind, sum) in &d.payments {
                        let was = entry["payments"][kind].as_f64().unwrap_or(0.0);
                        entry["payments"][kind] = json!(round(was + sum));
                    }
                }
                Ok(json!({"shiftTotals": {"receipts": receipts,
                          "income": {"sum": self.income.sum, "count": self.income.count},
                          "outcome": {"sum": self.outcome.sum, "count": self.outcome.count},
                          "cashDrawer": {"sum": round(self.cash_sum)},
                          "shiftNumber": self.shift_number}}))
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
            "getFnInfo" => Ok(json!({"fnInfo": {"serial": self.fn_number, "version": "fn-1.2-mock",
                                      "ffdVersion": "1.2", "fnFfdVersion": "1.2", "livePhase": "fiscalMode",
                                      "validityDate": local(if self.valid_until_ms > 0 { self.valid_until_ms } else { self.now_ms() + 400 * 86_400_000 }),
                                      "numberOfRegistrations": 1, "registrationsRemaining": 29,
                                      "warnings": {"criticalError": false, "memoryOverflow": false,
                                                   "needReplacement": false, "ofdTimeout": false,
                                                   "resourceExhausted": false}}})),
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
                Ok(d.tlv(
                    faults.short_documents,
                    faults.drop_tag,
                    &self.fn_number,
                    &self.registration_number,
                ))
            }
            other => self
                .marks_task(other, task, faults)
                .or_else(|| self.counter_task(other, task, uuid, faults))
                .unwrap_or_else(|| Err(parse_error(format!("Неизвестный тип задания \"{other}\"")))),
        }
    }
}
