//! One item (tag 1059): name, price, quantity, total and discount, measure, payment method and
//! object, marking code, VAT (the 2026 rate rule included).

use super::Errors;
use super::fields::*;
use crate::receipt::*;
use serde_json::value::RawValue;

/// The older numeric (or `"none"`, `"vat22"`…) `vat_rate` of the original adapter.
pub(super) fn legacy_vat(raw: &RawValue) -> Option<Vat> {
    if let Some(s) = as_string(raw) {
        let s = s.trim().to_ascii_lowercase();
        if let Some(v) = Vat::parse(&s) {
            return Some(v);
        }
        return s.parse::<u8>().ok().and_then(Vat::from_percent);
    }
    crate::money::parse_scaled(raw.get(), 0)
        .ok()
        .and_then(|p| u8::try_from(p).ok())
        .and_then(Vat::from_percent)
}

/// Whether 20 % VAT may be used: only for a refund or correction of a settlement made before
/// 2026-01-01 (its `base_date`).
#[derive(Clone, Copy)]
pub(super) struct TwentyAllowed(pub(super) bool);

pub(super) const TWENTY_REPLACED: &str = "22 % replaced 20 % on 2026-01-01: use vat22 (or vat22_122). vat20 and vat20_120 \
are accepted only on refunds and corrections of settlements made before 2026-01-01, with that date as base_date";

pub(super) fn item(
    raw: &RawValue,
    i: usize,
    defaults: &Defaults,
    twenty: TwentyAllowed,
    errors: &mut Errors,
) -> Option<Item> {
    let path = |f: &str| format!("items[{i}].{f}");
    let Some(obj) = as_object(raw) else {
        errors.add(format!("items[{i}]"), "must be an object");
        return None;
    };
    let name = string_field(&obj, "name", &path("name"), MAX_NAME, errors);
    let price = amount(present(&obj, "price"), &path("price"), errors);
    let (qty_key, qty_raw) = match (present(&obj, "quantity"), present(&obj, "qty")) {
        (Some(q), _) => ("quantity", Some(q)),
        (None, Some(q)) => ("qty", Some(q)),
        (None, None) => ("quantity", None),
    };
    let quantity = positive(qty_raw, &path(qty_key), Quantity::parse, |q| q.0 > 0, errors);
    let measure = listed(
        &obj,
        "measure",
        &path("measure"),
        Measure::parse,
        Measure::names,
        errors,
    );
    let method = listed(
        &obj,
        "payment_method",
        &path("payment_method"),
        PaymentMethod::parse,
        PaymentMethod::names,
        errors,
    );
    let object = listed(
        &obj,
        "payment_object",
        &path("payment_object"),
        PaymentObject::parse,
        PaymentObject::names,
        errors,
    );
    let marking_code = present(&obj, "marking_code").and_then(|raw| {
        // As scanned: GS (U+001D) separates the code's groups and stays.
        text(raw, &path("marking_code"), 223, &['\u{1d}'], errors)
    });
    let marking_check_id =
        present(&obj, "marking_check_id").and_then(|raw| text(raw, &path("marking_check_id"), 64, &[], errors));
    let payment_object = match (object, &marking_code) {
        (Ok(Some(o)), Some(_)) if !o.needs_marking_code() => {
            errors.add(
                path("payment_object"),
                format!(
                    "is {} but the item has a marking code: goods sold with their code are commodity_marked or excise_marked",
                    o.as_str()
                ),
            );
            None
        }
        (Ok(Some(o)), None) if o.needs_marking_code() => {
            errors.add(path("marking_code"), format!("is required for {} goods", o.as_str()));
            None
        }
        (Ok(Some(o)), _) => Some(o),
        // A marking code says what the goods are.
        (Ok(None), Some(_)) => Some(PaymentObject::CommodityMarked),
        (Ok(None), None) => Some(PaymentObject::Commodity),
        (Err(()), _) => None,
    };
    let vat = match (present(&obj, "vat"), present(&obj, "vat_rate")) {
        (Some(raw), _) => match as_string(raw).as_deref().and_then(Vat::parse) {
            Some(v) => Some(v),
            None => {
                errors.add(path("vat"), format!("must be one of {}", Vat::names()));
                None
            }
        },
        (None, Some(raw)) => match legacy_vat(raw) {
            Some(v) => Some(v),
            None => {
                errors.add(
                    path("vat_rate"),
                    "must be one of 0, 5, 7, 10, 22 or \"none\" (or use vat)",
                );
                None
            }
        },
        (None, None) => Some(defaults.vat),
    };
    let vat = match vat {
        Some(v) if v.is_twenty() && !twenty.0 => {
            let key = if present(&obj, "vat").is_some() {
                "vat"
            } else {
                "vat_rate"
            };
            errors.add(path(key), TWENTY_REPLACED);
            None
        }
        other => other,
    };
    let computed = match (price, quantity) {
        (Some(p), Some(q)) => match p
            .times_quantity(q)
            .and_then(|t| within_limit(t, &path("total"), errors))
        {
            Some(t) => Some(t),
            None => {
                if p.times_quantity(q).is_none() {
                    errors.add(path("total"), "is too large");
                }
                None
            }
        },
        _ => None,
    };
    let total = match present(&obj, "total") {
        None => computed,
        Some(raw) => match Kopecks::parse(raw.get()) {
            Err(e) => {
                errors.add(path("total"), e.to_string());
                None
            }
            Ok(given) if given.0 < 0 => {
                errors.add(path("total"), "must not be negative");
                None
            }
            Ok(given) => match computed {
                // A total up to a kopeck over price × quantity is rounding (the original rule);
                // one under it is a discount.
                Some(c) if given.0 <= c.0 + 1 => Some(given),
                Some(c) => {
                    errors.add(
                        path("total"),
                        format!("must not exceed price × quantity = {c} (less is a discount), got {given}"),
                    );
                    None
                }
                None => None,
            },
        },
    };
    let (name, price, quantity, total, payment_object, vat) = (name?, price?, quantity?, total?, payment_object?, vat?);
    let full = computed.unwrap_or(total);
    Some(Item {
        name,
        price,
        quantity,
        total,
        discount: Kopecks((full.0 - total.0).max(0)),
        measure: measure.ok()?.unwrap_or(Measure::Piece),
        payment_method: method.ok()?.unwrap_or(PaymentMethod::FullPayment),
        payment_object,
        marking_code,
        marking_check_id,
        marking: None,
        vat,
        vat_amount: vat.amount(total),
    })
}
