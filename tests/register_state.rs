//! The register's own side of a sale (docs/contract.md §11, issue 20): electronic receipts that
//! go to the customer unprinted, the register's state polled for alarms, and a receipt whose
//! paper ran out finished before the next document — on the mock register and on `mock-atol`.

use kkt_tests::*;
use serde_json::json;
use std::time::Duration;

/// An alarm of the FN's validity in the tray, warning or critical.
fn fn_expiring(critical: bool) -> impl Fn(&kkt_core::alerts::Alert) -> bool {
    move |a| matches!(a, kkt_core::alerts::Alert::DeviceAlarm { code: "fn_expiring", critical: c, .. } if *c == critical)
}

const ELECTRONIC: &str = r#"{"pos_id":"POS-001","type":"sale","electronic":true,"customer":{"email":"buyer@example.ru"},"items":[{"name":"Книга","price":450,"qty":1}],"payments":[{"type":"card","amount":450}]}"#;

#[tokio::test]
async fn an_electronic_receipt_goes_to_the_customer_unprinted_and_needs_a_contact() {
    let t = TestApp::start_with(|s| s.kkt.write_slips = true).await;
    let r = t
        .try_receipt(&ELECTRONIC.replace(r#""customer":{"email":"buyer@example.ru"},"#, ""))
        .await;
    assert_eq!(r.0, 422, "{}", r.1);
    assert_eq!(r.1["details"][0]["field"], "electronic", "{}", r.1);
    let paper = t.receipt(SEED_BODY).await;
    let e = t.receipt(ELECTRONIC).await;
    let id = e["receipt_id"].as_str().unwrap();
    let roll: String = std::fs::read_dir(t.settings.data_dir.join("receipts"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    assert!(
        roll.contains(paper["receipt_id"].as_str().unwrap()),
        "a paper receipt is printed"
    );
    assert!(!roll.contains(id), "an electronic one is not: {roll}");
    let slip = t
        .client
        .get(t.url(&format!("/v1/kkt/receipt/{id}/slip")))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        slip.contains("ЭЛЕКТРОННЫЙ ЧЕК") && slip.contains("buyer@example.ru"),
        "{slip}"
    );
}

#[tokio::test]
async fn an_electronic_receipt_reaches_an_atol_register_as_electronically_with_the_contact() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(10), |_| {}).await;
    t.receipt(SEED_BODY).await;
    t.receipt(ELECTRONIC).await;
    let flags: Vec<bool> = atol
        .documents()
        .iter()
        .filter(|d| d.kind == "receipt")
        .map(|d| d.electronically)
        .collect();
    assert_eq!(flags, [false, true]);
}

#[tokio::test]
async fn the_registers_state_is_polled_and_its_alarms_reach_the_status_and_the_tray() {
    let (atol, mut t) = TestApp::start_on_atol(Duration::from_millis(10), |s| {
        s.kkt.watch_every = Duration::from_millis(100);
    })
    .await;
    let alerts = std::sync::Arc::new(Recorder::default());
    t.spawn_alerts(alerts.clone());
    let read = t
        .wait_status(Duration::from_secs(10), "a first reading", |s| {
            s["device"]["watch"]["read_at"].is_string()
        })
        .await;
    assert_eq!(read["device"]["watch"]["alarms"], json!([]), "{read}");
    assert_eq!(read["device"]["watch"]["info"]["model"], "АТОЛ 30Ф (эмулятор)");
    // No paper (the device's own sensor, with no receipt waiting), and the FN's keys 20 days
    // from running out (the emulator's FN is valid 400 days from its start): the program's
    // clock moves on 380 days.
    atol.set_faults(mock_atol::Faults {
        paper_out: true,
        ..Default::default()
    });
    t.clock.advance(Duration::from_secs(380 * 86_400));
    let s = t
        .wait_status(Duration::from_secs(10), "paper and FN alarms", |s| {
            s["device"]["watch"]["alarms"].as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    let alarms = &s["device"]["watch"]["alarms"];
    assert_eq!(alarms[0]["code"], "paper_out", "{alarms}");
    assert_eq!(
        (alarms[1]["code"].as_str(), alarms[1]["level"].as_str()),
        (Some("fn_expiring"), Some("warning"))
    );
    // 400 days from the FN's start, at midnight of the device's (Moscow) day: 20 or 21 days.
    let text = alarms[1]["text"].as_str().unwrap();
    assert!(text.contains("через 20 дн.") || text.contains("через 21 дн."), "{text}");
    alerts
        .wait(Duration::from_secs(10), "the FN alarm in the tray", fn_expiring(false))
        .await;
    // 3 days before: critical.
    atol.set_faults(mock_atol::Faults::default());
    t.clock.advance(Duration::from_secs(18 * 86_400));
    alerts
        .wait(Duration::from_secs(10), "the critical FN alarm", fn_expiring(true))
        .await;
    let s = t.status().await;
    assert_eq!(
        s["device"]["watch"]["alarms"].as_array().map(Vec::len),
        Some(1),
        "the paper is back: {s}"
    );
}

#[tokio::test]
async fn a_receipt_fiscalized_but_not_printed_is_printed_to_the_end_before_the_next_document() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(10), |_| {}).await;
    atol.set_faults(mock_atol::Faults {
        not_printed_after_write: true,
        ..Default::default()
    });
    let first = t.receipt(SEED_BODY).await;
    assert_eq!(first["status"], "buffered", "fiscal, the slip not through: {first}");
    let (tasks, ..) = on_device(&atol);
    assert_eq!(tasks.get("continuePrint"), None);
    t.receipt(SEED_BODY).await;
    let (tasks, ..) = on_device(&atol);
    assert_eq!(
        tasks.get("continuePrint"),
        Some(&1),
        "continuePrint before the next document, once"
    );
    t.receipt(SEED_BODY).await;
    assert_eq!(on_device(&atol).0.get("continuePrint"), Some(&1), "and not again");
}
