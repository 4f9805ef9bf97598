use super::*;
use crate::kkt::OperationSum;
use crate::kkt::slip::{self, Seller};
use crate::receipt::Defaults;
use crate::receipt::PaymentType;
use chrono::{Duration as Span, TimeZone, Utc};

fn task_at(id: &str, body: &str, at: chrono::DateTime<Utc>) -> Task {
    Task::new(
        id.into(),
        crate::receipt::parse(body.as_bytes(), &Defaults::default()).unwrap(),
        at,
    )
}

fn sale(id: &str, at: chrono::DateTime<Utc>) -> Task {
    task_at(
        id,
        r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#,
        at,
    )
}

fn one(k: &MockKkt, t: Task) -> FiscalDoc {
    k.fiscalize(&[t]).remove(0).unwrap().doc
}

fn not_taken(k: &MockKkt, t: Task) -> NotTaken {
    match k.fiscalize(&[t]).remove(0) {
        Err(DeviceError::NotTaken { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn at(h: u32, m: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
}

#[test]
fn the_first_receipt_opens_a_shift_and_numbers_go_on_from_the_seed() {
    let k = MockKkt::open(MockKktConfig {
        seed: KktCounters {
            last_fiscal_doc_number: 16,
            shift_number: 1,
            ..KktCounters::default()
        },
        ..MockKktConfig::for_tests()
    })
    .unwrap();
    let a = one(&k, sale("a", at(10, 15)));
    let b = one(&k, sale("b", at(10, 16)));
    // Document 17 opened shift 2; the receipts are 18 and 19.
    assert_eq!((a.fiscal_doc_number, b.fiscal_doc_number), (18, 19));
    assert_eq!((a.shift_number, a.receipt_number, b.receipt_number), (2, 1, 2));
    assert!(
        a.fiscal_sign.len() <= 10 && a.fiscal_sign.bytes().all(|c| c.is_ascii_digit()),
        "{}",
        a.fiscal_sign
    );
    assert_ne!(a.fiscal_sign, b.fiscal_sign);
    assert_eq!(
        a.qr_code_data,
        format!(
            "t=20261128T1015&s=100.00&fn=9999999999999999&i=18&fp={}&n=1",
            a.fiscal_sign
        )
    );
}

#[test]
fn the_qr_code_carries_the_registers_local_time_and_the_operation() {
    let k = MockKkt::open(MockKktConfig {
        zone: crate::time::Zone::parse("Asia/Yekaterinburg").unwrap(),
        ..MockKktConfig::for_tests()
    })
    .unwrap();
    let buy_refund = task_at(
        "r",
        r#"{"pos_id":"P","type":"buy_refund","items":[{"name":"A","price":5,"qty":1}],"payments":[{"type":"card","amount":5}]}"#,
        at(21, 5),
    );
    let doc = one(&k, buy_refund);
    assert!(
        doc.qr_code_data.starts_with("t=20261129T0205&s=5.00&"),
        "{}",
        doc.qr_code_data
    );
    assert!(doc.qr_code_data.ends_with("&n=4"), "{}", doc.qr_code_data);
}

#[test]
fn a_task_is_registered_once_and_looked_up_by_its_id() {
    let k = MockKkt::open(MockKktConfig::for_tests()).unwrap();
    assert_eq!(
        k.lookup(&sale("t1", at(10, 0))).unwrap(),
        None,
        "never sent: safe to send"
    );
    let first = one(&k, sale("t1", at(10, 0)));
    let again = one(&k, sale("t1", at(10, 1)));
    assert_eq!(first, again, "the same task id never makes a second document");
    assert_eq!(k.lookup(&sale("t1", at(10, 0))).unwrap().unwrap().doc, first);
    assert_eq!(
        k.counters().unwrap().last_fiscal_doc_number,
        2,
        "shift opening + one receipt"
    );
}

#[test]
fn an_expired_shift_is_closed_and_the_next_opened_before_a_receipt() {
    let k = MockKkt::open(MockKktConfig::for_tests()).unwrap();
    let a = one(&k, sale("a", at(10, 0)));
    assert_eq!(k.shift(at(11, 0)).unwrap().state, ShiftState::Open);
    assert_eq!(k.shift(at(10, 0) + Span::hours(24)).unwrap().state, ShiftState::Expired);
    let b = one(&k, sale("b", at(10, 0) + Span::hours(25)));
    // 1 open, 2 receipt a, 3 Z-report, 4 open, 5 receipt b.
    assert_eq!((a.fiscal_doc_number, b.fiscal_doc_number), (2, 5));
    assert_eq!((b.shift_number, b.receipt_number), (2, 1));
}

#[test]
fn without_auto_shift_an_expired_shift_refuses_receipts_until_it_is_closed() {
    let k = MockKkt::open(MockKktConfig {
        auto_shift: false,
        ..MockKktConfig::for_tests()
    })
    .unwrap();
    one(&k, sale("a", at(10, 0)));
    let late = at(10, 0) + Span::hours(24) + Span::minutes(1);
    assert_eq!(not_taken(&k, sale("b", late)), NotTaken::ShiftExpired);
    let z = k.close_shift(late).unwrap();
    assert_eq!((z.shift_number, z.receipts, z.fiscal_doc_number), (1, 1, 3));
    assert_eq!(k.shift(late).unwrap().state, ShiftState::Closed);
    assert!(matches!(
        k.close_shift(late),
        Err(DeviceError::NotTaken {
            reason: NotTaken::NoOpenShift,
            ..
        })
    ));
    assert_eq!(one(&k, sale("b", late)).fiscal_doc_number, 5, "4 opened shift 2");
}

#[test]
fn the_z_report_sums_each_operation_payment_form_and_vat_rate() {
    let k = MockKkt::open(MockKktConfig::for_tests()).unwrap();
    let body = |kind: &str, pay: &str| {
        format!(
            r#"{{"pos_id":"P","type":"{kind}","items":[{{"name":"A","price":122,"qty":1,"vat":"vat22"}},{{"name":"B","price":11,"qty":1,"vat":"vat10"}}],"payments":[{pay}]}}"#
        )
    };
    one(
        &k,
        task_at("1", &body("sale", r#"{"type":"cash","amount":200}"#), at(9, 0)),
    );
    one(
        &k,
        task_at("2", &body("sale", r#"{"type":"card","amount":133}"#), at(9, 1)),
    );
    one(
        &k,
        task_at("3", &body("sale_refund", r#"{"type":"card","amount":133}"#), at(9, 2)),
    );
    let z = k.close_shift(at(20, 0)).unwrap();
    assert_eq!(z.receipts, 3);
    let sale = z
        .operations
        .iter()
        .find(|o| o.kind == crate::receipt::ReceiptType::Sale)
        .unwrap();
    assert_eq!((sale.count, sale.total), (2, Kopecks(26600)));
    let paid = |o: &OperationSum, kind| o.payments.iter().find(|p| p.kind == kind).map(|p| p.amount);
    assert_eq!(
        paid(sale, PaymentType::Cash),
        Some(Kopecks(13300)),
        "cash net of the 67.00 change"
    );
    assert_eq!(paid(sale, PaymentType::Card), Some(Kopecks(13300)));
    let vat22 = sale.vat.iter().find(|v| v.vat == crate::receipt::Vat::Vat22).unwrap();
    assert_eq!(vat22.amount, Kopecks(4400), "2 × 22.00");
    let refund = z
        .operations
        .iter()
        .find(|o| o.kind == crate::receipt::ReceiptType::SaleRefund)
        .unwrap();
    assert_eq!(
        (refund.count, paid(refund, PaymentType::Card)),
        (1, Some(Kopecks(13300)))
    );
}

#[test]
fn after_thirty_days_without_the_ofds_confirmation_the_fn_blocks_until_confirmed() {
    let k = MockKkt::open(MockKktConfig::for_tests()).unwrap();
    let first = one(&k, sale("a", at(10, 0)));
    let day29 = at(10, 0) + Span::days(29);
    one(&k, sale("b", day29));
    let day30 = at(10, 0) + Span::days(30);
    let before = k.counters().unwrap().last_fiscal_doc_number;
    assert_eq!(not_taken(&k, sale("c", day30)), NotTaken::FnBlocked);
    // Nothing was numbered for the refused receipt.
    assert_eq!(k.counters().unwrap().last_fiscal_doc_number, before);
    k.ofd_confirmed(&[(first.fn_number.clone(), first.fiscal_doc_number)]);
    let c = one(&k, sale("c", day30));
    assert_eq!(
        c.fiscal_doc_number,
        before + 1 + 2,
        "the expired shift closed, a new one opened, then the receipt"
    );
}

#[test]
fn the_memory_survives_a_restart_and_a_new_fn_starts_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = MockKktConfig {
        state_path: Some(dir.path().join("mock-kkt.db")),
        ..MockKktConfig::for_tests()
    };
    let k = MockKkt::open(cfg.clone()).unwrap();
    one(&k, sale("a", at(10, 0)));
    drop(k);
    let k = MockKkt::open(MockKktConfig {
        seed: KktCounters {
            last_fiscal_doc_number: 500,
            ..KktCounters::default()
        },
        ..cfg.clone()
    })
    .unwrap();
    assert_eq!(
        one(&k, sale("b", at(10, 5))).fiscal_doc_number,
        3,
        "the seed only starts an empty memory"
    );
    assert!(k.lookup(&sale("a", at(10, 0))).unwrap().is_some());
    drop(k);
    let replaced = MockKkt::open(MockKktConfig {
        fn_number: "9999000000000002".into(),
        ..cfg
    })
    .unwrap();
    let c = one(&replaced, sale("c", at(10, 10)));
    assert_eq!(
        (c.fn_number.as_str(), c.fiscal_doc_number, c.shift_number),
        ("9999000000000002", 2, 1)
    );
}

#[test]
fn printing_writes_a_readable_slip() {
    let dir = tempfile::tempdir().unwrap();
    let k = MockKkt::open(MockKktConfig {
        slip_dir: Some(dir.path().to_path_buf()),
        ..MockKktConfig::for_tests()
    })
    .unwrap();
    let r = k.fiscalize(&[sale("abc", at(10, 15))]).remove(0).unwrap();
    assert_eq!(r.print_error, None);
    let second = k.fiscalize(&[sale("def", at(10, 16))]).remove(0).unwrap();
    // The day's roll: both slips, in order, a cut line after each.
    let roll = std::fs::read_to_string(dir.path().join("2026-11-28.txt")).unwrap();
    let slips: Vec<&str> = roll
        .split(super::CUT)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(slips.len(), 2, "{roll}");
    assert!(slips[0].contains("ИТОГ") && slips[0].contains("=100.00"), "{roll}");
    assert!(slips[0].contains(&r.doc.fiscal_sign));
    assert!(slips[1].contains(&second.doc.fiscal_sign));
    // Another day starts another roll.
    k.fiscalize(&[sale("ghi", at(10, 15) + Span::days(1))])
        .remove(0)
        .unwrap();
    assert!(dir.path().join("2026-11-29.txt").exists());
}

#[test]
fn a_slip_that_cannot_be_written_is_a_print_error_on_a_fiscal_document() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let k = MockKkt::open(MockKktConfig {
        slip_dir: Some(file),
        ..MockKktConfig::for_tests()
    })
    .unwrap();
    let r = k.fiscalize(&[sale("abc", at(10, 15))]).remove(0).unwrap();
    assert!(r.print_error.unwrap().contains("printer error"));
    assert_eq!(r.doc.fiscal_doc_number, 2);
}

/// Compares `text` with the golden file `name` (writes it with `UPDATE_GOLDEN=1`).
fn golden(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/kkt/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        text, expected,
        "{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it)"
    );
}

fn golden_register() -> MockKkt {
    MockKkt::open(MockKktConfig {
        zone: crate::time::Zone::parse("Europe/Moscow").unwrap(),
        seller: Seller {
            name: "ООО «Ромашка»".into(),
            inn: "7701234567".into(),
            address: "г. Москва, ул. Тверская, д. 1".into(),
            place: "Магазин у дома".into(),
        },
        ..MockKktConfig::for_tests()
    })
    .unwrap()
}

#[test]
fn a_sale_slip_and_its_qr_code_read_as_the_golden_ones() {
    let k = golden_register();
    let body = r#"{"pos_id":"POS-7","type":"sale","taxation":"usn_income","cashier":{"name":"Иванова А. П.","inn":"500100732259"},
        "customer":{"email":"buyer@example.ru"},
        "items":[{"name":"Молоко 3,2% 1 л","price":95.50,"qty":2,"total":180.00,"vat":"vat10","measure":"piece"},
                 {"name":"Сыр российский","price":899.90,"quantity":0.352,"measure":"kilogram","vat":"vat22"},
                 {"name":"Сигареты","price":210,"qty":1,"vat":"vat22","marking_code":"0104600266011725212345678901234\u001d8005112000"},
                 {"name":"Доставка","price":150,"qty":1,"vat":"none","payment_object":"service","payment_method":"full_prepayment"}],
        "payments":[{"type":"card","amount":500},{"type":"cash","amount":500}]}"#;
    let t = task_at("6f1c2a8e-0000-4000-8000-000000000001", body, at(9, 41));
    let doc = one(&k, t.clone());
    golden("sale.qr.txt", &format!("{}\n", doc.qr_code_data));
    golden(
        "sale.slip.txt",
        &slip::text(&k.config.seller, &k.config.zone, &t.id, &t.receipt, &doc),
    );
}

#[test]
fn a_correction_slip_reads_as_the_golden_one() {
    let k = golden_register();
    let body = r#"{"pos_id":"POS-7","type":"sale_refund_correction","correction":{"kind":"ordered","base_date":"2025-12-15","base_number":"ПР-0042/25"},
        "items":[{"name":"Чайник","price":2400,"qty":1,"vat":"vat20_120"}],
        "payments":[{"type":"card","amount":2400}]}"#;
    let t = task_at("6f1c2a8e-0000-4000-8000-000000000002", body, at(12, 0));
    let doc = one(&k, t.clone());
    golden("correction.qr.txt", &format!("{}\n", doc.qr_code_data));
    golden(
        "correction.slip.txt",
        &slip::text(&k.config.seller, &k.config.zone, &t.id, &t.receipt, &doc),
    );
}
