//! Where a receipt is in its life, as a type: stored as text, parsed once where a row is read,
//! bound as a parameter wherever SQL names it.

use serde::Serialize;

/// Where a receipt is in its life, stored as text in `receipts.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptState {
    /// Stored (the intent row); the register has not registered it yet.
    Fiscalizing,
    /// Registered; waiting to be sent to the OFD.
    Pending,
    /// Claimed by the worker, being sent (with a lease).
    Syncing,
    /// The OFD confirmed it.
    Synced,
    /// In the dead-letter queue: rejected by the OFD, or out of attempts.
    Failed,
    /// The register refused it (its own validation): answered 422, never fiscal.
    Refused,
    /// The register may or may not hold it, and it cannot tell which: a person decides
    /// (docs/contract.md §10.5) — attach a document, register it now, or void it.
    NeedsReview,
    /// A person decided it is not to be registered (it never was, or it was settled otherwise).
    Voided,
}

impl ReceiptState {
    pub const ALL: [ReceiptState; 8] = [
        ReceiptState::Fiscalizing,
        ReceiptState::Pending,
        ReceiptState::Syncing,
        ReceiptState::Synced,
        ReceiptState::Failed,
        ReceiptState::Refused,
        ReceiptState::NeedsReview,
        ReceiptState::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::Fiscalizing => "fiscalizing",
            ReceiptState::Pending => "pending",
            ReceiptState::Syncing => "syncing",
            ReceiptState::Synced => "synced",
            ReceiptState::Failed => "failed",
            ReceiptState::Refused => "refused",
            ReceiptState::NeedsReview => "needs_review",
            ReceiptState::Voided => "voided",
        }
    }

    /// The status stored as `name`; parsed once, where a row is read.
    pub fn parse(name: &str) -> Option<ReceiptState> {
        ReceiptState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl rusqlite::types::FromSql for ReceiptState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let name = value.as_str()?;
        ReceiptState::parse(name)
            .ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("unknown receipt status {name:?}").into()))
    }
}

impl rusqlite::types::ToSql for ReceiptState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// Why a receipt is in the dead-letter queue (`dlq_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// The OFD rejected the document (400, 413, 422): retrying will not help.
    RejectedByOfd,
    /// The last of `max_attempts` failed attempts.
    MaxRetriesExceeded,
    /// The stored receipt could not be made into an OFD document (a person must look).
    DocumentUnreadable,
}

/// Whether a registered receipt's slip came out (`print_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrintState {
    Printed,
    PrintFailed,
}

/// Text in the database, parsed once where a row is read and bound where SQL names it.
macro_rules! stored_as_text {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(format!("unknown {} {text:?}", stringify!($name)).into())
                })
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_as_text!(DeadReason {
    RejectedByOfd => "rejected_by_ofd",
    MaxRetriesExceeded => "max_retries_exceeded",
    DocumentUnreadable => "document_unreadable",
});

stored_as_text!(PrintState {
    Printed => "printed",
    PrintFailed => "print_failed",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_as_itself_and_the_schema_allows_exactly_the_receipt_statuses() {
        for s in ReceiptState::ALL {
            assert_eq!(ReceiptState::parse(s.as_str()), Some(s));
        }
        for r in DeadReason::ALL {
            assert_eq!(DeadReason::parse(r.as_str()), Some(*r));
        }
        for p in PrintState::ALL {
            assert_eq!(PrintState::parse(p.as_str()), Some(*p));
        }
        // The last migration's CHECK names the same statuses as the enum, no more, no fewer.
        let schema = include_str!("schema.rs");
        // (The counter operations' table, after the receipts', has statuses of its own.)
        let schema = schema.split("CREATE TABLE operations").next().unwrap();
        let check = schema
            .rsplit("CHECK (status IN (")
            .next()
            .unwrap()
            .split("))")
            .next()
            .unwrap();
        let mut named: Vec<&str> = check.split(',').map(|s| s.trim().trim_matches('\'')).collect();
        let mut ours: Vec<&str> = ReceiptState::ALL.iter().map(|s| s.as_str()).collect();
        named.sort_unstable();
        ours.sort_unstable();
        assert_eq!(named, ours);
    }
}
