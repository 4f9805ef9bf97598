//! A marking code as scanned (docs/research/marking.md §5): GS1 DataMatrix text with the group
//! separator GS (0x1D) between its variable parts — `01` + 14-digit GTIN, `21` + serial, then the
//! crypto tail (`91`/`92`, or `93`), tobacco's `8005` price. The identifier (КИ, `printView`) is
//! everything before the first GS; the driver and ТС ПИоТ take the whole code as base64 of its
//! bytes (S1, S6, S7; M1 `CodesCheckRequest.cs`).

use base64::Engine;

/// The group separator.
pub const GS: char = '\u{1d}';

/// A scanned code, as the till sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// The code without a scanner's symbology prefix (`]d2`, `]C1`) or a leading GS.
    pub fn new(raw: &str) -> Code {
        let trimmed = raw
            .strip_prefix("]d2")
            .or_else(|| raw.strip_prefix("]C1"))
            .unwrap_or(raw)
            .trim_start_matches(GS);
        Code(trimmed.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier (КИ): up to the first GS.
    pub fn identifier(&self) -> &str {
        self.0.split(GS).next().unwrap_or_default()
    }

    /// The GTIN (`01` + 14 digits), when the code starts with it.
    pub fn gtin(&self) -> Option<&str> {
        let g = self.0.strip_prefix("01")?.get(..14)?;
        g.bytes().all(|b| b.is_ascii_digit()).then_some(g)
    }

    /// The whole code as base64 of its bytes (ATOL `imc`, ТС ПИоТ `codes[]`).
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }

    /// For logs and the window: the GTIN and the start of the serial, never the crypto tail.
    pub fn short(&self) -> String {
        let id = self.identifier();
        let shown: String = id.chars().take(24).collect();
        if id.chars().count() > 24 {
            format!("{shown}…")
        } else {
            shown
        }
    }

    /// Whether the text looks like a marking code at all: a GS1 code (`01` + GTIN + `21`), or a
    /// short code of at least 8 printable characters (old tobacco packs, fur).
    pub fn well_formed(&self) -> bool {
        match self.gtin() {
            Some(_) => self.0.get(16..18) == Some("21") && self.identifier().len() > 18,
            None => self.0.len() >= 8 && !self.0.contains("\\u001d") && !self.0.contains("\\x1d"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_splits_at_its_group_separators_and_travels_as_base64() {
        let c = Code::new("]d20104813445003293215TmiV,g\u{1d}93dGVz");
        assert_eq!(c.identifier(), "0104813445003293215TmiV,g");
        assert_eq!(c.gtin(), Some("04813445003293"));
        // The sample of docs/research/marking.md §5 (M1).
        assert_eq!(c.base64(), "MDEwNDgxMzQ0NTAwMzI5MzIxNVRtaVYsZx05M2RHVno=");
        assert!(c.well_formed());
        assert!(
            !Code::new("0104813445003293215TmiV,g\\u001d93dGVz")
                .identifier()
                .contains(GS)
        );
        assert!(!Code::new("0104813445003293").well_formed(), "a GTIN without a serial");
    }
}
