//! Validation: every rule, the original's and the seed's bodies, and proptest over money.
use super::*;
use proptest::prelude::*;

const SEED: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

fn ok(body: &str) -> Receipt {
    parse(body.as_bytes(), &Defaults::default()).unwrap_or_else(|e| panic!("{e:?} for {body}"))
}

fn fields(body: &str) -> Vec<String> {
    match parse(body.as_bytes(), &Defaults::default()) {
        Err(Invalid::Fields(f)) => f.into_iter().map(|e| e.field).collect(),
        other => panic!("expected field errors, got {other:?}"),
    }
}

fn message(body: &str) -> String {
    match parse(body.as_bytes(), &Defaults::default()) {
        Err(Invalid::Fields(f)) => f
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn the_seed_body_with_qty_and_no_total_is_accepted_with_every_default() {
    let r = ok(SEED);
    assert_eq!(r.total, Kopecks(10000));
    assert_eq!(r.items[0].quantity, Quantity(Quantity::ONE));
    assert_eq!(r.items[0].total, Kopecks(10000));
    let i = &r.items[0];
    assert_eq!(
        (i.measure, i.payment_method, i.payment_object, i.vat, i.vat_amount),
        (
            Measure::Piece,
            PaymentMethod::FullPayment,
            PaymentObject::Commodity,
            Vat::None,
            Kopecks(0)
        )
    );
    assert_eq!((r.taxation, r.change), (Taxation::Osn, Kopecks(0)));
}

#[test]
fn the_original_body_with_quantity_total_and_vat_is_accepted() {
    let body = r#"{"pos_id":"POS-002","type":"refund","items":[
        {"name":"Молоко","price":89.90,"quantity":2,"total":179.80,"vat_rate":10},
        {"name":"Сыр","price":450.5,"quantity":0.352,"total":158.58,"vat_rate":"none"}],
        "payments":[{"type":"card","amount":200},{"type":"cash","amount":138.38}]}"#;
    let r = ok(body);
    assert_eq!(r.kind, ReceiptType::SaleRefund);
    assert_eq!(r.total, Kopecks(33838));
    assert_eq!(r.items[0].vat, Vat::Vat10);
    assert_eq!(r.items[0].vat_amount, Kopecks(1635)); // 179.80 × 10/110 = 16.345… → 16.35
    assert_eq!(r.items[1].vat, Vat::None);
}

#[test]
fn twenty_percent_is_refused_on_a_sale_and_taken_on_a_refund_of_a_2025_sale() {
    let sale = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"qty":1,"vat_rate":20}],"payments":[{"type":"cash","amount":10}]}"#;
    assert!(
        message(sale).contains("22 % replaced 20 % on 2026-01-01"),
        "{}",
        message(sale)
    );
    let named = sale.replace(r#""vat_rate":20"#, r#""vat":"vat20_120""#);
    assert_eq!(fields(&named), vec!["items[0].vat"]);
    let refund = r#"{"pos_id":"P","type":"sale_refund","base_date":"2025-12-30","items":[{"name":"A","price":12,"qty":1,"vat":"vat20"}],"payments":[{"type":"cash","amount":12}]}"#;
    assert_eq!(ok(refund).items[0].vat_amount, Kopecks(200));
    let late = refund.replace("2025-12-30", "2026-01-01");
    assert_eq!(fields(&late), vec!["items[0].vat"]);
    let correction = r#"{"pos_id":"P","type":"sale_correction","correction":{"kind":"self","base_date":"2025-06-01"},"items":[{"name":"A","price":12,"qty":1,"vat":"vat20"}],"payments":[{"type":"card","amount":12}]}"#;
    assert_eq!(ok(correction).correction.unwrap().kind, CorrectionKind::SelfMade);
}

#[test]
fn corrections_need_their_basis_and_an_ordered_one_its_order_number() {
    let base = r#"{"pos_id":"P","type":"buy_correction",CORR"items":[{"name":"A","price":1,"qty":1}],"payments":[{"type":"cash","amount":1}]}"#;
    assert_eq!(fields(&base.replace("CORR", "")), vec!["correction"]);
    assert_eq!(
        fields(&base.replace("CORR", r#""correction":{"kind":"ordered","base_date":"2026-02-01"},"#)),
        vec!["correction.base_number"]
    );
    assert_eq!(
        fields(&base.replace("CORR", r#""correction":{"kind":"self","base_date":"01.02.2026"},"#)),
        vec!["correction.base_date"]
    );
    let r = ok(&base.replace(
        "CORR",
        r#""correction":{"kind":"ordered","base_date":"2026-02-01","base_number":"12-34/5"},"#,
    ));
    assert_eq!(r.kind.qr_operation(), 3);
    let sale_with_correction = SEED.replace(
        r#""type":"sale","#,
        r#""type":"sale","correction":{"kind":"self","base_date":"2026-02-01"},"#,
    );
    assert_eq!(fields(&sale_with_correction), vec!["correction"]);
}

#[test]
fn cash_may_exceed_the_total_and_the_rest_is_change_while_card_may_not() {
    let cash = SEED.replace(r#""amount":100"#, r#""amount":150"#);
    assert_eq!(ok(&cash).change, Kopecks(5000));
    let mixed = SEED.replace(
        r#"{"type":"cash","amount":100}"#,
        r#"{"type":"card","amount":60},{"type":"cash","amount":50}"#,
    );
    let r = ok(&mixed);
    assert_eq!((r.change, r.paid_by(PaymentType::Cash)), (Kopecks(1000), Kopecks(4000)));
    let card = SEED.replace(r#"{"type":"cash","amount":100}"#, r#"{"type":"card","amount":100.01}"#);
    assert!(
        message(&card).contains("non-cash payments 100.01 exceed"),
        "{}",
        message(&card)
    );
    let short = SEED.replace(r#""amount":100"#, r#""amount":99.99"#);
    assert!(message(&short).contains("less than the receipt total"));
    let electronic = SEED.replace(r#""type":"cash""#, r#""type":"electronic""#);
    assert_eq!(ok(&electronic).payments[0].kind, PaymentType::Card);
}

#[test]
fn a_lower_total_is_a_discount_and_a_higher_one_is_refused() {
    let body = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"quantity":3,"total":TOTAL}],"payments":[{"type":"cash","amount":TOTAL}]}"#;
    assert_eq!(ok(&body.replace("TOTAL", "27")).items[0].discount, Kopecks(300));
    assert_eq!(
        ok(&body.replace("TOTAL", "30.01")).items[0].discount,
        Kopecks(0),
        "a kopeck of rounding"
    );
    assert!(message(&body.replace("TOTAL", "30.02")).contains("must not exceed price × quantity = 30.00"));
}

#[test]
fn amounts_stop_at_the_fiscal_drives_counter() {
    let body = |p: &str| {
        format!(
            r#"{{"pos_id":"P","type":"sale","items":[{{"name":"A","price":{p},"qty":1}}],"payments":[{{"type":"cash","amount":{p}}}]}}"#
        )
    };
    assert_eq!(ok(&body("42949672.95")).total, MAX_AMOUNT);
    assert_eq!(
        fields(&body("42949672.96")),
        vec!["items[0].price", "payments[0].amount"]
    );
    let two = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":30000000,"qty":1},{"name":"B","price":30000000,"qty":1}],"payments":[{"type":"cash","amount":30000000},{"type":"cash","amount":30000000}]}"#;
    assert_eq!(fields(two), vec!["items"]);
}

#[test]
fn ffd_fields_are_read_and_a_marking_code_makes_marked_goods() {
    let body = r#"{"pos_id":"P","type":"buy","taxation":"usn_income","cashier":{"name":"Иванова","inn":"123456789012"},
        "customer":{"phone":"+79991234567"},
        "items":[{"name":"Сахар","price":80,"quantity":0.5,"measure":"kilogram","payment_method":"advance","payment_object":"service","vat":"vat10_110"},
                 {"name":"Шины","price":5000,"qty":1,"marking_code":"010460043993125621JgXJ5.T\u001d8005112000"}],
        "payments":[{"type":"prepaid","amount":40},{"type":"credit","amount":5000}]}"#;
    let r = ok(body);
    assert_eq!((r.kind, r.taxation), (ReceiptType::Buy, Taxation::UsnIncome));
    assert_eq!(r.cashier.as_ref().map(|c| c.inn.as_deref()), Some(Some("123456789012")));
    assert_eq!(r.customer, Some(Customer::Phone("+79991234567".into())));
    assert_eq!(
        (r.items[0].measure, r.items[0].payment_method),
        (Measure::Kilogram, PaymentMethod::Advance)
    );
    assert_eq!(r.items[0].vat_amount, Kopecks(364)); // 40.00 × 10/110 = 3.636…
    assert_eq!(r.items[1].payment_object, PaymentObject::CommodityMarked);
    assert!(r.items[1].marking_code.as_deref().unwrap().contains('\u{1d}'));
    let plain_with_code = body.replace(
        r#""qty":1,"marking_code""#,
        r#""qty":1,"payment_object":"commodity","marking_code""#,
    );
    assert_eq!(fields(&plain_with_code), vec!["items[1].payment_object"]);
    let marked_without = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":1,"qty":1,"payment_object":"excise_marked"}],"payments":[{"type":"cash","amount":1}]}"#;
    assert_eq!(fields(marked_without), vec!["items[0].marking_code"]);
}

#[test]
fn each_bad_field_is_named_with_what_is_allowed() {
    let body = r#"{"pos_id":"","type":"gift","taxation":"envd","cashier":{"name":"A","inn":"123"},"customer":{"email":"nope"},
        "items":[{"name":"A","price":-1,"qty":0,"measure":"bucket","payment_method":"gift","payment_object":"thing","vat":"vat18"},{"price":"x"}],
        "payments":[{"type":"crypto","amount":0}]}"#;
    let f = fields(body);
    for expected in [
        "pos_id",
        "type",
        "taxation",
        "cashier.inn",
        "customer.email",
        "items[0].price",
        "items[0].qty",
        "items[0].measure",
        "items[0].payment_method",
        "items[0].payment_object",
        "items[0].vat",
        "items[1].name",
        "items[1].price",
        "items[1].quantity",
        "payments[0].type",
        "payments[0].amount",
    ] {
        assert!(f.contains(&expected.to_string()), "{expected} missing from {f:?}");
    }
    assert!(message(body).contains("must be one of piece, gram, kilogram"));
    assert!(message(body).contains("ЕНВД"));
    let long = SEED.replace("\"Test\"", &format!("\"{}\"", "я".repeat(129)));
    assert!(message(&long).contains("at most 128 characters (it has 129)"));
    let fine = SEED
        .replace(r#""qty":1"#, r#""qty":0.000001"#)
        .replace(r#""amount":100"#, r#""amount":0.01"#);
    assert_eq!(ok(&fine).total, Kopecks(0), "100 × 0.000001 = 0.0001 → 0.00");
    assert_eq!(
        fields(&SEED.replace(r#""qty":1"#, r#""qty":0.0000001"#)),
        vec!["items[0].qty"]
    );
}

#[test]
fn too_many_items_and_wrong_types_are_refused() {
    let items: Vec<String> = (0..1001)
        .map(|_| r#"{"name":"A","price":1,"qty":1}"#.to_string())
        .collect();
    let body = format!(
        r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"cash","amount":1001}}]}}"#,
        items.join(",")
    );
    assert_eq!(fields(&body), vec!["items"]);
    assert_eq!(
        fields(r#"{"pos_id":5,"type":"sale","items":{},"payments":"x"}"#),
        vec!["pos_id", "items", "payments"]
    );
    assert_eq!(
        fields(r#"{"pos_id":"P","type":"sale","items":[],"payments":[]}"#),
        vec!["items", "payments"]
    );
}

#[test]
fn malformed_bodies_are_not_field_errors() {
    for body in ["", "{", "[]", "null", "42", "\"x\"", "{\"a\":}"] {
        assert!(
            matches!(parse(body.as_bytes(), &Defaults::default()), Err(Invalid::Malformed(_))),
            "{body}"
        );
    }
    assert!(matches!(
        parse(&[0xff, 0xfe], &Defaults::default()),
        Err(Invalid::Malformed(_))
    ));
}

#[test]
fn control_characters_in_names_are_refused() {
    let body = "{\"pos_id\":\"P\\u0000\",\"type\":\"sale\",\"items\":[{\"name\":\"A\",\"price\":1,\"qty\":1}],\"payments\":[{\"type\":\"cash\",\"amount\":1}]}";
    assert_eq!(fields(body), vec!["pos_id"]);
}

#[test]
fn settings_fill_in_taxation_cashier_and_vat() {
    let defaults = Defaults {
        taxation: Taxation::Patent,
        cashier: Some(Cashier {
            name: "Старший кассир".into(),
            inn: None,
        }),
        vat: Vat::Vat22,
    };
    let r = parse(SEED.as_bytes(), &defaults).unwrap();
    assert_eq!(
        (r.taxation, r.items[0].vat, r.items[0].vat_amount),
        (Taxation::Patent, Vat::Vat22, Kopecks(1803))
    );
    assert_eq!(r.cashier.unwrap().name, "Старший кассир");
}

#[test]
fn a_stored_receipt_reads_back_as_it_was() {
    let r = ok(
        r#"{"pos_id":"P","type":"sale_refund_correction","correction":{"kind":"self","base_date":"2026-03-01"},
        "customer":{"email":"a@b.ru"},"items":[{"name":"A","price":1.5,"quantity":2.125,"vat":"vat5"}],"payments":[{"type":"cash","amount":5}]}"#,
    );
    let back: Receipt = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    // A receipt stored by an earlier version (no FFD fields) reads with the defaults.
    let old: Receipt = serde_json::from_str(r#"{"pos_id":"P","type":"refund","items":[{"name":"A","price":1.00,"quantity":1,"total":1.00,"vat_rate":10}],"payments":[{"type":"cash","amount":1.00}],"total":1.00}"#).unwrap();
    assert_eq!(
        (old.kind, old.items[0].vat, old.taxation),
        (ReceiptType::SaleRefund, Vat::None, Taxation::Osn)
    );
}

proptest! {
    #[test]
    fn any_body_is_either_a_receipt_or_an_error_never_a_panic(s in "\\PC{0,200}") {
        let _ = parse(s.as_bytes(), &Defaults::default());
    }

    #[test]
    fn valid_receipts_total_exactly(prices in proptest::collection::vec((1i64..10_000_000, 1i64..100_000_000), 1..20)) {
        let items: Vec<String> = prices.iter().map(|(p, q)| format!(
            r#"{{"name":"x","price":{},"quantity":{}}}"#,
            Kopecks(*p).to_decimal_string(), Quantity(*q).to_decimal_string())).collect();
        let expected: i64 = prices.iter().map(|(p, q)| Kopecks(*p).times_quantity(Quantity(*q)).unwrap().0).sum();
        prop_assume!(expected <= MAX_AMOUNT.0);
        let body = format!(r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"card","amount":{}}}]}}"#,
            items.join(","), Kopecks(expected.max(1)).to_decimal_string());
        match parse(body.as_bytes(), &Defaults::default()) {
            Ok(r) => prop_assert_eq!(r.total, Kopecks(expected)),
            // A receipt of 0.00 (tiny quantities) paid 0.01 by card: card over the total.
            Err(_) => prop_assert_eq!(expected, 0),
        }
    }

    #[test]
    fn change_is_never_negative_and_cash_covers_it(total in 1i64..100_000_000, card in 0i64..100_000_000, cash in 0i64..100_000_000) {
        let payments = [("card", card), ("cash", cash)]
            .iter()
            .filter(|(_, a)| *a > 0)
            .map(|(t, a)| format!(r#"{{"type":"{t}","amount":{}}}"#, Kopecks(*a).to_decimal_string()))
            .collect::<Vec<_>>()
            .join(",");
        prop_assume!(!payments.is_empty());
        let body = format!(r#"{{"pos_id":"P","type":"sale","items":[{{"name":"x","price":{},"qty":1}}],"payments":[{payments}]}}"#,
            Kopecks(total).to_decimal_string());
        match parse(body.as_bytes(), &Defaults::default()) {
            Ok(r) => {
                prop_assert!(r.change.0 >= 0);
                prop_assert!(r.change.0 <= cash, "change comes from cash only");
                prop_assert_eq!(r.paid_by(PaymentType::Cash).0 + r.paid_by(PaymentType::Card).0, total);
            }
            Err(_) => prop_assert!(card > total || card + cash < total),
        }
    }

    #[test]
    fn vat_sums_per_rate_add_up_to_the_items_vat(rates in proptest::collection::vec((0usize..12, 1i64..1_000_000), 1..15)) {
        let items: Vec<String> = rates.iter().map(|(i, p)| {
            let vat = if Vat::ALL[*i].is_twenty() { Vat::Vat22 } else { Vat::ALL[*i] };
            format!(r#"{{"name":"x","price":{},"qty":1,"vat":"{}"}}"#, Kopecks(*p).to_decimal_string(), vat.as_str())
        }).collect();
        let total: i64 = rates.iter().map(|(_, p)| p).sum();
        let body = format!(r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"cash","amount":{}}}]}}"#,
            items.join(","), Kopecks(total).to_decimal_string());
        let r = parse(body.as_bytes(), &Defaults::default()).unwrap();
        let by_rate: i64 = r.vat_sums().iter().map(|s| s.amount.0).sum();
        let by_item: i64 = r.items.iter().map(|i| i.vat_amount.0).sum();
        prop_assert_eq!(by_rate, by_item);
        for s in r.vat_sums() {
            let expected: i64 = r.items.iter().filter(|i| i.vat == s.vat).map(|i| s.vat.amount(i.total).0).sum();
            prop_assert_eq!(s.amount.0, expected);
        }
    }
}
