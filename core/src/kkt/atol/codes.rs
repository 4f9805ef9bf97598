//! Every public error code of ATOL's driver, classified (docs/contract.md §10.6): the table is
//! `codes.tsv` beside this file, with its sources in its header; the README's "ATOL error
//! codes" lists the same rows (a test keeps them equal).

use std::collections::HashMap;
use std::sync::OnceLock;

/// What an error code of a fiscal task means for the receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A verdict on the receipt, given before the FN writes anything: final, `422`.
    Refused,
    /// Device trouble to wait for (paper, cover, busy, printer): `202`, tried again.
    Device,
    /// The shift is over 24 hours old.
    ShiftExpired,
    /// The operation needs an open shift.
    ShiftClosed,
    /// The FN takes no receipts (the 30-day OFD block, its archive full or expired).
    FnBlocked,
    /// May come after the FN wrote the document (link lost while closing, FN exchange).
    UnknownOutcome,
    /// The register or its driver is not set up for this: a person must fix it.
    Config,
}

impl Class {
    fn parse(name: &str) -> Option<Class> {
        Some(match name {
            "refused" => Class::Refused,
            "device" => Class::Device,
            "shift_expired" => Class::ShiftExpired,
            "shift_closed" => Class::ShiftClosed,
            "fn_blocked" => Class::FnBlocked,
            "unknown_outcome" => Class::UnknownOutcome,
            "config" => Class::Config,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Refused => "refused",
            Class::Device => "device",
            Class::ShiftExpired => "shift_expired",
            Class::ShiftClosed => "shift_closed",
            Class::FnBlocked => "fn_blocked",
            Class::UnknownOutcome => "unknown_outcome",
            Class::Config => "config",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub code: i64,
    /// `LIBFPTR_ERROR_` + this.
    pub constant: &'static str,
    pub class: Class,
    /// ATOL's own text.
    pub description: &'static str,
    /// Why it is in its class.
    pub reason: &'static str,
}

const TABLE: &str = include_str!("codes.tsv");

/// Every row, in code order.
pub fn all() -> &'static [Code] {
    static ROWS: OnceLock<Vec<Code>> = OnceLock::new();
    ROWS.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut c = l.split('\t');
                Some(Code {
                    code: c.next()?.parse().ok()?,
                    constant: c.next()?,
                    class: Class::parse(c.next()?)?,
                    description: c.next()?,
                    reason: c.next().unwrap_or_default(),
                })
            })
            .collect()
    })
}

fn index() -> &'static HashMap<i64, &'static Code> {
    static INDEX: OnceLock<HashMap<i64, &'static Code>> = OnceLock::new();
    INDEX.get_or_init(|| all().iter().map(|c| (c.code, c)).collect())
}

/// The row of `code`; `None` for a code no public table has (§10.6: unexpected).
pub fn lookup(code: i64) -> Option<&'static Code> {
    index().get(&code).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_table_parses_and_the_codes_the_driver_meets_most_are_classed_as_the_sources_say() {
        let lines = TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(all().len(), lines, "a row of codes.tsv does not parse");
        assert_eq!(lines, 314);
        let class = |c| lookup(c).map(|r| r.class);
        // Link lost while the receipt closes: the FN may hold it (the web servers block on these).
        for c in [1, 2, 3, 4, 177, 241] {
            assert_eq!(class(c), Some(Class::UnknownOutcome), "{c}");
        }
        for c in [44, 45, 55] {
            assert_eq!(class(c), Some(Class::Device), "{c}");
        }
        // Verdicts of the driver's sell script before anything is closed.
        for c in [16, 52, 66, 110, 143, 144, 215, 216, 217, 412, 501] {
            assert_eq!(class(c), Some(Class::Refused), "{c}");
        }
        assert_eq!(class(68), Some(Class::ShiftExpired));
        assert_eq!(class(73), Some(Class::ShiftClosed));
        assert_eq!(class(140), Some(Class::FnBlocked));
        assert_eq!(class(172), Some(Class::Config));
        assert_eq!(class(9999), None);
    }

    #[test]
    fn the_readme_lists_every_code_with_its_class() {
        let readme = include_str!("../../../../README.md");
        for c in all() {
            let row = format!("| {} | {} | {} |", c.code, c.constant, c.class.as_str());
            assert!(readme.contains(&row), "README \"ATOL error codes\" lacks {row}");
        }
    }
}
