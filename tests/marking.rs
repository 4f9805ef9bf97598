//! Marked goods (docs/contract.md §12, issue 21): the code checked before the sale — online
//! through ТС ПИоТ within the 1.5 s budget, offline against the local module ЛМ ЧЗ, by the FN
//! (2106) — each refusal reason answered in words, the verdict kept with the receipt; against
//! the built-in simulator (demo) and against `mock-marking`, the emulators of both services.

use kkt_core::marking::Mode;
use kkt_tests::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A test code (README "Marked goods") with this serial.
fn code(serial: &str) -> String {
    format!("010463000000000121{serial}\u{1d}93TEST")
}

async fn check(t: &TestApp, code: &str, operation: &str) -> (u16, Value) {
    let r = t
        .client
        .post(t.url("/v1/kkt/marking/check"))
        .bearer_auth(&t.token)
        .header("Content-Type", "application/json")
        .body(json!({"code": code, "operation": operation, "quantity": 1, "measure": "piece"}).to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn sale(code: &str, check_id: Option<&str>) -> String {
    let mut item = json!({"name": "Кефир 2.5%", "price": 89.90, "qty": 1, "payment_object": "commodity_marked",
                          "marking_code": code, "vat": "vat10"});
    if let Some(id) = check_id {
        item["marking_check_id"] = json!(id);
    }
    json!({"pos_id": "POS-001", "type": "sale", "items": [item], "payments": [{"type": "cash", "amount": 89.90}]})
        .to_string()
}

#[tokio::test]
async fn every_test_code_gets_its_verdict_and_reason_from_the_demo_simulator() {
    let t = TestApp::start_with(|s| s.marking.mode = Mode::Permissive).await;
    let cases = [
        ("OK0000001", "allowed", 0, "tspiot"),
        ("BLOCKED01", "refused", 101, "tspiot"),
        ("SOLD00001", "refused", 102, "tspiot"),
        ("NOTFOUND1", "refused", 10, "tspiot"),
        ("NOTAPPLIED", "refused", 112, "tspiot"),
        ("FAKE00001", "refused", 113, "tspiot"),
        ("NOTINCIRC", "refused", 114, "tspiot"),
        ("EXPIRED01", "refused", 115, "tspiot"),
        ("BADFORMAT", "refused", 111, "tspiot"),
        ("SLOW00001", "allowed", 0, "lm_chz"),
        ("NOSERVICE", "unknown", -1, "none"),
        ("FNREFUSE1", "refused", 0, "tspiot"),
    ];
    for (serial, verdict, code_n, source) in cases {
        let (status, c) = check(&t, &code(serial), "sale").await;
        assert_eq!(status, 200, "{serial}: {c}");
        assert_eq!(
            (
                c["verdict"].as_str(),
                c["permissive"]["code"].as_i64(),
                c["permissive"]["source"].as_str()
            ),
            (Some(verdict), Some(code_n), Some(source)),
            "{serial}: {c}"
        );
        assert!(!c["reason"].as_str().unwrap().is_empty(), "{serial}: a reason in words");
        assert!(c["check_id"].is_string() && c["checked_at"].is_string());
    }
    let (_, fn_refused) = check(&t, &code("FNREFUSE1"), "sale").await;
    assert_eq!(fn_refused["fn"]["tag_2106"], 1, "{fn_refused}");
    assert!(fn_refused["reason"].as_str().unwrap().contains("ФН"), "{fn_refused}");
    let (_, ok) = check(&t, &code("OK0000001"), "sale").await;
    assert_eq!(ok["fn"]["tag_2106"], 15);
    assert!(ok["permissive"]["req_id"].is_string() && ok["permissive"]["req_timestamp"].is_string());
    // A refund expects a sold code.
    let (_, refund) = check(&t, &code("SOLD00001"), "refund").await;
    assert_eq!(refund["verdict"], "allowed", "{refund}");
    // Not a code at all.
    let (status, bad) = check(&t, "hello", "sale").await;
    assert_eq!(
        (status, bad["details"][0]["field"].as_str()),
        (422, Some("code")),
        "{bad}"
    );
}

#[tokio::test]
async fn a_refused_code_stops_the_sale_with_its_reason_and_an_allowed_one_goes_with_its_verdict() {
    let t = TestApp::start_with(|s| s.marking.mode = Mode::Permissive).await;
    let before = t.status().await["total_receipts"].as_u64();
    let r = t
        .post_receipt(Some("blocked-sale"), &sale(&code("BLOCKED01"), None))
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "marking_refused", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("запрещена решением органа власти"),
        "{v}"
    );
    assert_eq!(t.status().await["total_receipts"].as_u64(), before, "nothing stored");

    // The till checked while scanning; the receipt names the check.
    let (_, c) = check(&t, &code("OK0000001"), "sale").await;
    let id = c["check_id"].as_str().unwrap();
    let r = t
        .post_receipt(Some("ok-sale"), &sale(&code("OK0000001"), Some(id)))
        .await;
    assert_eq!(r.status(), 200);
    let receipt_id = r.json::<Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, stored) = t.get(&format!("/v1/kkt/receipt/{receipt_id}")).await;
    let m = &stored["request"]["items"][0]["marking"];
    assert_eq!(
        (m["check_id"].as_str(), m["verdict"].as_str(), m["tag_2106"].as_u64()),
        (Some(id), Some("allowed"), Some(15))
    );
    assert_eq!(m["req_id"], c["permissive"]["req_id"], "1265's UUID is the check's");

    // A check of another code, or a code checked just now without naming it.
    let r = t
        .post_receipt(Some("wrong-check"), &sale(&code("OK0000002"), Some(id)))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["details"][0]["field"],
        "items[0].marking_check_id"
    );
    let (_, again) = check(&t, &code("OK0000003"), "sale").await;
    let r = t.post_receipt(Some("reused"), &sale(&code("OK0000003"), None)).await;
    assert_eq!(r.status(), 200);
    let rid = r.json::<Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, stored) = t.get(&format!("/v1/kkt/receipt/{rid}")).await;
    assert_eq!(
        stored["request"]["items"][0]["marking"]["check_id"], again["check_id"],
        "the recent verdict reused"
    );
    // The replay of a taken receipt is its stored answer, without a new check.
    let r = t.post_receipt(Some("reused"), &sale(&code("OK0000003"), None)).await;
    assert_eq!(r.status(), 200);
    // Nobody can check: refused unless the settings sell unchecked codes.
    let r = t
        .post_receipt(Some("no-service"), &sale(&code("NOSERVICE"), None))
        .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn online_first_within_the_budget_then_the_local_module_and_each_service_fault_is_handled() {
    let m = mock_marking::spawn().await.unwrap();
    let (ts, lm) = (m.tspiot_url(), m.lm_url());
    let t = TestApp::start_with(move |s| {
        s.marking.mode = Mode::Permissive;
        s.marking.tspiot.url = ts;
        s.marking.lm.url = lm;
    })
    .await;
    let (_, ok) = check(&t, &code("OK0000001"), "sale").await;
    assert_eq!(
        (ok["verdict"].as_str(), ok["permissive"]["source"].as_str()),
        (Some("allowed"), Some("tspiot")),
        "{ok}"
    );
    let (_, fake) = check(&t, &code("FAKE00001"), "sale").await;
    assert_eq!(fake["permissive"]["code"], 113, "{fake}");
    // ТС ПИоТ slower than 1.5 s: the local module decides, and the till is not kept waiting.
    let started = Instant::now();
    let (_, slow) = check(&t, &code("SLOW00001"), "sale").await;
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (
            slow["verdict"].as_str(),
            slow["permissive"]["source"].as_str(),
            slow["permissive"]["offline"].as_bool()
        ),
        (Some("allowed"), Some("lm_chz"), Some(true)),
        "{slow}"
    );
    // Offline, only a ban (and a sold code) refuses.
    m.set_faults(mock_marking::Faults {
        tspiot_down: true,
        ..Default::default()
    });
    let (_, banned) = check(&t, &code("BLOCKED02"), "sale").await;
    assert_eq!(
        (banned["verdict"].as_str(), banned["permissive"]["source"].as_str()),
        (Some("refused"), Some("lm_chz"))
    );
    let (_, notfound) = check(&t, &code("NOTFOUND2"), "sale").await;
    assert_eq!(
        notfound["verdict"], "allowed",
        "the local module does not know ГИС МТ's answers: {notfound}"
    );
    // The local module out of sync as well: nobody can check.
    m.set_faults(mock_marking::Faults {
        tspiot_down: true,
        lm_status: "sync_error".into(),
        ..Default::default()
    });
    let (_, unknown) = check(&t, &code("OK0000009"), "sale").await;
    assert_eq!(unknown["verdict"], "unknown", "{unknown}");
    assert!(
        unknown["reason"].as_str().unwrap().contains("локальный модуль"),
        "{unknown}"
    );
    // ГИС МТ in emergency mode: no check, the sale goes on.
    m.set_faults(mock_marking::Faults {
        emergency: true,
        ..Default::default()
    });
    let (_, emergency) = check(&t, &code("OK0000010"), "sale").await;
    assert_eq!(emergency["verdict"], "unknown");
    let r = t
        .post_receipt(Some("emergency-sale"), &sale(&code("OK0000010"), None))
        .await;
    assert_eq!(r.status(), 200, "a sale in ГИС МТ's emergency mode is not refused");
    // The same said in the body only (HTTP 200, `code` 203).
    m.set_faults(mock_marking::Faults {
        emergency_in_body: true,
        ..Default::default()
    });
    let (_, in_body) = check(&t, &code("OK0000011"), "sale").await;
    assert_eq!(in_body["verdict"], "unknown", "{in_body}");
    assert_eq!(in_body["permissive"]["emergency"], true, "{in_body}");
    let r = t
        .post_receipt(Some("emergency-in-body-sale"), &sale(&code("OK0000011"), None))
        .await;
    assert_eq!(r.status(), 200, "emergency in the body only: not refused either");
    let (asked_online, asked_offline) = m.asked();
    assert!(
        asked_online.iter().any(|c| c.contains("SLOW00001"))
            && asked_offline
                .iter()
                .any(|c| c.starts_with("0104630000000001") && c.ends_with("SLOW00001"))
    );
    assert!(
        asked_offline.iter().all(|c| !c.contains('\u{1d}')),
        "the local module gets the identifier, not the crypto tail"
    );
}

#[tokio::test]
async fn the_permissive_mode_without_a_service_is_a_clear_start_up_error_outside_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.marking.mode = Mode::Permissive;
    s.ofd_url = Some("http://127.0.0.1:1".into());
    let e = kkt_core::App::build(s).await.err().expect("refused").to_string();
    assert!(e.contains("[marking] mode = \"permissive\" needs"), "{e}");
}

#[tokio::test]
async fn on_an_atol_register_each_code_is_checked_by_the_fn_and_accepted_before_the_sale() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(5), |s| s.marking.mode = Mode::Permissive).await;
    let (_, c) = check(&t, &code("OK0000001"), "sale").await;
    assert_eq!(
        (c["verdict"].as_str(), c["fn"]["tag_2106"].as_u64()),
        (Some("allowed"), Some(15)),
        "{c}"
    );
    let r = t
        .post_receipt(
            Some("atol-marked"),
            &sale(&code("OK0000001"), Some(c["check_id"].as_str().unwrap())),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ran: Vec<String> = atol.executed().into_iter().map(|e| e.task).collect();
    let count = |task: &str| ran.iter().filter(|t| *t == task).count();
    assert_eq!(
        (
            count("beginMarkingCodeValidation"),
            count("declineMarkingCode"),
            count("acceptMarkingCode")
        ),
        (2, 1, 1),
        "checked (then declined) while scanning, accepted right before the sale: {ran:?}"
    );
    assert_eq!(atol.documents().iter().filter(|d| d.kind == "receipt").count(), 1);
    // The FN does not confirm the tail: refused at the gate, in words.
    let r = t
        .post_receipt(Some("atol-fn-refused"), &sale(&code("FNREFUSE1"), None))
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "marking_refused");
    assert!(v["message"].as_str().unwrap().contains("ФН: криптоподпись"), "{v}");
    // The marking operator unreachable: the FN's own check, made offline (bit 4).
    atol.set_faults(mock_atol::Faults {
        ism_down: true,
        ..Default::default()
    });
    let (_, offline) = check(&t, &code("OK0000002"), "sale").await;
    assert_eq!(offline["fn"]["tag_2106"].as_u64(), Some(16), "{offline}");
}

#[tokio::test]
async fn with_checks_off_an_atol_sale_of_a_marked_item_still_has_its_code_accepted_first() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(5), |_| {}).await;
    let r = t.post_receipt(Some("atol-off"), &sale(&code("OK0000001"), None)).await;
    assert_eq!(
        r.status(),
        200,
        "the device takes a marked item only once its code is in the FN's table"
    );
    assert_eq!(
        atol.executed().iter().filter(|e| e.task == "acceptMarkingCode").count(),
        1
    );
}

#[tokio::test]
async fn in_fn_mode_only_the_fn_decides_and_concurrent_checks_on_atol_do_not_interleave() {
    let t = TestApp::start_with(|s| s.marking.mode = Mode::Fn).await;
    let (_, banned) = check(&t, &code("BLOCKED01"), "sale").await;
    assert_eq!(
        (banned["verdict"].as_str(), banned["permissive"]["source"].as_str()),
        (Some("allowed"), Some("none")),
        "no permissive check in fn mode: {banned}"
    );
    let (_, refused) = check(&t, &code("FNREFUSE1"), "sale").await;
    assert_eq!(refused["verdict"], "refused", "{refused}");
    // On ATOL the FN checks one code at a time: tills checking while a sale is accepted.
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(5), |s| s.marking.mode = Mode::Fn).await;
    let checks = (0..4).map(|i| {
        let t = &t;
        async move { check(t, &code(&format!("OK000010{i}")), "sale").await }
    });
    let body = sale(&code("OK0000200"), None);
    let (checked, sold) = tokio::join!(
        futures::future::join_all(checks),
        t.post_receipt(Some("concurrent-sale"), &body)
    );
    assert_eq!(sold.status(), 200);
    for (status, c) in checked {
        assert_eq!((status, c["fn"]["tag_2106"].as_u64()), (200, Some(15)), "{c}");
    }
    let begun = atol
        .executed()
        .iter()
        .filter(|e| e.task == "beginMarkingCodeValidation")
        .count();
    assert_eq!(
        begun, 6,
        "4 checks, the sale's gate and its acceptance: each begun once, none cancelled"
    );
}

#[tokio::test]
async fn the_services_troubles_are_alarms_in_the_status_and_the_tray() {
    let m = mock_marking::spawn().await.unwrap();
    let (ts, lm) = (m.tspiot_url(), m.lm_url());
    let mut t = TestApp::start_with(move |s| {
        s.marking.mode = Mode::Permissive;
        s.marking.tspiot.url = ts;
        s.marking.lm.url = lm;
        s.kkt.watch_every = Duration::from_millis(100);
    })
    .await;
    let alerts = std::sync::Arc::new(Recorder::default());
    t.spawn_alerts(alerts.clone());
    let codes = |s: &Value| -> Vec<String> {
        s["device"]["watch"]["alarms"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["code"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    t.wait_status(Duration::from_secs(10), "a first reading", |s| {
        s["device"]["watch"]["read_at"].is_string()
    })
    .await;
    assert!(codes(&t.status().await).is_empty());
    // ТС ПИоТ does not answer: the check still goes through the local module, with a warning.
    m.set_faults(mock_marking::Faults {
        tspiot_down: true,
        ..Default::default()
    });
    check(&t, &code("OK0000001"), "sale").await;
    t.wait_status(Duration::from_secs(10), "the ТС ПИоТ alarm", |s| {
        codes(s).contains(&"tspiot_unreachable".to_string())
    })
    .await;
    // The local module not synchronised for a day, then out of sync altogether.
    m.set_faults(mock_marking::Faults {
        lm_sync_age_hours: 30,
        ..Default::default()
    });
    check(&t, &code("OK0000002"), "sale").await;
    let s = t
        .wait_status(Duration::from_secs(10), "the stale module", |s| {
            codes(s) == ["lm_stale"]
        })
        .await;
    assert!(
        s["device"]["watch"]["alarms"][0]["text"]
            .as_str()
            .unwrap()
            .contains("72 часа"),
        "{s}"
    );
    m.set_faults(mock_marking::Faults {
        lm_status: "sync_error".into(),
        ..Default::default()
    });
    t.wait_status(Duration::from_secs(10), "the module not ready", |s| {
        codes(s) == ["lm_not_ready"]
    })
    .await;
    alerts
        .wait(Duration::from_secs(10), "the tray told", |a| {
            matches!(
                a,
                kkt_core::alerts::Alert::DeviceAlarm {
                    code: "lm_not_ready",
                    critical: true,
                    ..
                }
            )
        })
        .await;
}
