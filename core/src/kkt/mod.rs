//! The fiscal register (KKT) seam: `trait Kkt`, what a device returns, and the drivers.
//!
//! A register assigns the fiscal attributes itself — document number, fiscal sign, FN, shift —
//! so intake is (docs/contract.md §7, ARCHITECTURE "Real registers"):
//! 1. the buffer makes an **intent row** durable (key, body, status `fiscalizing`);
//! 2. the buffer's device thread hands the device a [`Task`] whose id is the receipt id (stable
//!    across retries and restarts) and waits for its [`Fiscalized`] result;
//! 3. the result goes back through the writer into the row in one transaction, then the answer.
//!
//! After an interruption (crash, timeout, lost answer) an intent row is never sent blindly:
//! [`Kkt::lookup`] asks the device whether it registered that task first. The mock driver goes
//! through exactly these steps, with a fiscal memory of its own ([`mock`]).

pub mod atol;
pub mod mock;
pub mod slip;

pub use mock::{MockKkt, MockKktConfig};

use crate::money::Kopecks;
use crate::receipt::{PaymentType, Receipt, ReceiptType, VatSum};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The counters of a fiscal drive: the last document number, the shift and its receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KktCounters {
    /// The last fiscal document number issued; the next one is this + 1 (gap-free).
    pub last_fiscal_doc_number: i64,
    pub shift_number: i64,
    /// Unix milliseconds when the current shift was opened.
    pub shift_opened_at_ms: i64,
    pub receipts_in_shift: i64,
}

/// The fiscal attributes of one registered receipt, as the device reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalDoc {
    pub fiscal_doc_number: i64,
    pub fiscal_sign: String,
    pub fiscal_datetime: String,
    pub fn_number: String,
    pub kkt_number: String,
    pub shift_number: i64,
    pub receipt_number: i64,
    /// Receipt total, serialised as a two-decimal number.
    pub total: Kopecks,
    pub qr_code_data: String,
}

/// One receipt to register on the device.
#[derive(Debug, Clone)]
pub struct Task {
    /// Sent to the device with the task; equal to the receipt id, so it never changes.
    pub id: String,
    pub receipt: Receipt,
    /// When the POS asked (the mock dates its document by this; a device uses its own clock).
    pub requested_at: DateTime<Utc>,
}

/// A registered receipt: its fiscal document, and whether the slip came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Fiscalized {
    pub doc: FiscalDoc,
    /// The document is fiscal (it is in the FN) but the slip did not print: the answer is
    /// `"status":"buffered"` with this reason.
    pub print_error: Option<String>,
}

/// Why the register will not take a receipt now, though it works: nothing is stored, and the
/// till may send the same key again once the cause is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTaken {
    /// The FN blocks: a document has waited 30 days for the OFD's confirmation (54-FZ).
    FnBlocked,
    /// The shift is over 24 h old and is not closed automatically (`[kkt] auto_shift = false`).
    ShiftExpired,
    /// A shift report asked for while no shift is open.
    NoOpenShift,
}

/// Why the device did not register a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Device trouble (no paper, cover open, not connected, busy): try the task again later;
    /// the POS meanwhile gets `202 awaiting_device` with this reason.
    #[error("the fiscal register is not available: {0}")]
    Unavailable(String),
    /// The device refused the receipt itself (its validation): final, never sent again; the
    /// POS gets 422 with the device's code and text.
    #[error("the fiscal register refused the receipt ({code}): {message}")]
    Refused { code: String, message: String },
    /// The register will not take it now (see [`NotTaken`]): nothing is stored.
    #[error("{message}")]
    NotTaken { reason: NotTaken, message: String },
}

/// The FN's own exchange with the OFD (a register whose FN sends documents itself, §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FnExchange {
    /// Documents the OFD has not confirmed yet.
    pub not_sent: i64,
    /// The first of them (`None` when everything is confirmed).
    pub first_not_sent: Option<i64>,
    pub first_not_sent_at: Option<String>,
    /// The FN's link to the OFD is failing, in the device's words.
    pub link_error: Option<String>,
}

/// Whether a shift is open on the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftState {
    Open,
    /// Open for more than 24 h: no receipts until it is closed.
    Expired,
    Closed,
}

/// `GET /v1/kkt/shift`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShiftStatus {
    pub state: ShiftState,
    /// The current shift's number (the last one's while closed; 0 before the first).
    pub number: i64,
    pub opened_at: Option<String>,
    /// When the 24 hours run out.
    pub expires_at: Option<String>,
    /// Receipts in this shift.
    pub receipts: i64,
    pub fn_number: String,
    pub last_fiscal_doc_number: i64,
}

/// One receipt type in a shift: how many, their sum, and that sum per payment form and VAT rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationSum {
    #[serde(rename = "type")]
    pub kind: ReceiptType,
    pub count: i64,
    pub total: Kopecks,
    /// Per payment form, the money of these receipts (cash net of change).
    pub payments: Vec<PaymentSum>,
    pub vat: Vec<VatSum>,
}

/// The sum of one payment form in a shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSum {
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub amount: Kopecks,
}

/// The shift-closing report (Z-report): a fiscal document of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZReport {
    pub shift_number: i64,
    pub fiscal_doc_number: i64,
    pub fiscal_sign: String,
    pub fn_number: String,
    pub opened_at: String,
    pub closed_at: String,
    pub receipts: i64,
    /// Per receipt type (sales, refunds, …), never mixed: a refund's money goes the other way.
    pub operations: Vec<OperationSum>,
}

/// A fiscal register driver. Its calls block (a device is slow) and run on the buffer's device
/// thread, never on the async runtime or inside a database transaction.
pub trait Kkt: Send + Sync {
    /// Registers each task (fiscalizes and prints it); one result per task, in order. A task
    /// id the device has registered before returns that document, never a second one.
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>>;

    /// What the device knows of a task sent before an interruption: its document if it
    /// registered one, `None` if it never did (then it is safe to send).
    fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError>;

    /// The shift as the register has it at `now`.
    fn shift(&self, now: DateTime<Utc>) -> Result<ShiftStatus, DeviceError>;

    /// Closes the open shift (a fiscal document) and returns its report.
    fn close_shift(&self, now: DateTime<Utc>) -> Result<ZReport, DeviceError>;

    /// The OFD confirmed these documents (FN, number). A register whose FN talks to the OFD
    /// itself learns it there and ignores this.
    fn ofd_confirmed(&self, _documents: &[(String, i64)]) {}

    /// The FN's exchange with the OFD, for a register whose FN sends documents itself;
    /// `None` for one that leaves delivery to the adapter (the mock).
    fn ofd_exchange(&self) -> Option<Result<FnExchange, DeviceError>> {
        None
    }

    /// A short description for logs and status (`mock FN 9999…`, `ATOL at http://…`).
    fn describe(&self) -> String;
}
