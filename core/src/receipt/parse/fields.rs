//! Reading fields from the raw JSON text: objects, strings with their length and characters
//! checked, FFD list values, exact positive decimals, money within the FN's counter, dates,
//! arrays with their bounds.

use super::Errors;
use crate::money::DecimalError;
use crate::receipt::*;
use serde_json::value::RawValue;
use std::collections::HashMap;

pub(super) type Object<'a> = HashMap<String, &'a RawValue>;

pub(super) fn as_object<'a>(raw: &'a RawValue) -> Option<Object<'a>> {
    serde_json::from_str::<Object<'a>>(raw.get()).ok()
}

pub(super) fn as_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

pub(super) fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// A field that is present and not `null`.
pub(super) fn present<'a>(obj: &Object<'a>, key: &str) -> Option<&'a RawValue> {
    obj.get(key).copied().filter(|r| !is_null(r))
}

/// Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) reorder the text around
/// them on screen and on the slip ("Trojan Source"): a receipt line must read as it is stored.
pub(super) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A text with a length range (in characters) and no control characters (`allowed` excepted).
pub(super) fn text(raw: &RawValue, path: &str, max: usize, allowed: &[char], errors: &mut Errors) -> Option<String> {
    let Some(s) = as_string(raw) else {
        errors.add(path, "must be a string");
        return None;
    };
    let len = s.chars().count();
    if s.trim().is_empty() {
        errors.add(path, "must not be empty");
    } else if len > max {
        errors.add(path, format!("must be at most {max} characters (it has {len})"));
    } else if s.chars().any(|c| c.is_control() && !allowed.contains(&c)) {
        errors.add(path, "must not contain control characters");
    } else if s.chars().any(is_bidi_control) {
        errors.add(path, "must not contain bidirectional override characters");
    } else {
        return Some(s);
    }
    None
}

/// A required string field.
pub(super) fn string_field(obj: &Object<'_>, key: &str, path: &str, max: usize, errors: &mut Errors) -> Option<String> {
    match present(obj, key) {
        None => {
            errors.add(path, "is required");
            None
        }
        Some(raw) => text(raw, path, max, &[], errors),
    }
}

/// A value of an FFD list, named by string; `None` (nothing recorded) when absent.
pub(super) fn listed<T>(
    obj: &Object<'_>,
    key: &str,
    path: &str,
    parse: fn(&str) -> Option<T>,
    names: fn() -> String,
    errors: &mut Errors,
) -> Result<Option<T>, ()> {
    let Some(raw) = present(obj, key) else {
        return Ok(None);
    };
    match as_string(raw).as_deref().and_then(parse) {
        Some(v) => Ok(Some(v)),
        None => {
            errors.add(path, format!("must be one of {}", names()));
            Err(())
        }
    }
}

/// A positive decimal field parsed with `parse`; `None` after recording the problem.
pub(super) fn positive<T: Copy, F>(
    raw: Option<&RawValue>,
    path: &str,
    parse: F,
    is_positive: fn(T) -> bool,
    errors: &mut Errors,
) -> Option<T>
where
    F: Fn(&str) -> Result<T, DecimalError>,
{
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        errors.add(path, "is required");
        return None;
    };
    match parse(raw.get()) {
        Ok(v) if is_positive(v) => Some(v),
        Ok(_) => {
            errors.add(path, "must be greater than 0");
            None
        }
        Err(e) => {
            errors.add(path, e.to_string());
            None
        }
    }
}

/// An amount of money > 0 and within the fiscal drive's counter.
pub(super) fn amount(raw: Option<&RawValue>, path: &str, errors: &mut Errors) -> Option<Kopecks> {
    let k = positive(raw, path, Kopecks::parse, |k| k.0 > 0, errors)?;
    within_limit(k, path, errors)
}

pub(super) fn within_limit(k: Kopecks, path: &str, errors: &mut Errors) -> Option<Kopecks> {
    if k > MAX_AMOUNT {
        errors.add(
            path,
            format!("must be at most {MAX_AMOUNT} (the fiscal drive's counter limit), got {k}"),
        );
        return None;
    }
    Some(k)
}

/// A date `YYYY-MM-DD`.
pub(super) fn date(raw: &RawValue, path: &str, errors: &mut Errors) -> Option<NaiveDate> {
    match as_string(raw).and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()) {
        Some(d) => Some(d),
        None => {
            errors.add(path, "must be a date written YYYY-MM-DD");
            None
        }
    }
}

pub(super) fn array<'a>(obj: &Object<'a>, key: &str, max: usize, errors: &mut Errors) -> Option<Vec<&'a RawValue>> {
    let Some(raw) = present(obj, key) else {
        errors.add(key, "is required");
        return None;
    };
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        errors.add(key, "must be an array");
        return None;
    };
    if list.is_empty() {
        errors.add(key, "must have at least 1 element");
        None
    } else if list.len() > max {
        errors.add(key, format!("must have at most {max} elements"));
        None
    } else {
        Some(list)
    }
}
