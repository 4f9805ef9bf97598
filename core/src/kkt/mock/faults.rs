//! What the mock register can be made to do wrong, so the core's exactly-once rules
//! (docs/contract.md §10) are exercised without a real device: the same failure orders a real
//! register shows — an answer lost after the FN wrote the document, a document written without
//! the receipt's tag, an error code no table knows — switched on by tests (and, later, by the
//! demo's test codes).

use serde::{Deserialize, Serialize};

/// Faults of the mock register; counts are used up one receipt at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MockFaults {
    /// Every receipt: no paper (nothing is registered).
    pub paper_out: bool,
    /// The next n receipts are registered, then their answer is lost: the call reports the
    /// link lost, as a real register does when it drops off while the receipt closes.
    pub lose_after_write: u32,
    /// The next n receipts are registered without their tag (as a device whose FN keeps only
    /// a short document) and their answer is lost: a lookup finds a document that may be
    /// theirs and cannot tell.
    pub untagged_after_write: u32,
    /// The next n receipts meet an error code no table explains (nothing is registered).
    pub unknown_code: u32,
}

/// What the next receipt meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    Normal,
    PaperOut,
    LoseAfterWrite,
    UntaggedAfterWrite,
    UnknownCode,
}

impl MockFaults {
    /// Takes the fault the next receipt meets, using up its count.
    pub(super) fn take(&mut self) -> Next {
        let take = |n: &mut u32| {
            let hit = *n > 0;
            *n = n.saturating_sub(1);
            hit
        };
        if self.paper_out {
            Next::PaperOut
        } else if take(&mut self.unknown_code) {
            Next::UnknownCode
        } else if take(&mut self.lose_after_write) {
            Next::LoseAfterWrite
        } else if take(&mut self.untagged_after_write) {
            Next::UntaggedAfterWrite
        } else {
            Next::Normal
        }
    }
}
