//! Crash tests (issue 5): the daemon is killed with SIGKILL again and again while POS clients
//! post receipts (each retrying with the same key until it gets an answer) and the OFD fails a
//! share of calls; and while a manual DLQ retry is under way. Afterwards nothing acknowledged is
//! lost, nothing is issued twice, numbering is gap-free and the OFD holds each receipt once.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Fast policy: the same shape as production, in milliseconds instead of seconds.
const FAST: &str = r#"
[kkt]
write_slips = false
[sync]
interval_secs = 0.2
backoff_base_secs = 0.05
backoff_max_secs = 0.3
[breaker]
open_secs = 0.3
"#;

async fn mock_ofd_with(faults: mock_ofd::Faults) -> mock_ofd::MockOfd {
    mock_ofd::spawn("127.0.0.1:0".parse().unwrap(), None, faults)
        .await
        .unwrap()
}

async fn wait_drained(base: &str, total: usize, limit: Duration) -> Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    loop {
        let s = status(&client, base).await;
        if s["synced"] == total && s["total_receipts"] == total {
            return s;
        }
        assert!(Instant::now() < deadline, "not drained: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loop_under_retrying_tills_and_a_failing_ofd_loses_nothing_and_issues_nothing_twice() {
    const KILLS: usize = 6;
    const TILLS: usize = 4;
    let ofd = mock_ofd_with(mock_ofd::Faults {
        failure_rate: 0.3,
        failure_status: 503,
        latency_ms: 3,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (listen, base) = fixed_address();
    let args = ["--ofd-url", &ofd.url(), "--listen", &listen];
    let mut daemon = Daemon::start_with_config(dir.path(), FAST, &args);
    let stop = Arc::new(AtomicBool::new(false));
    let retries = Arc::new(AtomicU64::new(0));
    let tills: Vec<_> = (0..TILLS)
        .map(|c| tokio::spawn(till(base.clone(), c, stop.clone(), retries.clone())))
        .collect();
    let started = Instant::now();
    for k in 0..KILLS {
        // Kill at varied moments: while intake, printing and sends are all under way.
        tokio::time::sleep(Duration::from_millis(250 + 130 * k as u64)).await;
        daemon.signal("-KILL");
        daemon.wait_exit(Duration::from_secs(10));
        drop(daemon);
        // Down for a moment, as after a real crash: the tills meet refused connections.
        tokio::time::sleep(Duration::from_millis(100)).await;
        daemon = Daemon::start_with_config(dir.path(), FAST, &args);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked: BTreeMap<String, (Vec<u8>, String)> = BTreeMap::new();
    for t in tills {
        acked.extend(t.await.unwrap());
    }
    let run_secs = started.elapsed().as_secs_f64();
    let injected = ofd.stats().injected_failures;
    ofd.set_faults(mock_ofd::Faults::default());
    let s = wait_drained(&base, acked.len(), Duration::from_secs(90)).await;
    assert_eq!(s["dlq_size"], 0, "{s}");

    // Every acknowledged receipt is there, once per key, with the very answer the till got.
    let client = reqwest::Client::new();
    let mut numbers = Vec::new();
    let mut ids = HashMap::new();
    for (key, (answer, id)) in &acked {
        let r = resend(&client, &base, key).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            &answer[..],
            "{key}: replay differs from the first answer"
        );
        let v: Value = serde_json::from_slice(answer).unwrap();
        numbers.push(v["fiscal_doc"]["fiscal_doc_number"].as_i64().unwrap());
        assert!(
            ids.insert(id.clone(), key.clone()).is_none(),
            "{id} issued for two keys"
        );
    }
    numbers.sort_unstable();
    // Document 1 opened the shift (a fiscal document of its own); every later number is a
    // receipt that a till got, once: unique and gap-free up to the register's last document.
    let shift: Value = client
        .get(format!("{base}/v1/kkt/shift"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shift["number"], 1, "{shift}");
    let last = shift["last_fiscal_doc_number"].as_i64().unwrap();
    let expected: Vec<i64> = (2..=last).collect();
    assert_eq!(numbers, expected, "fiscal numbers must be unique and gap-free");

    // The OFD holds each receipt exactly once, with the number it was printed with.
    let stats = ofd.stats();
    assert_eq!(stats.unique_keys as usize, acked.len());
    let deliveries = ofd.deliveries();
    for id in ids.keys() {
        assert!(deliveries.contains_key(id), "{id} never reached the OFD");
        let doc = ofd.document(id).unwrap();
        assert_eq!(doc["receipt_id"], id.as_str());
    }
    report(
        "crash_sigkill_loop",
        json!({
            "kills": KILLS,
            "tills": TILLS,
            "seconds": (run_secs * 10.0).round() / 10.0,
            "acknowledged": acked.len(),
            "lost": 0,
            "issued_twice": 0,
            "fiscal_numbers_gap_free": true,
            "client_retries": retries.load(Ordering::Relaxed),
            "ofd_failures_injected": injected,
            "ofd_unique_receipts": stats.unique_keys,
            "ofd_repeat_sends_deduplicated": stats.duplicates,
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_manual_dlq_retry_leaves_each_entry_either_retried_or_still_in_the_dlq() {
    const N: usize = 30;
    let ofd = mock_ofd_with(mock_ofd::Faults {
        reject_pos_ids: vec!["POS-0".into()],
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (listen, base) = fixed_address();
    let args = [
        "--ofd-url",
        &ofd.url(),
        "--listen",
        &listen,
        "--admin-token",
        "crash-admin-token-0123456789abcdef-0123",
    ];
    let client = reqwest::Client::new();
    let mut kills = 0;
    let mut retried_before_kill = Vec::new();
    let mut daemon = Daemon::start_with_config(dir.path(), FAST, &args);
    for i in 0..N {
        let r = client
            .post(format!("{base}/v1/kkt/receipt"))
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", format!("dlq-{i}"))
            .body(body(0, i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&client, &base).await["dlq_size"] != N {
        assert!(Instant::now() < deadline, "rejections did not reach the DLQ");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    ofd.set_faults(mock_ofd::Faults::default());
    // Kill at several delays after the retry request leaves: before, during and after its commit.
    for delay_ms in [0u64, 2, 5, 20] {
        let retry = client
            .post(format!("{base}/v1/kkt/dlq/retry"))
            .bearer_auth("crash-admin-token-0123456789abcdef-0123")
            .send();
        let retry = tokio::spawn(retry);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        daemon.signal("-KILL");
        daemon.wait_exit(Duration::from_secs(10));
        kills += 1;
        let answered = matches!(retry.await.unwrap(), Ok(r) if r.status() == 200);
        drop(daemon);
        daemon = Daemon::start_with_config(dir.path(), FAST, &args);
        // Consistent after the crash: each receipt is in the DLQ (failed) or out of it (not failed).
        let dlq: Value = client
            .get(format!("{base}/v1/kkt/dlq"))
            .bearer_auth("crash-admin-token-0123456789abcdef-0123")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let in_dlq = dlq["entries"].as_array().map_or(0, Vec::len);
        let s = status(&client, &base).await;
        assert_eq!(s["failed"].as_u64().unwrap() as usize, in_dlq, "{s} vs {dlq}");
        assert_eq!(s["total_receipts"], N);
        retried_before_kill.push(json!({"delay_ms": delay_ms, "answered": answered, "left_in_dlq": in_dlq}));
        if in_dlq == 0 {
            break;
        }
    }
    // Whatever is left is retried now; everything is delivered once.
    let r = client
        .post(format!("{base}/v1/kkt/dlq/retry"))
        .bearer_auth("crash-admin-token-0123456789abcdef-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_drained(&base, N, Duration::from_secs(60)).await;
    let stats = ofd.stats();
    assert_eq!(stats.unique_keys as usize, N);
    report(
        "crash_during_dlq_retry",
        json!({
            "receipts": N,
            "kills": kills,
            "lost": 0,
            "issued_twice": 0,
            "ofd_unique_receipts": stats.unique_keys,
            "rounds": retried_before_kill,
        }),
    );
}
