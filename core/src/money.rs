//! Exact decimal parsing of JSON number text into integer minor units.
//!
//! Money never passes through a float: the request's number text (`100`, `99.90`, `1e2`,
//! or the same inside a JSON string, as the original adapter's clients sometimes send) is parsed
//! digit by digit into an integer with a fixed number of decimals — kopecks for money (2),
//! millionths for quantities (6, the FFD 1.2 precision of tag 1023).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// The largest magnitude we accept for any decimal field, in whole units (one trillion).
/// Beyond it a value is rejected instead of risking overflow in sums and products.
const MAX_WHOLE_UNITS: i128 = 1_000_000_000_000;

/// Why a decimal could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("must be a number")]
    NotANumber,
    #[error("has more than {0} decimal places")]
    TooPrecise(u32),
    #[error("is too large")]
    TooLarge,
}

/// Parses decimal text (JSON number grammar, optionally quoted) into an integer scaled by
/// `10^scale`. Rejects values that would need more than `scale` decimals (trailing zeros are fine).
pub fn parse_scaled(text: &str, scale: u32) -> Result<i128, DecimalError> {
    let t = text.trim();
    let t = match t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => t,
    };
    let (negative, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let exp_text = &rest[i + 1..];
            let exp_text = exp_text.strip_prefix('+').unwrap_or(exp_text);
            if exp_text.is_empty() || exp_text.len() > 4 {
                return Err(if exp_text.is_empty() {
                    DecimalError::NotANumber
                } else {
                    DecimalError::TooLarge
                });
            }
            let exp: i32 = exp_text.parse().map_err(|_| DecimalError::NotANumber)?;
            (&rest[..i], exp)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(DecimalError::NotANumber);
    }
    if mantissa.contains('.') && frac_part.is_empty() {
        return Err(DecimalError::NotANumber);
    }
    // digits = int_part ++ frac_part, value = digits * 10^(exponent - frac_len)
    let digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let digits = digits.trim_start_matches('0');
    let shift = exponent - frac_part.len() as i32 + scale as i32;
    let (digits, shift) = if shift < 0 {
        // The last -shift digits must be zeros, otherwise the value is too precise.
        let cut = (-shift) as usize;
        if digits.len() > cut {
            let (keep, drop) = digits.split_at(digits.len() - cut);
            if drop.bytes().any(|b| b != b'0') {
                return Err(DecimalError::TooPrecise(scale));
            }
            (keep.to_string(), 0)
        } else if digits.bytes().all(|b| b == b'0') {
            (String::new(), 0)
        } else {
            return Err(DecimalError::TooPrecise(scale));
        }
    } else {
        (digits.to_string(), shift as u32)
    };
    if digits.is_empty() {
        return Ok(0);
    }
    let limit = MAX_WHOLE_UNITS * 10i128.pow(scale);
    if digits.len() as u32 + shift > 30 {
        return Err(DecimalError::TooLarge);
    }
    let mut value: i128 = digits.parse().map_err(|_| DecimalError::TooLarge)?;
    value = value.checked_mul(10i128.pow(shift)).ok_or(DecimalError::TooLarge)?;
    if value > limit {
        return Err(DecimalError::TooLarge);
    }
    Ok(if negative { -value } else { value })
}

/// An amount of money in kopecks (1/100 ruble).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Kopecks(pub i64);

impl Kopecks {
    /// Parses ruble text such as `100`, `99.9`, `"12.50"` exactly.
    pub fn parse(text: &str) -> Result<Kopecks, DecimalError> {
        let v = parse_scaled(text, 2)?;
        i64::try_from(v).map(Kopecks).map_err(|_| DecimalError::TooLarge)
    }

    /// The amount as ruble text with exactly two decimals: `100.00`.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// `price × quantity` rounded half-up to whole kopecks (quantity in millionths).
    pub fn times_quantity(self, quantity: Quantity) -> Option<Kopecks> {
        let product = (self.0 as i128).checked_mul(quantity.0 as i128)?;
        let rounded = (product + Quantity::ONE as i128 / 2).div_euclid(Quantity::ONE as i128);
        i64::try_from(rounded).ok().map(Kopecks)
    }
}

impl fmt::Display for Kopecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal_string())
    }
}

/// Serialised as a JSON number with two decimals (`100.00`), never through a float.
impl Serialize for Kopecks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_decimal_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// Read back exactly from what [`Serialize`] wrote (a number, or a numeric string): stored
/// documents are parsed digit by digit like requests, never through a float.
impl<'de> Deserialize<'de> for Kopecks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        Kopecks::parse(raw.get().trim_matches('"')).map_err(serde::de::Error::custom)
    }
}

/// A quantity in millionths of a unit (FFD 1.2, tag 1023: up to 6 decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Quantity(pub i64);

impl Quantity {
    /// One unit.
    pub const ONE: i64 = 1_000_000;

    pub fn parse(text: &str) -> Result<Quantity, DecimalError> {
        let v = parse_scaled(text, 6)?;
        i64::try_from(v).map(Quantity).map_err(|_| DecimalError::TooLarge)
    }

    /// The quantity as decimal text without needless zeros: `1`, `0.5`, `1.235`.
    pub fn to_decimal_string(self) -> String {
        let whole = self.0 / Quantity::ONE;
        let frac = self.0 % Quantity::ONE;
        if frac == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{frac:06}").trim_end_matches('0').to_string()
        }
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_decimal_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        Quantity::parse(raw.get().trim_matches('"')).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_and_fractional_rubles_parse_exactly() {
        assert_eq!(Kopecks::parse("100"), Ok(Kopecks(10000)));
        assert_eq!(Kopecks::parse("99.9"), Ok(Kopecks(9990)));
        assert_eq!(Kopecks::parse("0.01"), Ok(Kopecks(1)));
        assert_eq!(Kopecks::parse("12.50"), Ok(Kopecks(1250)));
        assert_eq!(Kopecks::parse("\"12.5\""), Ok(Kopecks(1250)));
        assert_eq!(Kopecks::parse("-3.10"), Ok(Kopecks(-310)));
    }

    #[test]
    fn exponents_are_applied_exactly() {
        assert_eq!(Kopecks::parse("1e2"), Ok(Kopecks(10000)));
        assert_eq!(Kopecks::parse("1.5E+1"), Ok(Kopecks(1500)));
        assert_eq!(Kopecks::parse("125e-2"), Ok(Kopecks(125)));
        assert_eq!(Kopecks::parse("1000e-5"), Ok(Kopecks(1)));
        assert_eq!(Kopecks::parse("1e-3"), Err(DecimalError::TooPrecise(2)));
    }

    #[test]
    fn a_third_decimal_is_too_precise_but_trailing_zeros_are_fine() {
        assert_eq!(Kopecks::parse("0.001"), Err(DecimalError::TooPrecise(2)));
        assert_eq!(Kopecks::parse("10.12000"), Ok(Kopecks(1012)));
        assert_eq!(Quantity::parse("1.235"), Ok(Quantity(1_235_000)));
        assert_eq!(Quantity::parse("0.123456"), Ok(Quantity(123_456)));
        assert_eq!(Quantity::parse("1.2345678"), Err(DecimalError::TooPrecise(6)));
    }

    #[test]
    fn non_numbers_and_huge_values_are_refused() {
        for bad in [
            "", "abc", "1.", ".5", "1e", "NaN", "Infinity", "0x10", "1,5", "--1", "\"\"", "true",
        ] {
            assert_eq!(Kopecks::parse(bad), Err(DecimalError::NotANumber), "{bad}");
        }
        assert_eq!(Kopecks::parse("1e400"), Err(DecimalError::TooLarge));
        assert_eq!(Kopecks::parse("1e99999"), Err(DecimalError::TooLarge));
        assert_eq!(
            Kopecks::parse("99999999999999999999999999999999999"),
            Err(DecimalError::TooLarge)
        );
        assert_eq!(Kopecks::parse("1000000000000.01"), Err(DecimalError::TooLarge));
        assert_eq!(Kopecks::parse("1000000000000"), Ok(Kopecks(100_000_000_000_000)));
    }

    #[test]
    fn price_times_weighed_quantity_rounds_half_up_to_kopecks() {
        // 0.333 kg at 99.99 = 33.29667 → 33.30
        assert_eq!(Kopecks(9999).times_quantity(Quantity(333_000)), Some(Kopecks(3330)));
        // 0.005 × 1.00 = 0.005 → 0.01 (half up)
        assert_eq!(Kopecks(100).times_quantity(Quantity(5_000)), Some(Kopecks(1)));
        assert_eq!(Kopecks(100).times_quantity(Quantity(4_999)), Some(Kopecks(0)));
        // six decimals: 0.000125 × 40.00 = 0.005 → 0.01
        assert_eq!(Kopecks(4000).times_quantity(Quantity(125)), Some(Kopecks(1)));
    }

    #[test]
    fn money_serialises_as_a_two_decimal_json_number() {
        assert_eq!(serde_json::to_string(&Kopecks(10000)).unwrap(), "100.00");
        assert_eq!(serde_json::to_string(&Kopecks(5)).unwrap(), "0.05");
        assert_eq!(serde_json::to_string(&Quantity(1_500_000)).unwrap(), "1.5");
        assert_eq!(serde_json::to_string(&Quantity(2_000_000)).unwrap(), "2");
        assert_eq!(serde_json::to_string(&Quantity(350)).unwrap(), "0.00035");
    }

    proptest! {
        #[test]
        fn any_kopeck_amount_round_trips_through_its_text(k in 0i64..100_000_000_000_000) {
            let text = Kopecks(k).to_decimal_string();
            prop_assert_eq!(Kopecks::parse(&text), Ok(Kopecks(k)));
        }

        #[test]
        fn scientific_notation_agrees_with_plain_notation(k in 0i64..10_000_000_000, e in 0i32..6) {
            // k kopecks written as (k * 10^e) e-(2+e)
            let mantissa = (k as i128) * 10i128.pow(e as u32);
            let text = format!("{}e-{}", mantissa, 2 + e);
            prop_assert_eq!(Kopecks::parse(&text), Ok(Kopecks(k)));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = Kopecks::parse(&s);
            let _ = Quantity::parse(&s);
        }

        #[test]
        fn quantities_round_trip(q in 1i64..1_000_000_000) {
            prop_assert_eq!(Quantity::parse(&Quantity(q).to_decimal_string()), Ok(Quantity(q)));
        }
    }
}
