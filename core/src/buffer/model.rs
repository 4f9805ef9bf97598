//! What goes into the buffer and what comes out: a receipt to admit and the answer its till
//! gets, a person's decision, the counts, a claimed receipt and what became of its send.

use super::{DeadReason, ReceiptState};
use crate::kkt::{FiscalDoc, Fiscalized};
use crate::receipt::Receipt;
use serde::Serialize;

/// A receipt to admit: validated, with its idempotency key and the hash of its exact body.
#[derive(Debug, Clone)]
pub struct AdmitRequest {
    pub idempotency_key: String,
    pub body_hash: String,
    pub receipt: Receipt,
}

/// The answer a till gets for its key: the exact bytes (stored for replays, except the interim
/// `202 awaiting_device`) and their HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub receipt_id: String,
    pub http_status: u16,
    pub body: Vec<u8>,
    /// True when this is the stored answer to an earlier request with the same key and body.
    pub replayed: bool,
}

/// Why a receipt was not admitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmitError {
    #[error("the idempotency key was already used with a different body")]
    KeyReused,
    #[error("a request with this idempotency key is still being processed")]
    InProgress,
    #[error("the buffer holds {unsynced} unsynced receipts (capacity {capacity})")]
    BufferFull { unsynced: u64, capacity: u64 },
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// The register has registered and printed it, but its result could not be stored yet: a
    /// retry of the key gets the answer once it is stored, and nothing is printed twice.
    #[error("printed, but the register's result is not stored yet: {0}")]
    ResultUnstored(String),
    /// The register will not take it now (FN blocked, shift expired): nothing is stored.
    #[error("{message}")]
    NotTaken {
        reason: crate::kkt::NotTaken,
        message: String,
    },
}

/// A person's decision on a receipt in review (docs/contract.md §10.5).
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// This FN document is the receipt's (read back from the register).
    Attach(Fiscalized),
    /// Register it now: a new attempt, though an earlier one's outcome is unknown.
    Register,
    /// It is not to be registered.
    Void,
}

impl Resolution {
    pub fn action(&self) -> &'static str {
        match self {
            Resolution::Attach(_) => "attach",
            Resolution::Register => "register",
            Resolution::Void => "void",
        }
    }
}

/// Why a decision was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("no such receipt")]
    NotFound,
    #[error("the receipt is {}, not waiting for a decision", .0.as_str())]
    NotInReview(ReceiptState),
    #[error("document {number} of FN {fn_number} is already receipt {other}'s")]
    NumberTaken {
        number: i64,
        fn_number: String,
        other: String,
    },
    #[error("storage unavailable: {0}")]
    Storage(String),
}

/// What a till is told about its receipt; the API layer turns it into bytes ([`AnswerFn`]).
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// Registered: 200 `printed`, or `buffered` with the print error.
    Fiscalized {
        receipt_id: &'a str,
        receipt: &'a Receipt,
        doc: &'a FiscalDoc,
        print_error: Option<&'a str>,
        /// The document's operation when it is not the receipt's own (a late sale's correction).
        registered_as: Option<crate::receipt::ReceiptType>,
    },
    /// The register refused it: 422 with its code and text.
    Refused {
        receipt_id: &'a str,
        code: &'a str,
        message: &'a str,
    },
    /// Stored, not registered yet: 202 `awaiting_device` with the cause.
    AwaitingDevice { receipt_id: &'a str, reason: &'a str },
    /// A person voided it (§10.5): 422 `receipt_voided` with their words.
    Voided { receipt_id: &'a str, comment: &'a str },
}

/// Builds the HTTP answer (status, body) for an [`Answer`]. The API decides what a till gets;
/// the buffer stores exactly those bytes with the receipt, so every replay is the same.
pub type AnswerFn = fn(&Answer<'_>) -> (u16, Vec<u8>);

/// Per-status counts and the age of the oldest unsynced receipt, refreshed after every commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub fiscalizing: u64,
    pub pending: u64,
    pub syncing: u64,
    pub synced: u64,
    /// The dead-letter queue.
    pub failed: u64,
    pub refused: u64,
    /// Receipts a person must settle (the register may hold them; §10.5).
    pub needs_review: u64,
    /// Receipts a person voided.
    pub voided: u64,
    /// Pending receipts that have failed at least one attempt (waiting past their first retry).
    pub retrying: u64,
    /// When the first receipt in delivery order (lowest fiscal number) not yet synced — pending,
    /// syncing or failed — was taken (Unix ms): the FN counts its unsent documents from it.
    pub oldest_unsynced_ms: Option<i64>,
    /// When the first pending or syncing receipt in delivery order was taken (Unix ms).
    pub oldest_pending_ms: Option<i64>,
    /// Unix ms of the last receipt marked synced.
    pub last_synced_ms: Option<i64>,
}

impl Counts {
    /// Receipts taken (a refused or voided one was never a fiscal receipt).
    pub fn total(&self) -> u64 {
        self.fiscalizing + self.pending + self.syncing + self.synced + self.failed + self.needs_review
    }
    /// What counts against the capacity: everything not yet confirmed by the OFD.
    pub fn unsynced(&self) -> u64 {
        self.fiscalizing + self.pending + self.syncing + self.failed + self.needs_review
    }
}

/// A receipt claimed for delivery: what the OFD document is built from (`ofd::document`).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub receipt_id: String,
    /// Failed attempts before this one.
    pub retry_count: u32,
    pub pos_id: String,
    /// The receipt type as stored (`sale`, …).
    pub kind: String,
    /// The validated request as stored: its `items` and `payments` go to the OFD verbatim.
    pub request_json: String,
    /// Its fiscal attributes; `fiscal.total` is the receipt's total.
    pub fiscal: FiscalDoc,
}

/// What to do with a claimed receipt after a send.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// The OFD accepted it (2xx or 409).
    Synced {
        http_status: u16,
        ofd_id: Option<String>,
        response: String,
    },
    /// A failed attempt: back to pending until `next_attempt_at_ms`.
    Retry { error: String, next_attempt_at_ms: i64 },
    /// Final: into the dead-letter queue.
    Dead {
        reason: DeadReason,
        error: String,
        http_status: Option<u16>,
    },
    /// Not attempted (breaker open, shutting down): back to pending, no attempt counted.
    Release,
    /// Not delivered yet by someone else (the FN): back to pending until `next_attempt_at_ms`,
    /// no attempt counted.
    Postpone { reason: String, next_attempt_at_ms: i64 },
}
