//! The ATOL register driver: JSON tasks over the web server of ATOL's "Driver KKT v10"
//! (docs/contract.md §7; the protocol as collected in docs/research/atol-web-server.md, whose
//! source tags S1–S12 are cited below).
//!
//! Exactly once on the device:
//! - every receipt is one job whose `uuid` is the receipt id (a later attempt after a job that
//!   ended in `error` gets `<receipt id>.<n>`, since the server keeps a uuid forever, §1.2); the
//!   attempt and the FN's last document number before it are written to a journal
//!   (`atol-journal.db`) before the job is posted;
//! - a re-post of a known uuid gets 409 and is simply polled (§1.2); a job still `wait`,
//!   `inProgress` or `blocked` is polled, never resent (§1.4, §1.6);
//! - [`Kkt::lookup`] (after a crash, a timeout, a lost answer) asks the server for the uuid; if
//!   the server does not know it, asks the FN for its last document (`getFnStatus`) and, if it
//!   grew since the journal's number, reads the new documents (`getFnDocument`) for one with this
//!   receipt's total — only when the FN has nothing new is the receipt sent again.
//!
//! Device trouble (no paper, cover open, no connection, busy past the bound, the web server
//! unreachable or answering nonsense) is [`DeviceError::Unavailable`] with the cause in Russian;
//! the device refusing a receipt (its validation) is [`DeviceError::Refused`] with its code; an
//! expired shift is closed first when `auto_shift` allows it.

use super::{DeviceError, FiscalDoc, Fiscalized, Kkt, NotTaken, ShiftState, ShiftStatus, Task, ZReport};
use crate::money::Kopecks;
use crate::receipt::{PaymentObject, PaymentType, Receipt, ReceiptType, Taxation, Vat};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}

/// Answers larger than this are not read (a device answer is a few KiB).
const MAX_ANSWER: u64 = 1 << 20;

/// The driver.
pub struct AtolKkt {
    config: AtolConfig,
    /// A blocking HTTP client of its own (`ureq`): the driver runs on the device thread, and a
    /// client tied to no async runtime can be made and dropped anywhere.
    http: ureq::Agent,
    journal: Mutex<Connection>,
}

/// A job's state as the server reports it.
#[derive(Debug)]
enum Job {
    /// `ready`: the task's `result`.
    Ready(Value),
    /// `error` (or `interrupted`, `canceled`): code and description.
    Failed(i64, String),
    /// `wait`, `inProgress`, `blocked`: not decided yet.
    Pending(String),
    /// 404: the server does not know the uuid.
    Unknown,
}

fn unavailable(why: impl Into<String>) -> DeviceError {
    DeviceError::Unavailable(why.into())
}

/// The cause of a device error in the cashier's words, and whether it is the device's trouble
/// (try again later) rather than its verdict on the receipt. Codes per S6 `KKTErrorType.cs`.
fn classify(code: i64, description: &str) -> Trouble {
    match code {
        2 | 3 | 4 | 241 => Trouble::Device(format!("нет связи с ККТ ({description})")),
        44 | 46 | 114 => Trouble::Device(format!("нет бумаги ({description})")),
        45 => Trouble::Device(format!("открыта крышка ККТ ({description})")),
        68 | 141 => Trouble::ShiftExpired,
        73 => Trouble::ShiftClosed,
        // Parse errors, payments not covering the total, values the device does not accept:
        // its verdict on this receipt.
        501 | 66 | 412 | 215 | 216 | 217 => Trouble::Refused,
        15 | 115..=122 | 124 | 133..=138 | 142 | 159 | 166 | 177 => {
            Trouble::Device(format!("ошибка ФН ({code}: {description})"))
        }
        _ => Trouble::Device(format!("ошибка ККТ {code}: {description}")),
    }
}

enum Trouble {
    Device(String),
    ShiftExpired,
    /// 73: the operation needs an open shift.
    ShiftClosed,
    Refused,
}

impl AtolKkt {
    pub fn open(config: AtolConfig) -> Result<AtolKkt, String> {
        if !config.url.starts_with("http://") {
            return Err(format!(
                "kkt.atol.url {:?}: the driver's web server is reached over plain http:// on this machine or the shop's LAN",
                config.url
            ));
        }
        let http: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let conn = match &config.journal {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(|e| format!("cannot open the ATOL journal: {e}"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS attempts (
                 receipt_id      TEXT PRIMARY KEY,
                 attempt         INTEGER NOT NULL,
                 last_doc_before INTEGER
             );",
        )
        .map_err(|e| format!("cannot prepare the ATOL journal: {e}"))?;
        Ok(AtolKkt {
            config,
            http,
            journal: Mutex::new(conn),
        })
    }

    fn url(&self, path: &str) -> String {
        let base = self.config.url.trim_end_matches('/');
        match &self.config.device_id {
            Some(id) => format!("{base}{path}?deviceID={id}"),
            None => format!("{base}{path}"),
        }
    }

    /// Reads an answer, at most [`MAX_ANSWER`] bytes, as JSON.
    fn answer(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<(u16, Value), DeviceError> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| self.failed(e))?;
        let value = serde_json::from_slice(&body).map_err(|_| {
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(80).collect();
            unavailable(format!(
                "веб-сервер драйвера ККТ ответил не JSON (HTTP {status}): {excerpt}"
            ))
        })?;
        Ok((status, value))
    }

    /// An HTTP failure in the cashier's words.
    fn failed(&self, e: ureq::Error) -> DeviceError {
        match e {
            ureq::Error::Timeout(_) => unavailable("веб-сервер драйвера ККТ не ответил вовремя"),
            ureq::Error::BodyExceedsLimit(_) => unavailable("веб-сервер драйвера ККТ прислал ответ больше 1 МиБ"),
            other => unavailable(format!(
                "веб-сервер драйвера ККТ недоступен ({}): {other}",
                self.config.url
            )),
        }
    }

    /// Posts a job; a uuid the server already has (409) is fine: it is polled.
    fn post(&self, uuid: &str, tasks: Vec<Value>) -> Result<(), DeviceError> {
        let response = self
            .http
            .post(&self.url("/api/v2/requests"))
            .header("Content-Type", "application/json")
            .send(json!({"uuid": uuid, "request": tasks}).to_string())
            .map_err(|e| self.failed(e))?;
        let status = response.status().as_u16();
        match status {
            200..=299 | 409 => Ok(()),
            _ => {
                let (_, body) = self.answer(response).unwrap_or((status, Value::Null));
                Err(unavailable(format!(
                    "веб-сервер драйвера ККТ не принял задание (HTTP {status}): {}",
                    error_of(&body).1
                )))
            }
        }
    }

    /// The job's state now.
    fn state(&self, uuid: &str) -> Result<Job, DeviceError> {
        let response = self
            .http
            .get(&self.url(&format!("/api/v2/requests/{uuid}")))
            .call()
            .map_err(|e| self.failed(e))?;
        if response.status().as_u16() == 404 {
            return Ok(Job::Unknown);
        }
        let (status, v) = self.answer(response)?;
        if !(200..300).contains(&status) {
            return Err(unavailable(format!("веб-сервер драйвера ККТ ответил HTTP {status}")));
        }
        let results = v["results"]
            .as_array()
            .ok_or_else(|| unavailable("в ответе веб-сервера нет results"))?;
        // The job's last task decides; a failed earlier one interrupts the rest.
        for r in results {
            let (code, description) = error_of(r);
            match r["status"].as_str().unwrap_or_default() {
                "ready" => continue,
                "error" | "interrupted" | "canceled" => return Ok(Job::Failed(code, description)),
                "wait" | "inProgress" | "blocked" => {
                    return Ok(Job::Pending(r["status"].as_str().unwrap_or_default().into()));
                }
                other => {
                    return Err(unavailable(format!(
                        "веб-сервер драйвера ККТ сообщил неизвестный статус {other:?}"
                    )));
                }
            }
        }
        match results.last() {
            Some(last) => Ok(Job::Ready(last["result"].clone())),
            None => Err(unavailable("веб-сервер драйвера ККТ прислал пустой results")),
        }
    }

    /// Polls the job until it is decided or the bound passes.
    fn wait(&self, uuid: &str) -> Result<Job, DeviceError> {
        let deadline = Instant::now() + self.config.job_bound;
        loop {
            match self.state(uuid)? {
                Job::Pending(_) if Instant::now() < deadline => std::thread::sleep(self.config.poll_every),
                other => return Ok(other),
            }
        }
    }

    /// Runs a job of non-fiscal queries (or one fiscal task) under a fresh uuid and returns the
    /// last task's result.
    fn run(&self, tasks: Vec<Value>) -> Result<Value, DeviceError> {
        let uuid = uuid::Uuid::new_v4().to_string();
        self.post(&uuid, tasks)?;
        match self.wait(&uuid)? {
            Job::Ready(v) => Ok(v),
            Job::Failed(code, description) => match classify(code, &description) {
                Trouble::ShiftExpired => Err(DeviceError::NotTaken {
                    reason: NotTaken::ShiftExpired,
                    message: format!("ККТ: смена превысила 24 часа ({description})"),
                }),
                Trouble::ShiftClosed => Err(DeviceError::NotTaken {
                    reason: NotTaken::NoOpenShift,
                    message: format!("смена на ККТ не открыта ({description})"),
                }),
                Trouble::Device(why) => Err(unavailable(why)),
                Trouble::Refused => Err(DeviceError::Refused {
                    code: code.to_string(),
                    message: description,
                }),
            },
            Job::Pending(s) => Err(unavailable(format!(
                "ККТ не ответила за {} с (задание {s})",
                self.config.job_bound.as_secs()
            ))),
            Job::Unknown => Err(unavailable("веб-сервер драйвера ККТ потерял задание")),
        }
    }

    /// The number of the FN's last fiscal document.
    fn last_document(&self) -> Result<i64, DeviceError> {
        let r = self.run(vec![json!({"type": "getFnStatus"})])?;
        r["fnStatus"]["fiscalDocumentNumber"]
            .as_i64()
            .ok_or_else(|| unavailable("ККТ не сообщила номер последнего документа"))
    }

    fn journal(&self) -> Result<std::sync::MutexGuard<'_, Connection>, DeviceError> {
        self.journal
            .lock()
            .map_err(|_| unavailable("журнал заданий ККТ недоступен"))
    }

    /// The current attempt of a receipt and the FN's last document before it, if one was posted.
    fn attempt(&self, receipt_id: &str) -> Result<Option<(i64, Option<i64>)>, DeviceError> {
        self.journal()?
            .query_row(
                "SELECT attempt, last_doc_before FROM attempts WHERE receipt_id = ?1",
                [receipt_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| unavailable(format!("журнал заданий ККТ: {e}")))
    }

    fn record(&self, receipt_id: &str, attempt: i64, before: Option<i64>) -> Result<(), DeviceError> {
        self.journal()?
            .execute(
                "INSERT INTO attempts (receipt_id, attempt, last_doc_before) VALUES (?1, ?2, ?3)
                 ON CONFLICT (receipt_id) DO UPDATE SET attempt = ?2, last_doc_before = ?3",
                params![receipt_id, attempt, before],
            )
            .map(|_| ())
            .map_err(|e| unavailable(format!("журнал заданий ККТ: {e}")))
    }

    /// The attempt's job uuid: the receipt id, then `<id>.2`, `<id>.3` …
    fn uuid(receipt_id: &str, attempt: i64) -> String {
        if attempt <= 1 {
            receipt_id.to_string()
        } else {
            format!("{receipt_id}.{attempt}")
        }
    }

    fn fiscalized(&self, task: &Task, result: &Value) -> Result<Fiscalized, DeviceError> {
        let p = &result["fiscalParams"];
        let number = p["fiscalDocumentNumber"]
            .as_i64()
            .ok_or_else(|| unavailable("в ответе ККТ нет номера фискального документа"))?;
        let when = p["fiscalDocumentDateTime"].as_str().unwrap_or_default();
        let doc = fiscal_doc(
            &task.receipt,
            number,
            sign_of(&p["fiscalDocumentSign"]),
            when,
            p["fnNumber"].as_str().unwrap_or_default(),
            p["registrationNumber"].as_str().unwrap_or_default(),
            p["shiftNumber"].as_i64().unwrap_or(0),
            p["fiscalReceiptNumber"].as_i64().unwrap_or(0),
        );
        let not_printed = result["warnings"]["notPrinted"].as_bool().unwrap_or(false);
        Ok(Fiscalized {
            doc,
            print_error: not_printed.then(|| "ККТ зарегистрировала чек, но не напечатала его".to_string()),
        })
    }

    /// Registers one receipt (attempt `attempt`).
    fn register(&self, task: &Task, attempt: i64, shift_closed: bool) -> Result<Fiscalized, DeviceError> {
        let before = self.last_document()?;
        // Durable before the job exists: a crash from here on is resolved by `lookup`.
        self.record(&task.id, attempt, Some(before))?;
        let uuid = Self::uuid(&task.id, attempt);
        self.post(&uuid, vec![receipt_task(&task.receipt)])?;
        match self.wait(&uuid)? {
            Job::Ready(result) => self.fiscalized(task, &result),
            Job::Pending(s) => Err(unavailable(format!(
                "ККТ не ответила за {} с (задание {s}); чек будет проверен и доведён",
                self.config.job_bound.as_secs()
            ))),
            Job::Unknown => self
                .lookup(task)?
                .ok_or_else(|| unavailable("веб-сервер драйвера ККТ потерял задание")),
            Job::Failed(code, description) => {
                // This uuid is spent: the next attempt, if any, gets a new one.
                self.record(&task.id, attempt + 1, None)?;
                match classify(code, &description) {
                    Trouble::ShiftExpired if self.config.auto_shift && !shift_closed => {
                        self.run(vec![json!({"type": "closeShift"})])?;
                        self.register(task, attempt + 1, true)
                    }
                    Trouble::ShiftExpired => Err(DeviceError::NotTaken {
                        reason: NotTaken::ShiftExpired,
                        message: format!(
                            "смена ККТ превысила 24 часа: закройте её (POST /v1/kkt/shift/close) ({description})"
                        ),
                    }),
                    Trouble::Device(why) => Err(unavailable(why)),
                    Trouble::ShiftClosed => Err(unavailable(format!("ККТ: смена не открыта ({description})"))),
                    Trouble::Refused => Err(DeviceError::Refused {
                        code: code.to_string(),
                        message: description,
                    }),
                }
            }
        }
    }

    /// The server no longer knows the job: the FN itself says whether it registered the receipt.
    fn found_in_fn(&self, task: &Task, before: i64) -> Result<Option<Fiscalized>, DeviceError> {
        let last = self.last_document()?;
        for n in before + 1..=last {
            let r = self.run(vec![json!({"type": "getFnDocument", "fiscalDocumentNumber": n})])?;
            let tlv = &r["documentTLV"];
            let is_receipt = tlv["fiscalDocumentType"]
                .as_str()
                .is_some_and(|t| t.starts_with("receipt"));
            let total = tlv["1020"].as_f64().map(|t| (t * 100.0).round() as i64);
            if is_receipt && total == Some(task.receipt.total.0) {
                let shift = self.run(vec![json!({"type": "getShiftStatus"})]).ok();
                let doc = fiscal_doc(
                    &task.receipt,
                    n,
                    sign_of(&tlv["1077"]),
                    tlv["1012"].as_str().unwrap_or_default(),
                    tlv["1041"].as_str().unwrap_or_default(),
                    "",
                    shift.and_then(|s| s["shiftStatus"]["number"].as_i64()).unwrap_or(0),
                    0,
                );
                tracing::warn!(receipt_id = %task.id, document = n, "the FN had registered a receipt whose job the web server lost");
                return Ok(Some(Fiscalized { doc, print_error: None }));
            }
        }
        Ok(None)
    }
}

/// The fiscal sign, which servers send as a string or as a number.
fn sign_of(v: &Value) -> String {
    v.as_str()
        .map_or_else(|| v.as_i64().map(|n| n.to_string()).unwrap_or_default(), str::to_string)
}

/// `error.code`/`error.description`, or the older flat `errorCode`/`errorDescription` (§1.3).
fn error_of(v: &Value) -> (i64, String) {
    let code = v["error"]["code"]
        .as_i64()
        .or_else(|| v["errorCode"].as_i64())
        .unwrap_or(0);
    let description = v["error"]["description"]
        .as_str()
        .or_else(|| v["errorDescription"].as_str())
        .unwrap_or_default()
        .to_string();
    (code, description)
}

/// The adapter's fiscal document from the device's attributes; the QR code is built from them
/// (`t=` the device's own local time).
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

fn rubles(k: Kopecks) -> Value {
    serde_json::from_str(&k.to_decimal_string()).unwrap_or(Value::Null)
}

/// The receipt as an ATOL JSON task (§2.1, §2.2, §3).
pub fn receipt_task(r: &Receipt) -> Value {
    let kind = match r.kind {
        ReceiptType::Sale => "sell",
        ReceiptType::SaleRefund => "sellReturn",
        ReceiptType::Buy => "buy",
        ReceiptType::BuyRefund => "buyReturn",
        ReceiptType::SaleCorrection => "sellCorrection",
        ReceiptType::SaleRefundCorrection => "sellReturnCorrection",
        ReceiptType::BuyCorrection => "buyCorrection",
        ReceiptType::BuyRefundCorrection => "buyReturnCorrection",
    };
    let taxation = match r.taxation {
        Taxation::Osn => "osn",
        Taxation::UsnIncome => "usnIncome",
        Taxation::UsnIncomeOutcome => "usnIncomeOutcome",
        Taxation::Esn => "esn",
        Taxation::Patent => "patent",
    };
    let items: Vec<Value> = r
        .items
        .iter()
        .map(|i| {
            let mut item = json!({
                "type": "position", "name": i.name, "price": rubles(i.price),
                "quantity": serde_json::to_value(i.quantity).unwrap_or(Value::Null), "amount": rubles(i.total),
                "measurementUnit": i.measure.code(),
                "paymentMethod": payment_method(i.payment_method),
                "paymentObject": payment_object(i.payment_object),
                "tax": {"type": tax(i.vat)},
            });
            if i.discount.0 > 0 {
                item["infoDiscountAmount"] = rubles(i.discount);
            }
            if let Some(code) = &i.marking_code {
                item["imcParams"] = json!({"imcType": "auto", "imc": code, "itemEstimatedStatus": "itemPieceSold",
                                           "imcModeProcessing": 0});
            }
            item
        })
        .collect();
    let payments: Vec<Value> = r
        .payments
        .iter()
        .map(|p| {
            let kind = match p.kind {
                PaymentType::Cash => "cash",
                PaymentType::Card => "electronically",
                PaymentType::Prepaid => "prepaid",
                PaymentType::Credit => "credit",
                PaymentType::Other => "other",
            };
            json!({"type": kind, "sum": rubles(p.amount)})
        })
        .collect();
    let mut task = json!({"type": kind, "taxationType": taxation, "items": items, "payments": payments,
                          "total": rubles(r.total)});
    if let Some(c) = &r.cashier {
        task["operator"] = json!({"name": c.name});
        if let Some(inn) = &c.inn {
            task["operator"]["vatin"] = json!(inn);
        }
    }
    if let Some(c) = &r.customer {
        task["clientInfo"] = json!({"emailOrPhone": c.contact()});
    }
    if let Some(c) = &r.correction {
        task["correctionType"] = json!(match c.kind {
            crate::receipt::CorrectionKind::SelfMade => "self",
            crate::receipt::CorrectionKind::Ordered => "instruction",
        });
        task["correctionBaseDate"] = json!(c.base_date.format("%Y.%m.%d").to_string());
        task["correctionBaseNumber"] = json!(c.base_number.clone().unwrap_or_default());
    }
    task
}

fn tax(v: Vat) -> &'static str {
    match v {
        Vat::Vat20 => "vat20",
        Vat::Vat10 => "vat10",
        Vat::Vat20_120 => "vat120",
        Vat::Vat10_110 => "vat110",
        Vat::Vat0 => "vat0",
        Vat::None => "none",
        Vat::Vat5 => "vat5",
        Vat::Vat7 => "vat7",
        Vat::Vat5_105 => "vat105",
        Vat::Vat7_107 => "vat107",
        Vat::Vat22 => "vat22",
        Vat::Vat22_122 => "vat122",
    }
}

fn payment_method(m: crate::receipt::PaymentMethod) -> &'static str {
    use crate::receipt::PaymentMethod::*;
    match m {
        FullPrepayment => "fullPrepayment",
        Prepayment => "prepayment",
        Advance => "advance",
        FullPayment => "fullPayment",
        PartialPayment => "partialPayment",
        Credit => "credit",
        CreditPayment => "creditPayment",
    }
}

/// ATOL's names (§3.5); 18 as its number, since the sources disagree on its name.
fn payment_object(o: PaymentObject) -> String {
    use PaymentObject::*;
    match o {
        Commodity => "commodity",
        Excise => "excise",
        Job => "job",
        Service => "service",
        GamblingBet => "gamblingBet",
        GamblingPrize => "gamblingPrize",
        Lottery => "lottery",
        LotteryPrize => "lotteryPrize",
        IntellectualActivity => "intellectualActivity",
        Payment => "payment",
        AgentCommission => "agentCommission",
        Award => "composite",
        Another => "another",
        PropertyRight => "proprietaryLaw",
        NonOperatingIncome => "nonOperatingIncome",
        OtherContributions => "otherContributions",
        MerchantTax => "merchantTax",
        TouristTax => "18",
        Deposit => "deposit",
        Consumption => "consumption",
        SoleProprietorCpiContributions => "soleProprietorCPIContributions",
        CpiContributions => "cpiContributions",
        SoleProprietorCmiContributions => "soleProprietorCMIContributions",
        CmiContributions => "cmiContributions",
        CsiContributions => "csiContributions",
        CasinoPayment => "casinoPayment",
        FundsIssuance => "fundsIssuance",
        ExciseUnmarked => "exciseWithoutMarking",
        ExciseMarked => "exciseWithMarking",
        CommodityUnmarked => "commodityWithoutMarking",
        CommodityMarked => "commodityWithMarking",
    }
    .to_string()
}

impl Kkt for AtolKkt {
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
        // One fiscal task per job (the servers refuse more, §1.2), one job at a time.
        tasks
            .iter()
            .map(|task| {
                let attempt = match self.attempt(&task.id)? {
                    Some((n, Some(_))) => {
                        // Posted before: never resend blindly; a new attempt gets a new uuid.
                        if let Some(found) = self.lookup(task)? {
                            return Ok(found);
                        }
                        self.attempt(&task.id)?.map_or(n + 1, |(m, _)| m.max(n + 1))
                    }
                    // The last attempt's job ended in an error: the next uuid is free.
                    Some((n, None)) => n,
                    None => 1,
                };
                self.register(task, attempt, false)
            })
            .collect()
    }

    fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError> {
        let Some((attempt, before)) = self.attempt(&task.id)? else {
            return Ok(None); // never posted
        };
        let Some(before) = before else {
            return Ok(None); // the last attempt ended in an error: nothing registered
        };
        match self.state(&Self::uuid(&task.id, attempt))? {
            Job::Ready(result) => self.fiscalized(task, &result).map(Some),
            Job::Failed(..) => {
                self.record(&task.id, attempt + 1, None)?;
                Ok(None)
            }
            Job::Pending(s) => Err(unavailable(format!("ККТ ещё обрабатывает чек (задание {s})"))),
            Job::Unknown => self.found_in_fn(task, before),
        }
    }

    fn shift(&self, _now: DateTime<Utc>) -> Result<ShiftStatus, DeviceError> {
        let r = self.run(vec![json!({"type": "getShiftStatus"})])?;
        let s = &r["shiftStatus"];
        let fn_status = self.run(vec![json!({"type": "getFnStatus"})])?;
        let last = fn_status["fnStatus"]["fiscalDocumentNumber"].as_i64().unwrap_or(0);
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
            receipts: fn_status["fnStatus"]["fiscalReceiptNumber"].as_i64().unwrap_or(0),
            fn_number: String::new(),
            last_fiscal_doc_number: last,
        })
    }

    fn close_shift(&self, now: DateTime<Utc>) -> Result<ZReport, DeviceError> {
        let r = self.run(vec![json!({"type": "closeShift"})])?;
        let p = &r["fiscalParams"];
        Ok(ZReport {
            shift_number: p["shiftNumber"].as_i64().unwrap_or(0),
            fiscal_doc_number: p["fiscalDocumentNumber"].as_i64().unwrap_or(0),
            fiscal_sign: p["fiscalDocumentSign"].as_str().unwrap_or_default().into(),
            fn_number: p["fnNumber"].as_str().unwrap_or_default().into(),
            opened_at: String::new(),
            closed_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            receipts: p["receiptsCount"].as_i64().unwrap_or(0),
            operations: Vec::new(),
        })
    }

    fn ofd_exchange(&self) -> Option<Result<super::FnExchange, DeviceError>> {
        Some(self.run(vec![json!({"type": "ofdExchangeStatus"})]).map(|r| {
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
            }
        }))
    }

    fn describe(&self) -> String {
        format!("ATOL at {}", self.config.url)
    }
}
