//! The slip, as the paper one reads (the mock register writes it as a text file; the window shows
//! it): the seller's header, the type, each item with its quantity and unit, price, discount, VAT
//! rate and amount, payment method and object, the total, VAT per rate, the payment forms and
//! change, the taxation system, cashier and customer, the correction's basis, and the register's
//! attributes — shift, receipt and document numbers, FN, FP, the time and the QR data.

use super::FiscalDoc;
use crate::money::Kopecks;
use crate::receipt::{Receipt, Vat};
use crate::time::Zone;
use chrono::DateTime;
use std::fmt::Write as _;

/// The slip's header, from the settings (`[fiscal]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seller {
    pub name: String,
    pub inn: String,
    pub address: String,
    /// Where the settlement happens (tag 1187), e.g. the shop's name or its web address.
    pub place: String,
}

const WIDTH: usize = 42;

/// `left ............ right` over the slip's width.
fn line(out: &mut String, left: &str, right: &str) {
    let used = left.chars().count() + right.chars().count();
    let pad = WIDTH.saturating_sub(used).max(1);
    let _ = writeln!(out, "{left}{}{right}", " ".repeat(pad));
}

fn rule(out: &mut String) {
    let _ = writeln!(out, "{}", "-".repeat(WIDTH));
}

/// The slip of one receipt.
pub fn text(seller: &Seller, zone: &Zone, receipt_id: &str, receipt: &Receipt, doc: &FiscalDoc) -> String {
    let mut s = String::new();
    for h in [&seller.name, &seller.address, &seller.place] {
        if !h.is_empty() {
            let _ = writeln!(s, "{h}");
        }
    }
    if !seller.inn.is_empty() {
        let _ = writeln!(s, "ИНН {}", seller.inn);
    }
    let _ = writeln!(s, "{}", receipt.kind.label_ru());
    line(
        &mut s,
        &format!("Касса {}", receipt.pos_id),
        &format!("Смена {}  Чек {}", doc.shift_number, doc.receipt_number),
    );
    rule(&mut s);
    for (n, item) in receipt.items.iter().enumerate() {
        let _ = writeln!(s, "{}. {}", n + 1, item.name);
        line(
            &mut s,
            &format!(
                "  {} {} x {}",
                item.quantity.to_decimal_string(),
                item.measure.label_ru(),
                item.price
            ),
            &format!("={}", Kopecks(item.total.0 + item.discount.0)),
        );
        if item.discount.0 > 0 {
            line(&mut s, "  СКИДКА", &format!("-{}", item.discount));
            line(&mut s, "  ИТОГО ПО ПОЗИЦИИ", &format!("={}", item.total));
        }
        let vat = match item.vat {
            Vat::None | Vat::Vat0 => item.vat.label_ru().to_string(),
            v => format!("{} = {}", v.label_ru(), item.vat_amount),
        };
        let _ = writeln!(s, "  {vat}");
        let _ = writeln!(
            s,
            "  {} · {}",
            item.payment_method.label_ru(),
            item.payment_object.label_ru()
        );
        if let Some(code) = &item.marking_code {
            let printable: String = code.chars().filter(|c| !c.is_control()).take(32).collect();
            // [М+]: the code checked and its status confirmed (2106 bits 1 and 3), [М-]: the
            // check said otherwise, [М]: not checked (the printed forms of 2106).
            let fn_check = item.marking.as_ref().and_then(|m| m.tag_2106);
            let sign = match fn_check.map(|tag_2106| super::marks::FnCheck { tag_2106 }) {
                Some(f) if f.bit(1) && f.bit(3) => "[М+]",
                Some(f) if f.bit(0) => "[М-]",
                _ => "[М]",
            };
            let _ = writeln!(s, "  {sign} {printable}");
            if let Some(m) = &item.marking {
                let how = match (m.verdict.as_str(), m.req_id.is_some()) {
                    ("allowed", true) => "продажа разрешена (разрешительный режим)",
                    ("allowed", false) => "продажа разрешена",
                    _ => "не проверен: сервисы ЧЗ не ответили",
                };
                let _ = writeln!(s, "  КМ: {how}");
            }
        }
    }
    rule(&mut s);
    line(&mut s, "ИТОГ", &format!("={}", receipt.total));
    for v in receipt.vat_sums() {
        match v.vat {
            Vat::None => line(&mut s, "СУММА БЕЗ НДС", &format!("={}", total_at(receipt, v.vat))),
            Vat::Vat0 => line(&mut s, "СУММА С НДС 0%", &format!("={}", total_at(receipt, v.vat))),
            other => line(
                &mut s,
                &format!("СУММА {}", other.label_ru()),
                &format!("={}", v.amount),
            ),
        }
    }
    for p in &receipt.payments {
        line(&mut s, p.kind.label_ru(), &format!("={}", p.amount));
    }
    if receipt.change.0 > 0 {
        line(&mut s, "СДАЧА", &format!("={}", receipt.change));
    }
    rule(&mut s);
    line(&mut s, "СНО", receipt.taxation.label_ru());
    if let Some(c) = &receipt.correction {
        line(&mut s, "ТИП КОРРЕКЦИИ", c.kind.label_ru());
        line(&mut s, "ДАТА РАСЧЕТА", &c.base_date.format("%d.%m.%Y").to_string());
        if let Some(n) = &c.base_number {
            line(&mut s, "ПРЕДПИСАНИЕ №", n);
        }
    }
    if let Some(c) = &receipt.cashier {
        line(&mut s, "КАССИР", &c.name);
        if let Some(inn) = &c.inn {
            line(&mut s, "ИНН КАССИРА", inn);
        }
    }
    if let Some(c) = &receipt.customer {
        line(&mut s, "ПОКУПАТЕЛЬ", c.contact());
    }
    if receipt.electronic {
        let _ = writeln!(s, "ЭЛЕКТРОННЫЙ ЧЕК: не напечатан, отправлен покупателю");
    }
    let when = DateTime::parse_from_rfc3339(&doc.fiscal_datetime)
        .map(|t| zone.local(t.to_utc()).format("%d.%m.%Y %H:%M").to_string())
        .unwrap_or_else(|_| doc.fiscal_datetime.clone());
    line(&mut s, "ДАТА", &when);
    line(&mut s, "РН ККТ", &doc.kkt_number);
    line(&mut s, "ФН", &doc.fn_number);
    line(&mut s, "ФД", &doc.fiscal_doc_number.to_string());
    line(&mut s, "ФП", &doc.fiscal_sign);
    let _ = writeln!(s, "QR: {}", doc.qr_code_data);
    let _ = writeln!(s, "id {receipt_id}");
    s
}

/// The cost of the items at one rate (the slip prints the sums "without VAT" and "at 0 %").
fn total_at(receipt: &Receipt, vat: Vat) -> Kopecks {
    Kopecks(receipt.items.iter().filter(|i| i.vat == vat).map(|i| i.total.0).sum())
}
