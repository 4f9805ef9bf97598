//! The ATOL register driver: JSON tasks over the web server of ATOL's "Driver KKT v10" or
//! "АТОЛ. Web Requests" (docs/contract.md §7, §10; the protocol as collected in
//! docs/research/atol-web-server.md and docs/research/atol-exactly-once.md, whose sources are
//! cited in each part).
//!
//! Its rooms: the HTTP transport ([`client`]), the attempts journal ([`journal`]), the receipt
//! as a JSON task ([`tasks`]), documents read back from the FN ([`documents`]), the error
//! table ([`codes`]), and the exactly-once sequence itself ([`register`]). The [`Kkt`] impl
//! here only dispatches.
//!
//! Exactly once on the device (§10):
//! - every receipt's document carries the receipt's tag (1192); before its job is posted, the
//!   journal records the FN, the device, the job uuid and the FN's last document (the mark);
//! - a job's result counts only if its number is above the mark and its total and FN are the
//!   receipt's; anything else — an error, a lost job, a timeout, a thin recovered result — is
//!   settled from the FN: the documents after the mark are read (each only once) for the tag;
//!   a document without a tag that may be the receipt makes it `needs_review`;
//! - a new attempt gets a new uuid only after its job ended and the FN holds nothing of it; a
//!   job the server lost is posted again under the same uuid.

mod client;
pub mod codes;
mod counter;
mod documents;
mod journal;
mod marks;
mod register;
mod tasks;

pub use tasks::{kind_of, receipt_task, task_type};
pub(crate) use tasks::{payment_method, payment_object, tax};

use super::{DeviceError, FiscalDoc, Fiscalized, Kkt, NotTaken, ShiftState, ShiftStatus, Task, ZReport};
use crate::money::Kopecks;
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use client::{Client, Job, unavailable};
use codes::Class;
use documents::FnDocument;
use journal::Journal;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// `[kkt.atol]`
#[derive(Debug, Clone)]
pub struct AtolConfig {
    /// The web server, e.g. `http://127.0.0.1:16732`.
    pub url: String,
    /// One device of several on that server (`?deviceID=`), if given.
    pub device_id: Option<String>,
    /// The longest one job is polled before the device counts as busy.
    pub job_bound: Duration,
    /// How often a job is polled.
    pub poll_every: Duration,
    pub auto_shift: bool,
    /// The attempts journal; in memory without it (tests).
    pub journal: Option<PathBuf>,
    /// HTTP Basic user and password.
    pub credentials: Option<(String, String)>,
    /// The certificate(s) to trust for an `https://` server.
    pub ca_file: Option<PathBuf>,
}

/// The driver.
pub struct AtolKkt {
    config: AtolConfig,
    client: Client,
    journal: Journal,
    /// A document was fiscalized but not printed to the end (`warnings.notPrinted`): the next
    /// job is preceded by `continuePrint` (docs/research/atol-counter-operations.md §6.3).
    unprinted: std::sync::atomic::AtomicBool,
    /// The FN checks one marking code at a time (a second `begin` is 401): a till's check and
    /// a sale's acceptance never interleave.
    marking: std::sync::Mutex<()>,
}

/// The FN now: its serial number and its last document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FnNow {
    serial: String,
    last: i64,
}

/// The cause of a device error in the cashier's words (the tray and the window speak Russian).
fn cause(code: i64, description: &str) -> String {
    let what = match code {
        44 => "нет бумаги",
        45 => "открыта крышка ККТ",
        1..=4 | 241 => "нет связи с ККТ",
        46 | 47 | 114 | 150 => "неисправность принтера ККТ",
        55 => "ККТ занята предыдущей операцией",
        _ => return format!("ККТ: {description} (код {code})"),
    };
    format!("{what} ({description}, код {code})")
}

/// A query's error (a job that makes no receipt) as what it means.
fn query_error(code: i64, description: String) -> DeviceError {
    let not_taken = |reason, message| DeviceError::NotTaken { reason, message };
    match codes::lookup(code).map(|c| c.class) {
        Some(Class::ShiftExpired) => not_taken(
            NotTaken::ShiftExpired,
            format!("смена ККТ превысила 24 часа ({description})"),
        ),
        Some(Class::ShiftClosed) => not_taken(
            NotTaken::NoOpenShift,
            format!("смена на ККТ не открыта ({description})"),
        ),
        Some(Class::FnBlocked) => not_taken(NotTaken::FnBlocked, format!("ФН не принимает документы: {description}")),
        Some(Class::Config) => not_taken(
            NotTaken::Misconfigured,
            format!("ККТ не настроена для этого: {description}"),
        ),
        Some(Class::Refused) => DeviceError::Refused {
            code: code.to_string(),
            message: description,
        },
        Some(Class::Device | Class::UnknownOutcome) => unavailable(cause(code, &description)),
        None => DeviceError::Unexpected {
            code: code.to_string(),
            message: description,
        },
    }
}

/// The adapter's fiscal document from the device's attributes; the QR code is built here from
/// them (`t=` the device's own local time, `fp=` the decimal sign).
#[allow(clippy::too_many_arguments)]
fn fiscal_doc(
    r: &Receipt,
    number: i64,
    sign: String,
    when: &str,
    fn_number: &str,
    registration: &str,
    shift: i64,
    in_shift: i64,
) -> FiscalDoc {
    let parsed = DateTime::parse_from_rfc3339(when).ok();
    let local = parsed.map(|t| t.format("%Y%m%dT%H%M").to_string()).unwrap_or_default();
    let utc = parsed
        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| when.to_string());
    FiscalDoc {
        fiscal_doc_number: number,
        qr_code_data: format!(
            "t={local}&s={}&fn={fn_number}&i={number}&fp={sign}&n={}",
            r.total,
            r.kind.qr_operation()
        ),
        fiscal_sign: sign,
        fiscal_datetime: utc,
        fn_number: fn_number.into(),
        kkt_number: registration.into(),
        shift_number: shift,
        receipt_number: in_shift,
        total: r.total,
    }
}

/// The fiscal sign of a result, which servers send as a string or as a number.
fn sign_of(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::to_string)
        .or_else(|| v.as_u64().map(|n| n.to_string()))
        .filter(|s| !s.is_empty())
}

impl AtolKkt {
    pub fn open(config: AtolConfig) -> Result<AtolKkt, String> {
        let client = Client::new(&config)?;
        let journal = Journal::open(config.journal.as_deref())?;
        Ok(AtolKkt {
            config,
            client,
            journal,
            unprinted: false.into(),
            marking: std::sync::Mutex::new(()),
        })
    }

    fn device(&self) -> Option<&str> {
        self.config.device_id.as_deref()
    }

    /// Runs a job of queries (or one shift task) under a fresh uuid; every task's result.
    fn run(&self, tasks: Vec<Value>) -> Result<Vec<Value>, DeviceError> {
        let uuid = uuid::Uuid::new_v4().to_string();
        self.client.post(&uuid, self.device(), &tasks)?;
        match self.client.wait(&uuid, self.device())? {
            Job::Ready(results) => Ok(results),
            Job::Failed { code, description } => Err(query_error(code, description)),
            Job::Pending(s) => Err(unavailable(format!(
                "ККТ не ответила за {} с (задание {s})",
                self.client.job_bound().as_secs()
            ))),
            Job::Unknown => Err(unavailable("веб-сервер драйвера ККТ потерял задание")),
        }
    }

    /// A document left half-printed is printed to the end (`continuePrint`, S1
    /// `json_continuePrint.js`: no fields, no result) before the next one, as ATOL's own servers
    /// do after recovering (docs/research/atol-counter-operations.md §6.3). If it fails (still
    /// no paper) it is tried again before the job after.
    fn finish_printing(&self) {
        use std::sync::atomic::Ordering;
        if !self.unprinted.load(Ordering::Relaxed) {
            return;
        }
        match self.run(vec![json!({"type": "continuePrint"})]) {
            Ok(_) => {
                self.unprinted.store(false, Ordering::Relaxed);
                tracing::info!("the register printed the rest of a document it had not printed");
            }
            Err(e) => tracing::warn!(error = %e, "continuePrint failed; tried again before the next job"),
        }
    }

    /// Notes a result whose document did not print to the end.
    fn note_printing(&self, result: &Value) {
        if result["warnings"]["notPrinted"].as_bool() == Some(true) {
            self.unprinted.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// One query's result.
    fn query(&self, task: Value) -> Result<Value, DeviceError> {
        self.run(vec![task])?
            .pop()
            .ok_or_else(|| unavailable("веб-сервер драйвера ККТ прислал пустой results"))
    }

    /// The FN's serial and last document, in one job.
    fn fn_now(&self) -> Result<FnNow, DeviceError> {
        let r = self.run(vec![json!({"type": "getFnInfo"}), json!({"type": "getFnStatus"})])?;
        let serial = r
            .first()
            .and_then(|i| i["fnInfo"]["serial"].as_str())
            .unwrap_or_default();
        let last = r
            .get(1)
            .and_then(|s| s["fnStatus"]["fiscalDocumentNumber"].as_i64())
            .ok_or_else(|| unavailable("ККТ не сообщила номер последнего документа ФН"))?;
        if serial.is_empty() {
            return Err(unavailable("ККТ не сообщила заводской номер ФН"));
        }
        Ok(FnNow {
            serial: serial.to_string(),
            last,
        })
    }

    /// Document `number` of the FN, read back.
    fn read_document(&self, number: i64) -> Result<FnDocument, DeviceError> {
        let r = self.query(json!({"type": "getFnDocument", "fiscalDocumentNumber": number}))?;
        Ok(FnDocument::parse(number, &r))
    }
}

impl Kkt for AtolKkt {
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
        // One fiscal task per job (the servers refuse more, §1.2), one job at a time.
        tasks.iter().map(|task| self.register(task, false)).collect()
    }

    fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError> {
        match self.journal.get(&task.id)? {
            None => Ok(None), // never posted
            Some(entry) => self.look_up(task, entry),
        }
    }

    fn attach(&self, task: &Task, number: i64) -> Result<Fiscalized, DeviceError> {
        self.attach_document(task, number)
    }

    fn shift(&self, _now: DateTime<Utc>) -> Result<ShiftStatus, DeviceError> {
        let r = self.run(vec![json!({"type": "getShiftStatus"}), json!({"type": "getFnStatus"})])?;
        let s = &r[0]["shiftStatus"];
        let fn_status = &r[1]["fnStatus"];
        let state = match s["state"].as_str().unwrap_or_default() {
            "opened" => ShiftState::Open,
            "expired" => ShiftState::Expired,
            _ => ShiftState::Closed,
        };
        Ok(ShiftStatus {
            state,
            number: s["number"].as_i64().unwrap_or(0),
            opened_at: None,
            expires_at: (state != ShiftState::Closed)
                .then(|| s["expiredTime"].as_str().map(str::to_string))
                .flatten(),
            receipts: fn_status["fiscalReceiptNumber"].as_i64().unwrap_or(0),
            fn_number: String::new(),
            last_fiscal_doc_number: fn_status["fiscalDocumentNumber"].as_i64().unwrap_or(0),
        })
    }

    fn close_shift(&self, now: DateTime<Utc>) -> Result<ZReport, DeviceError> {
        let r = self.query(json!({"type": "closeShift"}))?;
        let p = &r["fiscalParams"];
        Ok(ZReport {
            shift_number: p["shiftNumber"].as_i64().unwrap_or(0),
            fiscal_doc_number: p["fiscalDocumentNumber"].as_i64().unwrap_or(0),
            fiscal_sign: sign_of(&p["fiscalDocumentSign"]).unwrap_or_default(),
            fn_number: p["fnNumber"].as_str().unwrap_or_default().into(),
            opened_at: String::new(),
            closed_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            receipts: p["receiptsCount"].as_i64().unwrap_or(0),
            operations: Vec::new(),
            cash_in: None,
            cash_out: None,
            cash_in_drawer: None,
            cashier: None,
        })
    }

    /// Five read-only tasks in one job (docs/research/atol-web-server.md §2.5–2.8; S1
    /// `json_getDeviceInfo.js` → `deviceInfo {modelName, serial, firmwareVersion,
    /// ffdVersion}`, `json_getDeviceStatus.js` → `deviceStatus {shift, paperPresent,
    /// coverOpened, cashDrawerOpened}`, `json_getFnInfo.js` → `fnInfo {serial, validityDate,
    /// livePhase}`, `json_ofdExchangeStatus.js` → `status {notSentCount, …}`,
    /// `json_getShiftTotals.js` → `shiftTotals {cashDrawer {sum}, shiftNumber}`).
    fn device_info(&self, _now: DateTime<Utc>) -> Result<super::DeviceInfo, DeviceError> {
        let r = self.run(vec![
            json!({"type": "getDeviceInfo"}),
            json!({"type": "getDeviceStatus"}),
            json!({"type": "getFnInfo"}),
            json!({"type": "ofdExchangeStatus"}),
            json!({"type": "getShiftTotals"}),
        ])?;
        let at = |i: usize| r.get(i).cloned().unwrap_or(Value::Null);
        let (info, status, fn_info, exchange, totals) = (
            at(0)["deviceInfo"].clone(),
            at(1)["deviceStatus"].clone(),
            at(2)["fnInfo"].clone(),
            at(3)["status"].clone(),
            at(4)["shiftTotals"].clone(),
        );
        let text = |v: &Value| v.as_str().filter(|t| !t.is_empty()).map(str::to_string);
        let fn_unsent = exchange["notSentCount"].as_i64().unwrap_or(0);
        Ok(super::DeviceInfo {
            model: text(&info["modelName"])
                .or_else(|| info["model"].as_i64().map(|m| format!("ATOL, model code {m}")))
                .unwrap_or_else(|| "ATOL".into()),
            serial: text(&info["serial"]).unwrap_or_default(),
            firmware: text(&info["firmwareVersion"]),
            ffd_version: text(&info["ffdVersion"]).or_else(|| text(&fn_info["ffdVersion"])),
            fn_number: text(&fn_info["serial"]).unwrap_or_default(),
            fn_valid_until: text(&fn_info["validityDate"]),
            fn_phase: text(&fn_info["livePhase"]),
            shift: match status["shift"].as_str() {
                Some("opened") => ShiftState::Open,
                Some("expired") => ShiftState::Expired,
                _ => ShiftState::Closed,
            },
            shift_number: totals["shiftNumber"].as_i64().unwrap_or(0),
            paper_present: status["paperPresent"].as_bool(),
            cover_open: status["coverOpened"].as_bool(),
            drawer_open: status["cashDrawerOpened"].as_bool(),
            fn_unsent,
            fn_unsent_first: exchange["notSentFirstDocNumber"]
                .as_i64()
                .filter(|n| fn_unsent > 0 && *n > 0),
            fn_unsent_first_at: text(&exchange["notSentFirstDocDateTime"]).filter(|_| fn_unsent > 0),
            cash_in_drawer: totals["cashDrawer"]["sum"]
                .as_f64()
                .map(|sum| Kopecks((sum * 100.0).round() as i64)),
        })
    }

    fn operate(&self, task: &super::OpTask) -> Result<super::OpResult, DeviceError> {
        self.run_operation(task)
    }

    /// The FN checks the code and it is declined again: a check only (§12).
    fn check_marking(&self, code: &str, refund: bool) -> Result<Option<super::marks::FnCheck>, DeviceError> {
        self.validate_code(code, marks::estimated_status(refund, false), false)
            .map(Some)
    }

    fn operation_lookup(&self, task: &super::OpTask) -> Result<Option<super::OpResult>, DeviceError> {
        self.find_operation(task)
    }

    fn ofd_exchange(&self) -> Option<Result<super::FnExchange, DeviceError>> {
        // The FN's last document first, then the exchange: the reading then covers every
        // document up to that one (§10.8), never one made after it was read.
        let read = self.run(vec![
            json!({"type": "getFnStatus"}),
            json!({"type": "ofdExchangeStatus"}),
        ]);
        Some(read.map(|mut r| {
            let last = r.first().and_then(|s| s["fnStatus"]["fiscalDocumentNumber"].as_i64());
            let r = r.pop().unwrap_or(Value::Null);
            let st = &r["status"];
            let not_sent = st["notSentCount"].as_i64().unwrap_or(0);
            let link = [&r["errors"]["network"], &r["errors"]["ofd"], &r["errors"]["fn"]]
                .into_iter()
                .find(|e| e["code"].as_i64().unwrap_or(0) != 0)
                .map(|e| e["description"].as_str().unwrap_or("ошибка обмена с ОФД").to_string());
            super::FnExchange {
                not_sent,
                first_not_sent: st["notSentFirstDocNumber"].as_i64().filter(|n| not_sent > 0 && *n > 0),
                first_not_sent_at: st["notSentFirstDocDateTime"]
                    .as_str()
                    .filter(|_| not_sent > 0)
                    .map(str::to_string),
                link_error: link,
                last_document: last,
            }
        }))
    }

    fn describe(&self) -> String {
        format!("ATOL at {}", self.config.url)
    }
}
