//! One payment: its form and amount.

use super::Errors;
use super::fields::*;
use crate::receipt::*;
use serde_json::value::RawValue;

pub(super) fn payment(raw: &RawValue, i: usize, errors: &mut Errors) -> Option<Payment> {
    let path = |f: &str| format!("payments[{i}].{f}");
    let Some(obj) = as_object(raw) else {
        errors.add(format!("payments[{i}]"), "must be an object");
        return None;
    };
    let kind = match listed(
        &obj,
        "type",
        &path("type"),
        PaymentType::parse,
        PaymentType::names,
        errors,
    ) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            errors.add(path("type"), "is required");
            None
        }
        Err(()) => None,
    };
    let amount = amount(present(&obj, "amount"), &path("amount"), errors);
    Some(Payment {
        kind: kind?,
        amount: amount?,
    })
}
