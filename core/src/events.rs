//! Buffer events: every state transition is a `buffer_events` row, written in the same
//! transaction as the change it describes, and broadcast in-process after the commit
//! (for the desktop shell's tray and notifications).

use serde::Serialize;

/// What happened. The names are the `event_type` values of docs/contract.md §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ReceiptAdded,
    SyncStarted,
    ReceiptSynced,
    ReceiptFailed,
    ReceiptDlq,
    DlqRetried,
    LeaseRecovered,
    SyncReleased,
    CircuitOpened,
    CircuitHalfOpen,
    CircuitClosed,
    SyncCycleCompleted,
    OfdMisconfigured,
    BufferPurged,
    /// Receipts waiting in backoff were made due at once (manual sync, OFD recovered).
    BackoffCleared,
    /// The fiscal register refused a receipt (answered 422, never fiscal).
    ReceiptRefused,
    /// A receipt already answered that the register will not take now (shift expired, FN
    /// blocked) is kept until it goes through (docs/contract.md §10.4).
    ReceiptHeld,
    /// The register may hold a receipt and cannot tell: a person decides (§10.5).
    ReceiptNeedsReview,
    /// A person settled a receipt in review (attach, register, void) — with their words.
    ReceiptResolved,
    /// A DLQ entry past the retention period lost the customer's contact and the cashier's
    /// INN (SECURITY.md "Personal data").
    PersonalDataRemoved,
    /// A counter operation (shift, X-report, cash in/out, …) done on the register (§11).
    OperationDone,
    /// The register cannot tell whether an interrupted counter operation happened.
    OperationUnknown,
}

impl EventKind {
    pub const ALL: [EventKind; 22] = [
        EventKind::ReceiptAdded,
        EventKind::SyncStarted,
        EventKind::ReceiptSynced,
        EventKind::ReceiptFailed,
        EventKind::ReceiptDlq,
        EventKind::DlqRetried,
        EventKind::LeaseRecovered,
        EventKind::SyncReleased,
        EventKind::CircuitOpened,
        EventKind::CircuitHalfOpen,
        EventKind::CircuitClosed,
        EventKind::SyncCycleCompleted,
        EventKind::OfdMisconfigured,
        EventKind::BufferPurged,
        EventKind::BackoffCleared,
        EventKind::ReceiptRefused,
        EventKind::ReceiptHeld,
        EventKind::ReceiptNeedsReview,
        EventKind::ReceiptResolved,
        EventKind::PersonalDataRemoved,
        EventKind::OperationDone,
        EventKind::OperationUnknown,
    ];

    /// The kind stored under `name`, if any.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ReceiptAdded => "receipt_added",
            EventKind::SyncStarted => "sync_started",
            EventKind::ReceiptSynced => "receipt_synced",
            EventKind::ReceiptFailed => "receipt_failed",
            EventKind::ReceiptDlq => "receipt_dlq",
            EventKind::DlqRetried => "dlq_retried",
            EventKind::LeaseRecovered => "lease_recovered",
            EventKind::SyncReleased => "sync_released",
            EventKind::CircuitOpened => "circuit_opened",
            EventKind::CircuitHalfOpen => "circuit_half_open",
            EventKind::CircuitClosed => "circuit_closed",
            EventKind::SyncCycleCompleted => "sync_cycle_completed",
            EventKind::OfdMisconfigured => "ofd_misconfigured",
            EventKind::BufferPurged => "buffer_purged",
            EventKind::BackoffCleared => "backoff_cleared",
            EventKind::ReceiptRefused => "receipt_refused",
            EventKind::ReceiptHeld => "receipt_held",
            EventKind::ReceiptNeedsReview => "receipt_needs_review",
            EventKind::ReceiptResolved => "receipt_resolved",
            EventKind::PersonalDataRemoved => "personal_data_removed",
            EventKind::OperationDone => "operation_done",
            EventKind::OperationUnknown => "operation_unknown",
        }
    }
}

/// One event, as stored and as broadcast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub receipt_id: Option<String>,
    pub event_type: EventKind,
    pub created_at: String,
    pub details: serde_json::Value,
    /// The receipt's fiscal document number, when the event names a registered receipt (read
    /// from the buffer; absent in events as they are broadcast).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fiscal_doc_number: Option<i64>,
    /// The receipt's total, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<crate::money::Kopecks>,
}

/// An event to be written (its id and time are given when it is stored).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub receipt_id: Option<String>,
    pub kind: EventKind,
    pub details: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, receipt_id: Option<&str>, details: serde_json::Value) -> Self {
        NewEvent {
            receipt_id: receipt_id.map(str::to_string),
            kind,
            details,
        }
    }
}
