//! The readable slip, as the paper one looks (the mock driver writes it as a text file).

use super::FiscalDoc;
use crate::receipt::{PaymentType, Receipt, ReceiptType};
use std::fmt::Write as _;

/// The slip of one receipt.
pub fn text(receipt_id: &str, receipt: &Receipt, doc: &FiscalDoc) -> String {
    let title = match receipt.kind {
        ReceiptType::Sale => "КАССОВЫЙ ЧЕК / ПРИХОД",
        ReceiptType::Refund => "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА",
        ReceiptType::Correction => "ЧЕК КОРРЕКЦИИ / ПРИХОД",
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{title}\nКасса {}   Смена {}   Чек {}",
        receipt.pos_id, doc.shift_number, doc.receipt_number
    );
    let _ = writeln!(s, "----------------------------------------");
    for item in &receipt.items {
        let _ = writeln!(
            s,
            "{}\n  {} x {} = {}",
            item.name,
            item.quantity.to_decimal_string(),
            item.price,
            item.total
        );
    }
    let _ = writeln!(s, "----------------------------------------\nИТОГ {}", receipt.total);
    for p in &receipt.payments {
        let kind = match p.kind {
            PaymentType::Cash => "НАЛИЧНЫМИ",
            PaymentType::Card => "БЕЗНАЛИЧНЫМИ",
            PaymentType::Other => "ИНОЕ",
        };
        let _ = writeln!(s, "{kind} {}", p.amount);
    }
    let _ = writeln!(
        s,
        "ФН {}  РН ККТ {}\nФД {}  ФП {}\n{}\nQR: {}\nid {}",
        doc.fn_number,
        doc.kkt_number,
        doc.fiscal_doc_number,
        doc.fiscal_sign,
        doc.fiscal_datetime,
        doc.qr_code_data,
        receipt_id
    );
    s
}
