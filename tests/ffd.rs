//! FFD 1.2 receipts over HTTP (issue 10, docs/contract.md §6): a table with every rule and the
//! answer it must get, the answer's VAT, change and QR code, the register's shifts (24 hours,
//! `auto_shift`, the Z-report, a restart across the boundary), a replaced FN, and the 30-day
//! block reached through the clock. Every receipt delivered here passes the mock OFD's own FFD 1.2
//! checks (`mock_ofd::ffd`).

use kkt_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
const DAY: Duration = Duration::from_secs(86_400);

/// A sale of one item at `price` paid in cash, as JSON to be changed by `edit`.
fn receipt(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = json!({"pos_id": "POS-1", "type": "sale",
                       "items": [{"name": "Хлеб", "price": 61, "qty": 2}],
                       "payments": [{"type": "cash", "amount": 122}]});
    edit(&mut v);
    v.to_string()
}

fn correction(kind: &str) -> Value {
    json!({"kind": kind, "base_date": "2026-02-01", "base_number": "12/3"})
}

/// One rule: a body and the answer it must get (and the field a 422 must name).
struct Rule {
    what: &'static str,
    body: String,
    status: u16,
    field: Option<&'static str>,
}

fn ok(what: &'static str, body: String) -> Rule {
    Rule {
        what,
        body,
        status: 200,
        field: None,
    }
}

fn bad(what: &'static str, field: &'static str, body: String) -> Rule {
    Rule {
        what,
        body,
        status: 422,
        field: Some(field),
    }
}

fn rules() -> Vec<Rule> {
    let mut r = vec![
        ok("the seed's body", SEED_BODY.into()),
        ok(
            "the original adapter's body (quantity, total, vat_rate 10)",
            receipt(|v| {
                v["items"][0] = json!({"name": "Хлеб", "price": 61, "quantity": 2, "total": 122, "vat_rate": 10});
            }),
        ),
        bad("an unknown type", "type", receipt(|v| v["type"] = json!("gift"))),
        ok("type refund is sale_refund", receipt(|v| v["type"] = json!("refund"))),
        ok("buy", receipt(|v| v["type"] = json!("buy"))),
        ok("buy_refund", receipt(|v| v["type"] = json!("buy_refund"))),
        bad(
            "a correction without its basis",
            "correction",
            receipt(|v| v["type"] = json!("sale_correction")),
        ),
        ok(
            "correction (alias) on own initiative",
            receipt(|v| {
                v["type"] = json!("correction");
                v["correction"] = json!({"kind": "self", "base_date": "2026-02-01"});
            }),
        ),
        bad(
            "an ordered correction without the order's number",
            "correction.base_number",
            receipt(|v| {
                v["type"] = json!("buy_correction");
                v["correction"] = json!({"kind": "ordered", "base_date": "2026-02-01"});
            }),
        ),
        bad(
            "a correction date not YYYY-MM-DD",
            "correction.base_date",
            receipt(|v| {
                v["type"] = json!("sale_refund_correction");
                v["correction"] = json!({"kind": "self", "base_date": "01.02.2026"});
            }),
        ),
        bad(
            "a correction kind outside self/ordered",
            "correction.kind",
            receipt(|v| {
                v["type"] = json!("buy_refund_correction");
                v["correction"] = json!({"kind": "voluntary", "base_date": "2026-02-01"});
            }),
        ),
        bad(
            "a correction basis on a sale",
            "correction",
            receipt(|v| v["correction"] = correction("self")),
        ),
        bad(
            "taxation envd (abolished)",
            "taxation",
            receipt(|v| v["taxation"] = json!("envd")),
        ),
        bad(
            "an unknown taxation",
            "taxation",
            receipt(|v| v["taxation"] = json!("flat")),
        ),
        ok(
            "a cashier with INN",
            receipt(|v| v["cashier"] = json!({"name": "Иванова А.", "inn": "500100732259"})),
        ),
        bad(
            "a cashier INN of 11 digits",
            "cashier.inn",
            receipt(|v| v["cashier"] = json!({"name": "И", "inn": "50010073225"})),
        ),
        bad(
            "a cashier name of 65",
            "cashier.name",
            receipt(|v| v["cashier"] = json!({"name": "я".repeat(65)})),
        ),
        ok(
            "a customer e-mail",
            receipt(|v| v["customer"] = json!({"email": "buyer@example.ru"})),
        ),
        ok(
            "a customer phone",
            receipt(|v| v["customer"] = json!({"phone": "+79991234567"})),
        ),
        bad(
            "a customer e-mail without @",
            "customer.email",
            receipt(|v| v["customer"] = json!({"email": "buyer.example.ru"})),
        ),
        bad(
            "a customer phone without +",
            "customer.phone",
            receipt(|v| v["customer"] = json!({"phone": "89991234567"})),
        ),
        bad(
            "both e-mail and phone",
            "customer",
            receipt(|v| v["customer"] = json!({"email": "a@b.ru", "phone": "+79991234567"})),
        ),
        ok(
            "a name of 128",
            receipt(|v| v["items"][0]["name"] = json!("я".repeat(128))),
        ),
        bad(
            "a name of 129 (tag 1030)",
            "items[0].name",
            receipt(|v| v["items"][0]["name"] = json!("я".repeat(129))),
        ),
        ok(
            "a quantity with 6 decimals",
            receipt(|v| {
                v["items"][0]["qty"] = json!(0.123456);
                v["payments"][0]["amount"] = json!(7.53);
            }),
        ),
        bad(
            "a quantity with 7 decimals",
            "items[0].qty",
            receipt(|v| v["items"][0]["qty"] = json!(0.1234567)),
        ),
        bad(
            "an unknown measure",
            "items[0].measure",
            receipt(|v| v["items"][0]["measure"] = json!("bucket")),
        ),
        bad(
            "an unknown payment method",
            "items[0].payment_method",
            receipt(|v| v["items"][0]["payment_method"] = json!("gift")),
        ),
        bad(
            "an unknown payment object",
            "items[0].payment_object",
            receipt(|v| v["items"][0]["payment_object"] = json!("thing")),
        ),
        bad(
            "marked goods without their code",
            "items[0].marking_code",
            receipt(|v| v["items"][0]["payment_object"] = json!("commodity_marked")),
        ),
        bad(
            "a marking code on plain goods",
            "items[0].payment_object",
            receipt(|v| {
                v["items"][0]["payment_object"] = json!("commodity");
                v["items"][0]["marking_code"] = json!("0104600439931256212ABC");
            }),
        ),
        ok(
            "a marking code alone makes commodity_marked",
            receipt(|v| v["items"][0]["marking_code"] = json!("0104600439931256212ABC\u{1d}91EE06")),
        ),
        bad(
            "an unknown VAT",
            "items[0].vat",
            receipt(|v| v["items"][0]["vat"] = json!("vat18")),
        ),
        bad(
            "vat20 on a sale",
            "items[0].vat",
            receipt(|v| v["items"][0]["vat"] = json!("vat20")),
        ),
        bad(
            "vat_rate 20 on a sale",
            "items[0].vat_rate",
            receipt(|v| v["items"][0]["vat_rate"] = json!(20)),
        ),
        bad(
            "vat20 on a refund of a 2026 sale",
            "items[0].vat",
            receipt(|v| {
                v["type"] = json!("sale_refund");
                v["base_date"] = json!("2026-01-05");
                v["items"][0]["vat"] = json!("vat20");
            }),
        ),
        ok(
            "vat20_120 on a refund of a 2025 sale",
            receipt(|v| {
                v["type"] = json!("sale_refund");
                v["base_date"] = json!("2025-12-31");
                v["items"][0]["vat"] = json!("vat20_120");
            }),
        ),
        ok(
            "vat20 on a correction of a 2025 sale",
            receipt(|v| {
                v["type"] = json!("sale_correction");
                v["correction"] = json!({"kind": "self", "base_date": "2025-11-30"});
                v["items"][0]["vat"] = json!("vat20");
            }),
        ),
        bad(
            "base_date on a sale",
            "base_date",
            receipt(|v| v["base_date"] = json!("2025-12-31")),
        ),
        ok(
            "a total below price × quantity is a discount",
            receipt(|v| {
                v["items"][0]["total"] = json!(100);
                v["payments"][0]["amount"] = json!(100);
            }),
        ),
        bad(
            "a total above price × quantity",
            "items[0].total",
            receipt(|v| v["items"][0]["total"] = json!(123)),
        ),
        ok(
            "cash over the total gives change",
            receipt(|v| v["payments"][0]["amount"] = json!(150)),
        ),
        bad(
            "less paid than the total",
            "payments",
            receipt(|v| v["payments"][0]["amount"] = json!(121.99)),
        ),
        bad(
            "card over the total",
            "payments",
            receipt(|v| v["payments"] = json!([{"type": "card", "amount": 122.01}])),
        ),
        ok(
            "electronic (alias of card), prepaid, credit and other",
            receipt(|v| {
                v["payments"] = json!([{"type": "electronic", "amount": 22}, {"type": "prepaid", "amount": 50},
                                   {"type": "credit", "amount": 40}, {"type": "other", "amount": 10}]);
            }),
        ),
        bad(
            "an unknown payment type",
            "payments[0].type",
            receipt(|v| v["payments"][0]["type"] = json!("crypto")),
        ),
        ok(
            "an amount of 42 949 672.95",
            receipt(|v| {
                v["items"][0] = json!({"name": "Дом", "price": 42949672.95, "qty": 1});
                v["payments"][0]["amount"] = json!(42949672.95);
            }),
        ),
        bad(
            "a price of 42 949 672.96",
            "items[0].price",
            receipt(|v| {
                v["items"][0] = json!({"name": "Дом", "price": 42949672.96, "qty": 1});
                v["payments"][0]["amount"] = json!(1);
            }),
        ),
        bad(
            "a receipt total over the FN's counter",
            "items",
            receipt(|v| {
                v["items"] =
                    json!([{"name": "A", "price": 30000000, "qty": 1}, {"name": "B", "price": 30000000, "qty": 1}]);
                v["payments"] = json!([{"type": "cash", "amount": 30000000}, {"type": "cash", "amount": 30000000}]);
            }),
        ),
    ];
    for m in [
        "piece",
        "gram",
        "kilogram",
        "ton",
        "liter",
        "square_meter",
        "kilowatt_hour",
        "day",
        "other",
    ] {
        r.push(ok("a measure", receipt(|v| v["items"][0]["measure"] = json!(m))));
    }
    for m in [
        "full_prepayment",
        "prepayment",
        "advance",
        "full_payment",
        "partial_payment",
        "credit",
        "credit_payment",
    ] {
        r.push(ok(
            "a payment method",
            receipt(|v| v["items"][0]["payment_method"] = json!(m)),
        ));
    }
    for o in [
        "excise",
        "job",
        "service",
        "payment",
        "agent_commission",
        "another",
        "commodity_unmarked",
        "excise_unmarked",
    ] {
        r.push(ok(
            "a payment object",
            receipt(|v| v["items"][0]["payment_object"] = json!(o)),
        ));
    }
    for vat in [
        "vat22",
        "vat22_122",
        "vat10",
        "vat10_110",
        "vat0",
        "none",
        "vat5",
        "vat7",
        "vat5_105",
        "vat7_107",
    ] {
        r.push(ok("a VAT rate of 2026", receipt(|v| v["items"][0]["vat"] = json!(vat))));
    }
    for t in ["osn", "usn_income", "usn_income_outcome", "esn", "patent"] {
        r.push(ok("a taxation system", receipt(|v| v["taxation"] = json!(t))));
    }
    r
}

#[tokio::test]
async fn every_rule_of_ffd_1_2_gets_its_answer_and_every_accepted_receipt_reaches_the_ofd() {
    let ofd = mock_ofd().await;
    let t = TestApp::start_with(|s| s.ofd_url = Some(ofd.url())).await;
    let rules = rules();
    let mut accepted = 0;
    for rule in &rules {
        let (status, v) = t.try_receipt(&rule.body).await;
        assert_eq!(status, rule.status, "{}: {v}", rule.what);
        if let Some(field) = rule.field {
            assert_eq!(v["code"], "validation_error", "{}: {v}", rule.what);
            let named: Vec<&str> = v["details"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|d| d["field"].as_str())
                .collect();
            assert!(named.contains(&field), "{}: {field} not named in {v}", rule.what);
            let message = &v["details"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["field"] == field)
                .unwrap()["message"];
            assert!(
                message.as_str().is_some_and(|m| m.len() > 10),
                "{}: say what is allowed: {v}",
                rule.what
            );
        } else {
            accepted += 1;
        }
    }
    // The OFD's FFD 1.2 checks accept every document the adapter sends.
    t.wait_status(LIMIT, "all delivered", |s| s["synced"] == accepted).await;
    assert_eq!(ofd.stats().invalid, 0, "the OFD found a document breaking FFD 1.2");
    assert_eq!(ofd.stats().unique_keys, accepted);
    // And refuses one that breaks it (an independent check, not the adapter's own).
    let broken = reqwest::Client::new()
        .post(format!("{}/ofd/v1/receipt", ofd.url()))
        .header("Idempotency-Key", "broken")
        .json(&json!({"ffd_version": 4, "type": "sale", "operation": 1, "taxation": 8, "items": [], "payments": [], "total": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 422);
}

#[tokio::test]
async fn the_answer_carries_vat_per_rate_change_and_a_qr_code_in_local_time() {
    let t = TestApp::start_with(|s| s.fiscal.timezone = "Asia/Vladivostok".into()).await;
    let body = receipt(|v| {
        v["items"] = json!([{"name": "Молоко", "price": 122, "qty": 1, "vat": "vat22"},
                            {"name": "Хлеб", "price": 55, "qty": 2, "vat": "vat10"},
                            {"name": "Сахар", "price": 100, "qty": 1, "vat": "vat22"}]);
        v["payments"] = json!([{"type": "card", "amount": 200}, {"type": "cash", "amount": 200}]);
    });
    let (status, v) = t.try_receipt(&body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["change"], json!(68.0), "332.00 paid 400.00: 68.00 back");
    let vat = &v["fiscal_doc"]["vat"];
    assert_eq!(vat[0], json!({"vat": "vat22", "amount": 40.03}), "22.00 + 18.03: {v}");
    assert_eq!(vat[1], json!({"vat": "vat10", "amount": 10.0}), "{v}");
    let qr = v["fiscal_doc"]["qr_code_data"].as_str().unwrap();
    let sign = v["fiscal_doc"]["fiscal_sign"].as_str().unwrap();
    let local = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(10 * 3600).unwrap());
    assert!(
        qr.starts_with(&format!("t={}", local.format("%Y%m%dT"))),
        "Vladivostok's date: {qr}"
    );
    assert!(
        qr.contains(&format!("&s=332.00&fn=9999999999999999&i=2&fp={sign}&n=1")),
        "{qr}"
    );
    assert!(
        sign.parse::<u64>().is_ok_and(|n| n < 10_000_000_000),
        "fp is a decimal of ≤ 10 digits"
    );
    // A correction carries the operation it corrects.
    let buy = receipt(|v| {
        v["type"] = json!("buy_refund_correction");
        v["correction"] = correction("ordered");
    });
    let (_, c) = t.try_receipt(&buy).await;
    assert!(
        c["fiscal_doc"]["qr_code_data"].as_str().unwrap().ends_with("&n=4"),
        "{c}"
    );
}

#[tokio::test]
async fn shifts_are_numbered_documents_and_the_z_report_sums_them() {
    let t = TestApp::start().await;
    let (_, shift) = t.get("/v1/kkt/shift").await;
    assert_eq!(
        (shift["state"].as_str(), shift["number"].as_i64()),
        (Some("closed"), Some(0)),
        "{shift}"
    );
    t.receipt(SEED_BODY).await;
    t.receipt(&receipt(|v| v["type"] = json!("sale_refund"))).await;
    let (_, shift) = t.get("/v1/kkt/shift").await;
    assert_eq!(
        (
            shift["state"].as_str(),
            shift["number"].as_i64(),
            shift["receipts"].as_i64()
        ),
        (Some("open"), Some(1), Some(2))
    );
    assert!(shift["expires_at"].is_string());
    let (code, z) = t.admin_post("/v1/kkt/shift/close", Some(&t.token)).await;
    assert_eq!(code, 200, "{z}");
    assert_eq!(
        (
            z["shift_number"].as_i64(),
            z["receipts"].as_i64(),
            z["fiscal_doc_number"].as_i64()
        ),
        (Some(1), Some(2), Some(4))
    );
    let sales = z["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "sale")
        .unwrap();
    assert_eq!((sales["count"].as_i64(), &sales["total"]), (Some(1), &json!(100.0)));
    assert_eq!(sales["payments"][0], json!({"type": "cash", "amount": 100.0}));
    let (code, again) = t.admin_post("/v1/kkt/shift/close", Some(&t.token)).await;
    assert_eq!((code, again["code"].as_str()), (409, Some("shift_not_open")));
    // The next receipt opens shift 2 (document 5) and is document 6.
    let next = t.receipt(SEED_BODY).await;
    assert_eq!(
        (
            next["fiscal_doc"]["shift_number"].as_i64(),
            next["fiscal_doc"]["fiscal_doc_number"].as_i64()
        ),
        (Some(2), Some(6))
    );
}

#[tokio::test]
async fn an_expired_shift_across_a_restart_is_rolled_over_or_refused_as_configured() {
    let mut t = TestApp::start().await;
    let first = t.receipt(SEED_BODY).await;
    assert_eq!(first["fiscal_doc"]["shift_number"], 1);
    t.restart().await;
    t.clock.advance(DAY + Duration::from_secs(60));
    let (_, shift) = t.get("/v1/kkt/shift").await;
    assert_eq!(shift["state"], "expired", "{shift}");
    // auto_shift (the default): closed and reopened before the receipt — documents 3 and 4.
    let next = t.receipt(SEED_BODY).await;
    assert_eq!(
        (
            next["fiscal_doc"]["shift_number"].as_i64(),
            next["fiscal_doc"]["fiscal_doc_number"].as_i64()
        ),
        (Some(2), Some(5))
    );
    // Without auto_shift the till is told, and nothing is stored until the shift is closed.
    t.settings.kkt.auto_shift = false;
    t.restart().await;
    t.clock.advance(DAY + Duration::from_secs(60));
    let before = t.status().await["total_receipts"].clone();
    let (code, v) = t.try_receipt(SEED_BODY).await;
    assert_eq!((code, v["code"].as_str()), (409, Some("shift_expired")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("/v1/kkt/shift/close"), "{v}");
    assert_eq!(t.status().await["total_receipts"], before, "nothing stored");
    assert_eq!(t.admin_post("/v1/kkt/shift/close", Some(&t.token)).await.0, 200);
    assert_eq!(t.try_receipt(SEED_BODY).await.0, 200);
}

#[tokio::test]
async fn a_replaced_fn_numbers_from_one_and_the_buffer_keeps_every_receipt() {
    let ofd = mock_ofd().await;
    let mut t = TestApp::start_with(|s| s.ofd_url = Some(ofd.url())).await;
    let old = t.receipt(SEED_BODY).await;
    t.settings.kkt.fn_number = "7380440700112233".into();
    t.restart().await;
    let new = t.receipt(SEED_BODY).await;
    assert_eq!(new["fiscal_doc"]["fn_number"], "7380440700112233");
    assert_eq!(
        new["fiscal_doc"]["fiscal_doc_number"], old["fiscal_doc"]["fiscal_doc_number"],
        "both are document 2 of their FN"
    );
    t.wait_status(LIMIT, "both delivered", |s| s["synced"] == 2).await;
    assert_eq!(ofd.stats().unique_keys, 2);
}

#[tokio::test]
async fn after_thirty_days_without_the_ofd_the_fn_blocks_until_the_ofd_confirms() {
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        down: true,
        ..Default::default()
    });
    let mut t = TestApp::start_with(|s| {
        s.ofd_url = Some(ofd.url());
        s.alerts.min_interval = Duration::ZERO;
    })
    .await;
    let alerts = std::sync::Arc::new(Recorder::default());
    t.spawn_alerts(alerts.clone());
    t.receipt(SEED_BODY).await;
    let level = |s: &Value| s["fn_age"]["level"].as_str().unwrap_or_default().to_string();
    let alerted = |prefix: &'static str| {
        let alerts = alerts.clone();
        async move {
            wait_for(LIMIT, prefix, || async {
                let seen = alerts.0.lock().unwrap().clone();
                seen.iter().any(|a| format!("{a:?}").starts_with(prefix)).then_some(())
            })
            .await
        }
    };
    for (days, expected, alert) in [
        (3, "warning", "FnAgeWarning"),
        (22, "critical", "FnAgeCritical"),
        (5, "blocked", "FnBlocked"),
    ] {
        t.clock.advance(DAY * days);
        t.wait_status(LIMIT, expected, |s| level(s) == expected).await;
        alerted(alert).await;
    }
    let before = t.status().await["total_receipts"].clone();
    let (code, v) = t.try_receipt(SEED_BODY).await;
    assert_eq!((code, v["code"].as_str()), (503, Some("fn_blocked")), "{v}");
    assert_eq!(t.status().await["total_receipts"], before, "nothing stored");
    let (h, health) = t.get("/v1/health").await;
    assert_eq!((h, health["status"].as_str()), (503, Some("unhealthy")), "{health}");
    // The OFD is back: the receipt is confirmed, the FN takes receipts again.
    ofd.set_faults(mock_ofd::Faults::default());
    t.admin_post("/v1/kkt/buffer/sync", Some(&t.token)).await;
    t.wait_status(LIMIT, "delivered", |s| s["synced"] == 1 && level(s) == "ok")
        .await;
    let after = wait_for(LIMIT, "the FN takes receipts again", || async {
        let (code, v) = t.try_receipt(SEED_BODY).await;
        (code == 200).then_some(v)
    })
    .await;
    assert_eq!(after["status"], "printed");
}
