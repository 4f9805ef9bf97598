//! Phase 2 over HTTP against a real mock OFD server: the seed's integration test, an outage and
//! recovery, rejection → DLQ → manual retry, admin auth, metrics.

use kkt_tests::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_seeds_integration_test_ten_receipts_end_synced_and_delivered_once() {
    let ofd = mock_ofd().await;
    let t = TestApp::start_with(|s| s.ofd_url = Some(ofd.url())).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(t.receipt(SEED_BODY).await["receipt_id"].as_str().unwrap().to_string());
    }
    let s = t.wait_status(LIMIT, "synced=10", |s| s["synced"] == 10).await;
    assert_eq!((n(&s, "pending"), n(&s, "failed"), n(&s, "dlq_size")), (0, 0, 0));
    assert_eq!(s["mode"], "live");
    let stats = ofd.stats();
    assert_eq!((stats.unique_keys, stats.duplicates), (10, 0));
    // The OFD got the fiscal document under the receipt id as its idempotency key.
    let doc = ofd.document(&ids[0]).expect("delivered under its receipt id");
    assert_eq!(doc["receipt_id"], ids[0].as_str());
    assert_eq!(doc["total"].as_f64(), Some(100.0));
    for k in [
        "fiscal_doc_number",
        "fiscal_sign",
        "fiscal_datetime",
        "fn_number",
        "kkt_number",
        "shift_number",
        "items",
        "payments",
        "pos_id",
        "type",
    ] {
        assert!(doc.get(k).is_some(), "{k} missing in {doc}");
    }
}

#[tokio::test]
async fn an_ofd_outage_opens_the_breaker_and_everything_is_delivered_after_recovery() {
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        down: true,
        ..Default::default()
    });
    let t = TestApp::start_with(|s| s.ofd_url = Some(ofd.url())).await;
    for _ in 0..8 {
        t.receipt(SEED_BODY).await;
    }
    let s = t
        .wait_status(LIMIT, "breaker open", |s| s["breaker"]["state"] == "open")
        .await;
    assert_eq!(s["network_status"], "offline");
    assert_eq!(n(&s, "synced"), 0);
    // Intake never waits for the OFD.
    assert_eq!(t.post_receipt(Some("during-outage"), SEED_BODY).await.status(), 200);
    let (_, h) = t.get("/v1/health").await;
    assert_eq!(h["status"], "degraded");
    ofd.set_faults(mock_ofd::Faults::default());
    let s = t.wait_status(LIMIT, "all delivered", |s| s["synced"] == 9).await;
    assert_eq!(s["breaker"]["state"], "closed");
    assert_eq!(ofd.stats().unique_keys, 9);
    assert!(ofd.deliveries().values().all(|d| *d == 1), "no receipt delivered twice");
    let (_, ev) = t.get("/v1/kkt/buffer/events?limit=1000").await;
    let kinds: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for k in [
        "circuit_opened",
        "circuit_half_open",
        "circuit_closed",
        "receipt_failed",
        "receipt_synced",
    ] {
        assert!(kinds.contains(&k), "{k} missing");
    }
}

#[tokio::test]
async fn a_rejected_receipt_goes_to_the_dlq_and_a_manual_retry_delivers_it() {
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        reject_pos_ids: vec!["POS-001".into()],
        ..Default::default()
    });
    let t = TestApp::start_with(|s| s.ofd_url = Some(ofd.url())).await;
    let id = t.receipt(SEED_BODY).await["receipt_id"].as_str().unwrap().to_string();
    t.wait_status(LIMIT, "in the DLQ", |s| s["dlq_size"] == 1).await;
    let (_, dlq) = t.get("/v1/kkt/dlq").await;
    let e = &dlq["entries"][0];
    assert_eq!(e["receipt_id"], id.as_str());
    assert_eq!(e["reason"], "rejected_by_ofd");
    assert_eq!(e["retry_count"], 1);
    assert_eq!(e["pos_id"], "POS-001");
    assert_eq!(e["total"].as_f64(), Some(100.0));
    assert!(e["last_error"].as_str().unwrap().contains("422"));
    // The OFD's rule is fixed; an operator retries the entry.
    ofd.set_faults(mock_ofd::Faults::default());
    let (code, v) = t.admin_post(&format!("/v1/kkt/dlq/{id}/retry"), Some(&t.token)).await;
    assert_eq!((code, v["retried"].as_u64()), (200, Some(1)));
    let s = t
        .wait_status(LIMIT, "delivered after retry", |s| s["synced"] == 1)
        .await;
    assert_eq!(n(&s, "dlq_size"), 0);
    let (_, r) = t.get(&format!("/v1/kkt/receipt/{id}")).await;
    assert_eq!(r["retry_count"], 0, "attempts were reset by the retry");
    let (code, _) = t.admin_post(&format!("/v1/kkt/dlq/{id}/retry"), Some(&t.token)).await;
    assert_eq!(code, 404, "no longer in the DLQ");
}

#[tokio::test]
async fn retry_all_returns_every_dlq_entry_to_pending() {
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        reject_rate: 1.0,
        ..Default::default()
    });
    let t = TestApp::start_with(|s| s.ofd_url = Some(ofd.url())).await;
    for _ in 0..3 {
        t.receipt(SEED_BODY).await;
    }
    t.wait_status(LIMIT, "3 in the DLQ", |s| s["dlq_size"] == 3).await;
    ofd.set_faults(mock_ofd::Faults::default());
    let (code, v) = t.admin_post("/v1/kkt/dlq/retry", Some(&t.token)).await;
    assert_eq!((code, v["retried"].as_u64()), (200, Some(3)));
    t.wait_status(LIMIT, "all delivered", |s| s["synced"] == 3).await;
}

#[tokio::test]
async fn admin_calls_need_the_admin_token() {
    let t = TestApp::start().await;
    for path in ["/v1/kkt/buffer/sync", "/v1/kkt/dlq/retry", "/v1/kkt/dlq/x/retry"] {
        let (code, v) = t.admin_post(path, None).await;
        assert_eq!((code, v["code"].as_str()), (401, Some("unauthorized")), "{path}");
        let (code, _) = t.admin_post(path, Some("wrong-token")).await;
        assert_eq!(code, 401, "{path}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(t.settings.config_dir.join("admin_token")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn manual_sync_delivers_what_waits_in_backoff_and_reports_the_cycle() {
    let ofd = mock_ofd().await;
    let t = TestApp::start_with(|s| {
        s.ofd_url = Some(ofd.url());
        s.sync.interval = Duration::from_secs(3600);
        // Long backoff: without the manual sync nothing would go for an hour.
        s.sync.backoff_base = Duration::from_secs(3600);
        s.sync.backoff_max = Duration::from_secs(3600);
    })
    .await;
    ofd.set_faults(mock_ofd::Faults {
        down: true,
        ..Default::default()
    });
    for _ in 0..3 {
        t.receipt(SEED_BODY).await;
    }
    t.wait_status(LIMIT, "first attempts failed", |s| s["retrying"] == 3)
        .await;
    ofd.set_faults(mock_ofd::Faults::default());
    let (code, v) = t.admin_post("/v1/kkt/buffer/sync", Some(&t.token)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!((n(&v, "synced"), n(&v, "failed")), (3, 0), "{v}");
    assert!(n(&v, "cycle") >= 1 && v["duration_seconds"].is_number() && v["skipped"].is_number());
    assert_eq!(t.status().await["synced"], 3);
    // `force` is still accepted.
    let (code, v) = t.admin_post("/v1/kkt/buffer/sync?force=true", Some(&t.token)).await;
    assert_eq!((code, &v["status"]), (200, &Value::from("completed")));
}

#[tokio::test]
async fn manual_sync_answers_within_a_second_whatever_the_backlog_and_shows_its_progress() {
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        latency_ms: 50,
        ..Default::default()
    });
    let t = TestApp::start_with(|s| {
        s.ofd_url = Some(ofd.url());
        s.sync.concurrency = 2;
    })
    .await;
    for _ in 0..150 {
        t.receipt(SEED_BODY).await;
    }
    // ~4 s of work at 2 × 50 ms: the call must not wait for it.
    let started = Instant::now();
    let (code, v) = t.admin_post("/v1/kkt/buffer/sync", Some(&t.token)).await;
    let answered = started.elapsed();
    assert!(answered < Duration::from_secs(1), "answered after {answered:?}");
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["status"], "started");
    let cycle = n(&v, "cycle");
    let (code, again) = t.admin_post("/v1/kkt/buffer/sync", Some(&t.token)).await;
    assert_eq!(code, 202, "{again}");
    assert_eq!(again["status"], "already_running");
    assert_eq!(n(&again, "cycle"), cycle, "a second press joins the running sync");
    let progress = wait_for(LIMIT, "progress of the manual cycle", || async {
        let (_, w) = t.get("/v1/kkt/worker/status").await;
        let c = &w["current_cycle"];
        (c["cycle"] == cycle && c["manual"] == true && n(c, "synced") > 0).then(|| c.clone())
    })
    .await;
    assert_eq!(progress["running"], true);
    let done = wait_for(LIMIT, "the manual cycle's result", || async {
        let (_, w) = t.get("/v1/kkt/worker/status").await;
        (w["last_manual_sync"]["cycle"] == cycle).then(|| w["last_manual_sync"].clone())
    })
    .await;
    assert_eq!(done["running"], false);
    assert_eq!(t.status().await["synced"], 150);
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_text() {
    let t = TestApp::start().await;
    t.receipt(SEED_BODY).await;
    t.wait_status(LIMIT, "synced", |s| s["synced"] == 1).await;
    let r = t.client.get(t.url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for line in [
        "kkt_receipts{status=\"synced\"} 1",
        "kkt_dlq_size 0",
        "kkt_breaker_state{state=\"closed\"} 1",
        "kkt_intake_total{result=\"created\"} 1",
        "kkt_ofd_sends_total{outcome=\"delivered\"} 1",
        "kkt_ofd_send_duration_seconds_count 1",
        "kkt_oldest_pending_age_seconds 0",
        // The fleet's alert rules (deploy/prometheus/) read these three.
        "kkt_storage_ok 1",
        "kkt_device_ready 1",
        "kkt_fn_blocked 0",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
}

#[tokio::test]
async fn worker_status_and_openapi_are_served() {
    let t = TestApp::start().await;
    let (code, w) = t.get("/v1/kkt/worker/status").await;
    assert_eq!(code, 200);
    assert_eq!(w["running"], true);
    assert_eq!(w["batch_size"], 50);
    assert_eq!(w["demo"], true);
    let (code, spec): (u16, Value) = t.get("/openapi.json").await;
    assert_eq!(code, 200);
    assert!(spec["paths"]["/v1/kkt/receipt"]["post"].is_object());
    // Every route the API serves is described (the window's reads included).
    let routes = include_str!("../core/src/api/mod.rs");
    for path in routes.split(".route(\"").skip(1).filter_map(|r| r.split('"').next()) {
        if path.starts_with("/v1/") || path == "/metrics" {
            assert!(spec["paths"][path].is_object(), "{path} is not in core/openapi.json");
        }
    }
}

#[tokio::test]
async fn the_fn_age_alarm_warns_then_turns_critical_and_health_says_so() {
    // Thresholds are configurable: zero makes any unconfirmed receipt old enough to see the alarm.
    let warn = TestApp::start_with(|s| {
        s.ofd_url = Some(dead_url());
        s.alerts.fn_warn_age = Duration::ZERO;
    })
    .await;
    warn.receipt(SEED_BODY).await;
    let s = warn.status().await;
    assert_eq!(s["fn_age"]["level"], "warning");
    assert_eq!(s["fn_age"]["blocks_after_days"], 30);
    let (code, h) = warn.get("/v1/health").await;
    assert_eq!(
        (code, h["status"].as_str(), h["fn_age_critical"].as_bool()),
        (200, Some("degraded"), Some(false))
    );
    assert!(
        h["components"]["buffer"]["message"]
            .as_str()
            .unwrap()
            .starts_with("warning")
    );

    let critical = TestApp::start_with(|s| {
        s.ofd_url = Some(dead_url());
        s.alerts.fn_warn_age = Duration::ZERO;
        s.alerts.fn_critical_age = Duration::ZERO;
    })
    .await;
    critical.receipt(SEED_BODY).await;
    assert_eq!(critical.status().await["fn_age"]["level"], "critical");
    let (_, h) = critical.get("/v1/health").await;
    assert_eq!(h["fn_age_critical"], true);
    assert!(
        h["components"]["buffer"]["message"]
            .as_str()
            .unwrap()
            .contains("30 days")
    );

    // With the default thresholds a fresh receipt raises nothing.
    let fresh = TestApp::start_with(|s| s.ofd_url = Some(dead_url())).await;
    fresh.receipt(SEED_BODY).await;
    assert_eq!(fresh.status().await["fn_age"]["level"], "ok");
}

#[tokio::test]
async fn a_misconfigured_ofd_token_is_retried_and_raises_an_operator_alarm() {
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        token: Some("right".into()),
        ..Default::default()
    });
    let t = TestApp::start_with(|s| {
        s.ofd_url = Some(ofd.url());
        s.ofd.token = Some("wrong".into());
    })
    .await;
    t.receipt(SEED_BODY).await;
    let s = t.wait_status(LIMIT, "alarm", |s| s["ofd_misconfigured"] == 401).await;
    assert_eq!(n(&s, "dlq_size"), 0, "misconfiguration is not a rejection");
    let (_, h) = t.get("/v1/health").await;
    assert!(
        h["components"]["worker"]["message"].as_str().unwrap().contains("401"),
        "{h}"
    );
    let (_, ev) = t.get("/v1/kkt/buffer/events?limit=1000").await;
    let alarms = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ofd_misconfigured")
        .count();
    assert_eq!(alarms, 1);
}

#[tokio::test]
async fn operators_are_alerted_to_an_outage_its_end_a_dead_letter_and_the_fn_age_once_each() {
    use kkt_core::alerts::Alert;
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        down: true,
        ..Default::default()
    });
    let mut t = TestApp::start_with(|s| {
        s.ofd_url = Some(ofd.url());
        s.alerts.fn_warn_age = Duration::ZERO;
    })
    .await;
    let alerts = std::sync::Arc::new(Recorder::default());
    t.spawn_alerts(alerts.clone());
    for _ in 0..6 {
        t.receipt(SEED_BODY).await;
    }
    alerts.wait(LIMIT, "offline alert", |a| *a == Alert::OfdOffline).await;
    alerts
        .wait(LIMIT, "FN-age warning", |a| matches!(a, Alert::FnAgeWarning { .. }))
        .await;
    ofd.set_faults(mock_ofd::Faults {
        reject_pos_ids: vec!["POS-001".into()],
        ..Default::default()
    });
    alerts.wait(LIMIT, "back online", |a| *a == Alert::OfdBackOnline).await;
    alerts
        .wait(LIMIT, "dead letter", |a| matches!(a, Alert::DeadLettered { .. }))
        .await;
    let seen = alerts.0.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|a| **a == Alert::OfdOffline).count(), 1, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|a| matches!(a, Alert::FnAgeWarning { .. })).count(),
        1,
        "{seen:?}"
    );
}
