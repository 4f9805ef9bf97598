//! The fiscal register (KKT) driver: `trait Kkt` and the mock driver used until real drivers land.
//!
//! Fiscalisation is split in two so that numbering is atomic with the buffer row while printing
//! happens only after the row is durable:
//! 1. [`Kkt::fiscalize`] assigns the fiscal attributes from a [`KktCounters`] value that the buffer
//!    loads and saves inside the same SQLite transaction as the receipt row;
//! 2. [`Kkt::print`] prints the stored document (the mock writes a text slip); a failure here
//!    leaves the receipt stored and is reported as `"status":"buffered"`.

use crate::money::Kopecks;
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// The fiscal drive's counters; persisted by the buffer (table `kkt_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KktCounters {
    /// The last fiscal document number issued; the next one is this + 1 (gap-free, never reset).
    pub last_fiscal_doc_number: i64,
    pub shift_number: i64,
    /// Unix milliseconds when the current shift was opened.
    pub shift_opened_at_ms: i64,
    pub receipts_in_shift: i64,
}

/// The fiscal attributes of one printed (or to-be-printed) receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiscalDoc {
    pub fiscal_doc_number: i64,
    pub fiscal_sign: String,
    pub fiscal_datetime: String,
    pub fn_number: String,
    pub kkt_number: String,
    pub shift_number: i64,
    pub receipt_number: i64,
    /// Receipt total, serialised as a two-decimal number.
    pub total: Kopecks,
    pub qr_code_data: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("printer error: {0}")]
    Printer(String),
}

/// A fiscal register driver. `fiscalize` runs on the buffer's writer thread inside its
/// transaction, `print` on the printer thread; never on the async runtime.
pub trait Kkt: Send + Sync {
    /// Assigns the next fiscal attributes for `receipt`, advancing `counters`.
    fn fiscalize(&self, counters: &mut KktCounters, receipt: &Receipt, now: DateTime<Utc>) -> FiscalDoc;
    /// Prints the document. May block (a real printer is slow); it runs on the writer thread.
    fn print(&self, receipt_id: &str, receipt: &Receipt, doc: &FiscalDoc) -> Result<(), Error>;
}

/// Settings of the mock driver.
#[derive(Debug, Clone)]
pub struct MockKktConfig {
    pub fn_number: String,
    pub kkt_number: String,
    /// Where slips are written (`<data dir>/receipts`); `None` prints nowhere.
    pub slip_dir: Option<PathBuf>,
    /// Simulated print time per receipt.
    pub print_latency: Duration,
    /// A shift is closed and the next opened after this long (54-FZ: at most 24 h).
    pub shift_length: Duration,
}

/// A software KKT: real numbering, a deterministic fiscal sign, a QR string and a text slip.
pub struct MockKkt {
    config: MockKktConfig,
}

impl MockKkt {
    pub fn new(config: MockKktConfig) -> Self {
        MockKkt { config }
    }
}

/// The 10-character fiscal sign: derived from the document's identity, so it is stable and unique.
fn fiscal_sign(fn_number: &str, number: i64, datetime: &str, total: Kopecks) -> String {
    let digest = Sha256::digest(format!("{fn_number}|{number}|{datetime}|{}", total.0));
    hex::encode_upper(&digest[..5])
}

impl Kkt for MockKkt {
    fn fiscalize(&self, c: &mut KktCounters, receipt: &Receipt, now: DateTime<Utc>) -> FiscalDoc {
        let now_ms = now.timestamp_millis();
        let shift_ms = self.config.shift_length.as_millis() as i64;
        if c.shift_number == 0 || now_ms - c.shift_opened_at_ms >= shift_ms {
            c.shift_number += 1;
            c.shift_opened_at_ms = now_ms;
            c.receipts_in_shift = 0;
        }
        c.last_fiscal_doc_number += 1;
        c.receipts_in_shift += 1;
        let number = c.last_fiscal_doc_number;
        let datetime = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let sign = fiscal_sign(&self.config.fn_number, number, &datetime, receipt.total);
        let qr = format!(
            "t={}&s={}&fn={}&i={}&fp={}&n={}",
            now.format("%Y%m%dT%H%M"),
            receipt.total,
            self.config.fn_number,
            number,
            sign,
            receipt.kind.qr_operation()
        );
        FiscalDoc {
            fiscal_doc_number: number,
            fiscal_sign: sign,
            fiscal_datetime: datetime,
            fn_number: self.config.fn_number.clone(),
            kkt_number: self.config.kkt_number.clone(),
            shift_number: c.shift_number,
            receipt_number: c.receipts_in_shift,
            total: receipt.total,
            qr_code_data: qr,
        }
    }

    fn print(&self, receipt_id: &str, receipt: &Receipt, doc: &FiscalDoc) -> Result<(), Error> {
        if !self.config.print_latency.is_zero() {
            std::thread::sleep(self.config.print_latency);
        }
        let Some(dir) = &self.config.slip_dir else {
            return Ok(());
        };
        let day = doc.fiscal_datetime.get(..10).unwrap_or("unknown");
        let dir = dir.join(day);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Printer(format!("slip folder: {e}")))?;
        let path = dir.join(format!("{:08}.txt", doc.fiscal_doc_number));
        std::fs::write(&path, slip_text(receipt_id, receipt, doc))
            .map_err(|e| Error::Printer(format!("slip {}: {e}", path.display())))
    }
}

/// A readable slip, like the paper one.
pub fn slip_text(receipt_id: &str, receipt: &Receipt, doc: &FiscalDoc) -> String {
    let title = match receipt.kind {
        crate::receipt::ReceiptType::Sale => "КАССОВЫЙ ЧЕК / ПРИХОД",
        crate::receipt::ReceiptType::Refund => "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА",
        crate::receipt::ReceiptType::Correction => "ЧЕК КОРРЕКЦИИ / ПРИХОД",
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
            crate::receipt::PaymentType::Cash => "НАЛИЧНЫМИ",
            crate::receipt::PaymentType::Card => "БЕЗНАЛИЧНЫМИ",
            crate::receipt::PaymentType::Other => "ИНОЕ",
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn kkt(dir: Option<PathBuf>) -> MockKkt {
        MockKkt::new(MockKktConfig {
            fn_number: "9999999999999999".into(),
            kkt_number: "0000000000001234".into(),
            slip_dir: dir,
            print_latency: Duration::ZERO,
            shift_length: Duration::from_secs(24 * 3600),
        })
    }

    fn receipt(kind: &str) -> Receipt {
        let body = format!(
            r#"{{"pos_id":"POS-001","type":"{kind}","items":[{{"name":"Test","price":100,"qty":1}}],"payments":[{{"type":"cash","amount":100}}]}}"#
        );
        crate::receipt::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn numbers_increase_by_one_from_the_saved_counters() {
        let k = kkt(None);
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 0).unwrap();
        let mut c = KktCounters {
            last_fiscal_doc_number: 16,
            shift_number: 1,
            shift_opened_at_ms: now.timestamp_millis(),
            receipts_in_shift: 16,
        };
        let a = k.fiscalize(&mut c, &receipt("sale"), now);
        let b = k.fiscalize(&mut c, &receipt("sale"), now);
        assert_eq!((a.fiscal_doc_number, b.fiscal_doc_number), (17, 18));
        assert_eq!((a.receipt_number, a.shift_number), (17, 1));
        assert_eq!(a.fiscal_sign.len(), 10);
        assert_ne!(a.fiscal_sign, b.fiscal_sign);
        assert_eq!(
            a.qr_code_data,
            format!(
                "t=20261128T1015&s=100.00&fn=9999999999999999&i=17&fp={}&n=1",
                a.fiscal_sign
            )
        );
    }

    #[test]
    fn a_refund_is_operation_two_and_a_new_shift_opens_after_a_day() {
        let k = kkt(None);
        let day1 = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
        let mut c = KktCounters::default();
        let a = k.fiscalize(&mut c, &receipt("refund"), day1);
        assert!(a.qr_code_data.ends_with("&n=2"));
        assert_eq!((a.shift_number, a.receipt_number), (1, 1));
        let b = k.fiscalize(&mut c, &receipt("sale"), day1 + chrono::Duration::hours(25));
        assert_eq!((b.shift_number, b.receipt_number, b.fiscal_doc_number), (2, 1, 2));
    }

    #[test]
    fn printing_writes_a_readable_slip() {
        let dir = tempfile::tempdir().unwrap();
        let k = kkt(Some(dir.path().to_path_buf()));
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 0).unwrap();
        let r = receipt("sale");
        let doc = k.fiscalize(&mut KktCounters::default(), &r, now);
        k.print("abc", &r, &doc).unwrap();
        let slip = std::fs::read_to_string(dir.path().join("2026-11-28/00000001.txt")).unwrap();
        assert!(slip.contains("ИТОГ 100.00"), "{slip}");
        assert!(slip.contains(&doc.fiscal_sign));
    }
}
