//! Validation of a receipt request (docs/contract.md §1 and §6).
//!
//! The body is read field by field from its raw JSON text so that every problem is reported
//! against the field that has it (`items[0].price`), wrong types included, in words a POS
//! developer can act on, and so that money is parsed exactly from the text. The seed's body
//! (`qty`, no `total`) and the original adapter's body (`quantity`, `total`, numeric `vat_rate`)
//! are accepted; FFD 1.2 fields are optional and take their defaults.
//!
//! Its parts: reading fields from the raw text ([`fields`]), an item ([`item`]), a payment
//! ([`payment`]), the cashier and the customer ([`people`]), a correction's basis
//! ([`correction`]); the whole receipt, its sums and cross-checks here.

mod correction;
pub mod counter;
mod fields;
mod item;
mod payment;
mod people;
#[cfg(test)]
mod tests;

use super::*;
use correction::correction;
use fields::*;
use item::{TwentyAllowed, item};
use payment::payment;
use people::{cashier, customer};
use serde::Serialize;
use serde_json::value::RawValue;

/// One problem with one field of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why a request body is not a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not JSON at all (or not an object).
    Malformed(String),
    /// JSON, but fields break the rules.
    Fields(Vec<FieldError>),
}

pub(super) struct Errors(pub(super) Vec<FieldError>);

impl Errors {
    pub(super) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        // A hostile body with thousands of bad fields gets a bounded answer.
        if self.0.len() < 100 {
            self.0.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
    }
}

/// Parses and validates a request body into a [`Receipt`], filling in `defaults`.
pub fn parse(body: &[u8], defaults: &Defaults) -> Result<Receipt, Invalid> {
    let text = std::str::from_utf8(body).map_err(|_| Invalid::Malformed("body is not UTF-8".into()))?;
    let value: &RawValue =
        serde_json::from_str(text).map_err(|e| Invalid::Malformed(format!("body is not valid JSON: {e}")))?;
    let Some(obj) = as_object(value) else {
        return Err(Invalid::Malformed("body must be a JSON object".into()));
    };
    let mut errors = Errors(Vec::new());
    let pos_id = string_field(&obj, "pos_id", "pos_id", MAX_POS_ID, &mut errors);
    let kind = match listed(
        &obj,
        "type",
        "type",
        ReceiptType::parse,
        ReceiptType::names,
        &mut errors,
    ) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            errors.add("type", "is required");
            None
        }
        Err(()) => None,
    };
    let taxation = match present(&obj, "taxation") {
        Some(raw) if as_string(raw).as_deref() == Some("envd") => {
            errors.add(
                "taxation",
                "envd (ЕНВД) was abolished on 2021-01-01; use osn, usn_income, usn_income_outcome, esn or patent",
            );
            None
        }
        _ => listed(
            &obj,
            "taxation",
            "taxation",
            Taxation::parse,
            Taxation::names,
            &mut errors,
        )
        .ok()
        .map(|t| t.unwrap_or(defaults.taxation)),
    };
    let cashier = cashier(&obj, &mut errors).map(|c| c.or_else(|| defaults.cashier.clone()));
    let customer = customer(&obj, &mut errors);
    let electronic = match present(&obj, "electronic").map(|raw| raw.get().trim()) {
        None | Some("false") => false,
        Some("true") => {
            if matches!(customer, Ok(None)) {
                errors.add(
                    "electronic",
                    "an electronic receipt is sent to the customer and not printed: it needs customer.email or customer.phone",
                );
            }
            true
        }
        Some(_) => {
            errors.add("electronic", "must be true or false");
            false
        }
    };
    let correction = correction(&obj, kind, &mut errors);
    let base_date = match present(&obj, "base_date") {
        None => Ok(None),
        Some(_) if !kind.is_some_and(ReceiptType::is_refund) => {
            errors.add("base_date", "is only for refunds (the date of the sale being refunded); a correction gives it in correction.base_date");
            Err(())
        }
        Some(raw) => date(raw, "base_date", &mut errors).map(Some).ok_or(()),
    };
    let settled = match (&correction, &base_date) {
        (Ok(Some(c)), _) => Some(c.base_date),
        (_, Ok(Some(d))) => Some(*d),
        _ => None,
    };
    let twenty = TwentyAllowed(settled.is_some_and(|d| d < vat22_since()));
    let items: Vec<Option<Item>> = array(&obj, "items", MAX_ITEMS, &mut errors)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, raw)| item(raw, i, defaults, twenty, &mut errors))
        .collect();
    let payments: Vec<Option<Payment>> = array(&obj, "payments", MAX_PAYMENTS, &mut errors)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, raw)| payment(raw, i, &mut errors))
        .collect();

    if !errors.0.is_empty() {
        return Err(Invalid::Fields(errors.0));
    }
    // No errors recorded means every field above is present.
    let items: Vec<Item> = items.into_iter().flatten().collect();
    let payments: Vec<Payment> = payments.into_iter().flatten().collect();
    let total = Kopecks(items.iter().map(|i| i.total.0).sum());
    if within_limit(total, "items", &mut errors).is_none() {
        return Err(Invalid::Fields(errors.0));
    }
    let paid: i64 = payments.iter().map(|p| p.amount.0).sum();
    let non_cash: i64 = payments
        .iter()
        .filter(|p| p.kind != PaymentType::Cash)
        .map(|p| p.amount.0)
        .sum();
    if non_cash > total.0 {
        errors.add(
            "payments",
            format!(
                "non-cash payments {} exceed the receipt total {total}: only cash may be more than what is due (the rest is change)",
                Kopecks(non_cash)
            ),
        );
    } else if paid < total.0 {
        errors.add(
            "payments",
            format!("payments {} are less than the receipt total {total}", Kopecks(paid)),
        );
    }
    if !errors.0.is_empty() {
        return Err(Invalid::Fields(errors.0));
    }
    match (pos_id, kind, taxation, cashier, customer, correction, base_date) {
        (Some(pos_id), Some(kind), Some(taxation), Ok(cashier), Ok(customer), Ok(correction), Ok(base_date)) => {
            Ok(Receipt {
                pos_id,
                kind,
                taxation,
                cashier,
                customer,
                electronic,
                correction,
                base_date,
                items,
                payments,
                total,
                change: Kopecks(paid - total.0),
            })
        }
        _ => Err(Invalid::Malformed("incomplete receipt".into())),
    }
}
