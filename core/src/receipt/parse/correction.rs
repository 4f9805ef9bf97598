//! A correction's basis (1173, 1174, 1178, 1179): self-initiated or ordered, its date and number.

use super::Errors;
use super::fields::*;
use crate::receipt::*;

pub(super) fn correction(
    obj: &Object<'_>,
    kind: Option<ReceiptType>,
    errors: &mut Errors,
) -> Result<Option<Correction>, ()> {
    let raw = present(obj, "correction");
    let is_correction = kind.is_some_and(ReceiptType::is_correction);
    let Some(raw) = raw else {
        if is_correction {
            errors.add(
                "correction",
                "is required for a correction: {\"kind\": \"self\"|\"ordered\", \"base_date\": \"YYYY-MM-DD\", \"base_number\": …}",
            );
            return Err(());
        }
        return Ok(None);
    };
    if kind.is_some() && !is_correction {
        errors.add("correction", "is only for the correction types (sale_correction, …)");
        return Err(());
    }
    let Some(c) = as_object(raw) else {
        errors.add("correction", "must be an object");
        return Err(());
    };
    let kind = match listed(
        &c,
        "kind",
        "correction.kind",
        CorrectionKind::parse,
        CorrectionKind::names,
        errors,
    ) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            errors.add("correction.kind", "is required: self or ordered");
            None
        }
        Err(()) => None,
    };
    let base_date = match present(&c, "base_date") {
        Some(raw) => date(raw, "correction.base_date", errors),
        None => {
            errors.add(
                "correction.base_date",
                "is required: the date of the settlement being corrected",
            );
            None
        }
    };
    let base_number = match present(&c, "base_number") {
        Some(raw) => text(raw, "correction.base_number", 32, &[], errors)
            .map(Some)
            .ok_or(())?,
        None => None,
    };
    if kind == Some(CorrectionKind::Ordered) && base_number.is_none() {
        errors.add(
            "correction.base_number",
            "is required for a correction ordered by the tax authority (the order's number)",
        );
        return Err(());
    }
    match (kind, base_date) {
        (Some(kind), Some(base_date)) => Ok(Some(Correction {
            kind,
            base_date,
            base_number,
        })),
        _ => Err(()),
    }
}
