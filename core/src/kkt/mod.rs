//! The fiscal register (KKT) seam: `trait Kkt`, what a device returns, and the drivers.
//!
//! A register assigns the fiscal attributes itself — document number, fiscal sign, FN, shift —
//! so intake is (docs/contract.md §7 and §10; README "Architecture"):
//! 1. the buffer makes an **intent row** durable (key, body, status `fiscalizing`);
//! 2. the buffer's device thread hands the device a [`Task`] whose id is the receipt id (stable
//!    across retries and restarts) and waits for its [`Fiscalized`] result;
//! 3. the result goes back through the writer into the row in one transaction, then the answer.
//!
//! After an interruption (crash, timeout, lost answer) an intent row is never sent blindly:
//! [`Kkt::lookup`] asks the device whether it registered that task first. The mock driver goes
//! through exactly these steps, with a fiscal memory of its own ([`mock`]).
//!
//! The rules every driver keeps, whatever its device answers (docs/contract.md §10): an unknown
//! outcome is resolved from the FN before anything is sent again; a document is matched to its
//! receipt exactly (by the receipt's tag in a requisite the FN returns), by content only as a
//! fallback; where the device cannot tell, the receipt is [`DeviceError::NeedsReview`] and a
//! person decides ([`Kkt::attach`], or a forced new attempt, or a void); a result is checked
//! against what was sent before it counts.

pub mod atol;
pub mod marks;
pub mod mock;
pub mod ops;
pub mod slip;

pub use mock::{MockFaults, MockKkt, MockKktConfig};
pub use ops::{OpResult, OpTask, Operation};

use crate::money::Kopecks;
use crate::receipt::{PaymentType, Receipt, ReceiptType, VatSum};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::borrow::Cow;

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
    /// Registered so long after the buyer paid that it goes on the device as the
    /// self-initiated correction of that settlement, dated this day (§10.7, README "Late
    /// sales"). Decided once by the device thread; a retry keeps it.
    pub late: Option<NaiveDate>,
    /// A person decided to register it now (`resolve` `register`, §10.5): the driver sends a
    /// new attempt even though an earlier attempt's outcome is unknown.
    pub forced: bool,
}

impl Task {
    pub fn new(id: String, receipt: Receipt, requested_at: DateTime<Utc>) -> Task {
        Task {
            id,
            receipt,
            requested_at,
            late: None,
            forced: false,
        }
    }

    /// What goes on the device: the receipt, or for a late sale its correction receipt.
    pub fn document(&self) -> Cow<'_, Receipt> {
        match self.late {
            Some(day) => Cow::Owned(self.receipt.late_correction(day)),
            None => Cow::Borrowed(&self.receipt),
        }
    }

    /// The short tag of this receipt that goes into the FN with its document (§10.2): see
    /// [`receipt_tag`].
    pub fn tag(&self) -> String {
        receipt_tag(&self.id)
    }
}

/// The tag a receipt's document carries in the FN (§10.2): 16 characters, the most tag 1192
/// holds — `KA` and 14 base-32 digits (70 bits) of the SHA-256 of the receipt id. A lookup
/// only compares the tags of the few documents between its mark and the FN's last one, and a
/// tag match must also agree on operation and total, so a false match would need two
/// receipts in that window sharing 70 random bits.
pub fn receipt_tag(receipt_id: &str) -> String {
    const DIGITS: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = sha2::Sha256::digest(receipt_id.as_bytes());
    let mut bits = u128::from_be_bytes(digest[..16].try_into().unwrap_or([0; 16]));
    let mut tag = String::from("KA");
    for _ in 0..14 {
        tag.push(DIGITS[(bits >> 123) as usize] as char);
        bits <<= 5;
    }
    tag
}

/// A registered receipt: its fiscal document, and whether the slip came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Fiscalized {
    pub doc: FiscalDoc,
    /// The document is fiscal (it is in the FN) but the slip did not print: the answer is
    /// `"status":"buffered"` with this reason.
    pub print_error: Option<String>,
    /// The operation of the document in the FN: the receipt's own, or its correction for a
    /// late sale.
    pub operation: ReceiptType,
}

/// A document in the FN that may be a receipt's, shown to the person who settles it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub fiscal_doc_number: i64,
    /// The document's operation as the FN gives it (`sale`, `sale_refund`, … `open_shift`),
    /// when it gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Kopecks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<String>,
    /// Why it may be this receipt's, in Russian (as the window shows it).
    pub why: String,
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
    /// The register is not set up for this — not registered, a setting or licence missing,
    /// its clock behind the FN's (its own error code says so): a person must fix the register.
    Misconfigured,
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
    /// The register will not take it now (see [`NotTaken`]): nothing is stored while its till
    /// still waits; a receipt already answered is kept, with an alarm, until it goes through
    /// or a person decides (§10.4).
    #[error("{message}")]
    NotTaken { reason: NotTaken, message: String },
    /// An error no table explains (§10.6): the outcome is unknown, so the receipt is looked
    /// up before anything is sent again; an alarm is raised, and after a few such answers a
    /// person decides ([`DeviceError::NeedsReview`]). Never retried for ever.
    #[error("the fiscal register answered an unknown error ({code}): {message}")]
    Unexpected { code: String, message: String },
    /// The register may hold the receipt and cannot tell (§10.2, §10.5): `candidates` are the
    /// documents that could be it. A person decides; nothing is sent again until then.
    #[error("{reason}")]
    NeedsReview { reason: String, candidates: Vec<Candidate> },
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
    /// The FN's last document when the reading began: the reading says nothing of documents
    /// after it (docs/contract.md §10.8). `None`: the register does not tell.
    pub last_document: Option<i64>,
}

impl FnExchange {
    /// Whether this reading proves that document `number` reached the OFD: it existed when the
    /// reading began, and it is not among the unconfirmed.
    pub fn confirms(&self, number: i64) -> bool {
        self.last_document.is_some_and(|last| number <= last)
            && (self.not_sent == 0 || self.first_not_sent.is_some_and(|first| number < first))
    }
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
    /// Cash put into the drawer in the shift, and taken out (§11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_in: Option<ops::Movement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_out: Option<ops::Movement>,
    /// The drawer's counter at the close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_in_drawer: Option<Kopecks>,
    /// Who closed the shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<crate::receipt::Cashier>,
}

/// The register itself, as `GET /v1/kkt/device` shows it (docs/contract.md §11). What a
/// register does not tell is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// The model as the device names it.
    pub model: String,
    /// The register's serial (factory) number.
    pub serial: String,
    pub firmware: Option<String>,
    /// The FFD version the register works in (`1.2`).
    pub ffd_version: Option<String>,
    pub fn_number: String,
    /// When the FN's keys expire and it stops taking documents (RFC 3339).
    pub fn_valid_until: Option<String>,
    /// The FN's life phase as the device names it (`fiscalMode`, `postFiscalMode`, …).
    pub fn_phase: Option<String>,
    pub shift: ShiftState,
    /// The current shift's number (the last one's while closed).
    pub shift_number: i64,
    /// `false`: out of paper.
    pub paper_present: Option<bool>,
    pub cover_open: Option<bool>,
    pub drawer_open: Option<bool>,
    /// Documents in the FN the OFD has not confirmed, the first of them and its time.
    pub fn_unsent: i64,
    pub fn_unsent_first: Option<i64>,
    pub fn_unsent_first_at: Option<String>,
    /// The register's cash counter: what should be in the drawer.
    pub cash_in_drawer: Option<Kopecks>,
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

    /// Document `number` of the current FN as this receipt's result: a person attaches it to a
    /// receipt in review (§10.5). Refused when it is not a receipt with this receipt's operation
    /// and total, so a wrong number cannot be attached by a slip of the finger.
    fn attach(&self, _task: &Task, number: i64) -> Result<Fiscalized, DeviceError> {
        Err(DeviceError::Refused {
            code: "attach_unsupported".into(),
            message: format!("this register cannot read document {number} back"),
        })
    }

    /// The shift as the register has it at `now`.
    fn shift(&self, now: DateTime<Utc>) -> Result<ShiftStatus, DeviceError>;

    /// Closes the open shift (a fiscal document) and returns its report.
    fn close_shift(&self, now: DateTime<Utc>) -> Result<ZReport, DeviceError>;

    /// The register's own state at `now`: model, FN, shift, paper, unsent documents, cash (§11).
    fn device_info(&self, _now: DateTime<Utc>) -> Result<DeviceInfo, DeviceError> {
        Err(DeviceError::Refused {
            code: "device_info_unsupported".into(),
            message: format!("{} does not report its own state", self.describe()),
        })
    }

    /// Runs a counter operation (§11): its result as the till gets it. An operation id the
    /// register has run before returns that result, never a second run.
    fn operate(&self, task: &OpTask) -> Result<OpResult, DeviceError> {
        Err(DeviceError::Refused {
            code: "operation_unsupported".into(),
            message: format!("{} cannot do this: {}", self.describe(), task.op.describe()),
        })
    }

    /// What the register shows of an operation sent before an interruption: its result if it
    /// happened, `None` if it did not (then it is safe to send), [`DeviceError::NeedsReview`]
    /// when the register cannot tell.
    fn operation_lookup(&self, _task: &OpTask) -> Result<Option<OpResult>, DeviceError> {
        Ok(None)
    }

    /// The FN's own check of a marking code before a sale or a refund (tag 2106, §12); `None`:
    /// this driver does not ask the FN (the permissive check alone decides).
    fn check_marking(&self, _code: &str, _refund: bool) -> Result<Option<marks::FnCheck>, DeviceError> {
        Ok(None)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(not_sent: i64, first: Option<i64>, last: Option<i64>) -> FnExchange {
        FnExchange {
            not_sent,
            first_not_sent: first,
            first_not_sent_at: None,
            link_error: None,
            last_document: last,
        }
    }

    #[test]
    fn a_reading_confirms_only_documents_that_existed_when_it_began() {
        // "Nothing unsent" when the FN's last document was 10 says nothing of document 11.
        assert!(reading(0, None, Some(10)).confirms(10));
        assert!(!reading(0, None, Some(10)).confirms(11));
        assert!(
            !reading(0, None, None).confirms(1),
            "a reading that does not say proves nothing"
        );
        assert!(reading(2, Some(9), Some(10)).confirms(8));
        assert!(!reading(2, Some(9), Some(10)).confirms(9));
    }

    #[test]
    fn a_receipt_tag_is_sixteen_characters_and_stable() {
        let tag = receipt_tag("0b9a8a36-3f0e-4c44-9d6f-2f0f4b1d9c11");
        assert_eq!(tag.chars().count(), 16);
        assert!(
            tag.starts_with("KA")
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(tag, receipt_tag("0b9a8a36-3f0e-4c44-9d6f-2f0f4b1d9c11"));
        assert_ne!(tag, receipt_tag("0b9a8a36-3f0e-4c44-9d6f-2f0f4b1d9c12"));
    }
}
