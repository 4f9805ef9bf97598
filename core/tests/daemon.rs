//! The `kkt-adapterd` process itself: flags, signals, crashes, and refusing to run unsafely.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::*;

#[test]
fn help_documents_every_setting() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--data-dir",
        "--listen",
        "--ofd-url",
        "--admin-token",
        "KKT_CONFIG",
        "KKT_DATA_DIR",
        "KKT_LISTEN",
        "KKT_OFD_URL",
        "KKT_ADMIN_TOKEN",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}

#[tokio::test]
async fn sigterm_finishes_a_request_in_flight_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    // A slow register (1.5 s a receipt), so the request is surely in flight at the signal.
    let mut d = Daemon::start_with_config(dir.path(), "[kkt]\nprint_latency_ms = 1500\n", &[]);
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn({
        let (client, base) = (client.clone(), d.base.clone());
        async move {
            let r = post(&client, &base, "in-flight").await;
            (r.status().as_u16(), r.bytes().await.unwrap())
        }
    });
    // Its intent is stored and the register is busy with it: now the signal.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status(&client, &d.base).await["fiscalizing"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never reached the register"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    d.signal("-TERM");
    let (code, body) = in_flight.await.unwrap();
    assert_eq!(
        code,
        200,
        "the request in flight is answered: {}",
        String::from_utf8_lossy(&body)
    );
    let status_code = d.wait_exit(Duration::from_secs(30));
    assert_eq!(status_code.code(), Some(0));
    let logs: Vec<String> = d.log.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
    // What the till got is what the adapter stored.
    let d = Daemon::start(dir.path(), &[]);
    let replay = post(&client, &d.base, "in-flight").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn a_second_instance_on_the_same_data_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Daemon::start(dir.path(), &[]);
    let out = command(dir.path(), &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another KKT Adapter instance is already running"), "{err}");
}

#[test]
fn a_corrupt_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"this is not an sqlite database, but somebody's receipts might be in it".repeat(100);
    std::fs::write(dir.path().join("buffer.db"), &garbage).unwrap();
    std::fs::write(dir.path().join("none.toml"), "").unwrap();
    let out = command(dir.path(), &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a valid KKT Adapter buffer") && err.contains("untouched"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.path().join("buffer.db")).unwrap(), garbage);
}

#[test]
fn an_unusable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = refused_start(&file.join("sub"));
    assert!(err.contains("does not exist") && err.contains("mounted"), "{err}");
}

#[tokio::test]
async fn sigkill_during_sends_loses_nothing_and_the_restart_delivers_each_receipt_once() {
    let ofd = mock_ofd::spawn(
        "127.0.0.1:0".parse().unwrap(),
        None,
        mock_ofd::Faults {
            hang: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = ofd.url();
    let mut d = Daemon::start(dir.path(), &["--ofd-url", &url]);
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = post(&client, &d.base, &format!("k{i}")).await;
        assert_eq!(r.status(), 200);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["receipt_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Wait until sends are in flight (rows `syncing`), then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&client, &d.base).await["syncing"].as_u64() == Some(0) {
        assert!(Instant::now() < deadline, "nothing reached syncing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.signal("-KILL");
    d.wait_exit(Duration::from_secs(10));
    drop(d);
    ofd.set_faults(mock_ofd::Faults::default());
    let d = Daemon::start(dir.path(), &["--ofd-url", &url]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&client, &d.base).await;
        if s["synced"] == 6 {
            assert_eq!(s["total_receipts"], 6);
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered after restart: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliveries = ofd.deliveries();
    for id in &ids {
        assert_eq!(
            deliveries.get(id),
            Some(&1),
            "{id} delivered {:?} times",
            deliveries.get(id)
        );
    }
    // Replays after the crash still give the original answers.
    let r = post(&client, &d.base, "k0").await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
}

/// Every line says what it belongs to (issue 18): a request's lines carry its
/// `request{method, path}` span, a sync cycle's its `cycle{n, manual}` span.
#[tokio::test]
async fn log_lines_carry_the_request_and_the_cycle_they_belong_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--admin-token", "span-test-token-0123456789abcdef-0123"]);
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &d.base, "span-1").await.status(), 200);
    let closed = client
        .post(format!("{}/v1/kkt/shift/close", d.base))
        .bearer_auth("span-test-token-0123456789abcdef-0123")
        .header("Idempotency-Key", "close-1")
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut request, mut cycle) = (None, None);
    while (request.is_none() || cycle.is_none()) && Instant::now() < deadline {
        match d.log.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains("counter operation answered") && line.contains("operation=shift_close") => {
                request = Some(line)
            }
            Ok(line) if line.contains("sync cycle completed") => cycle = Some(line),
            _ => {}
        }
    }
    let request = request.expect("the shift was closed in the log");
    assert!(
        request.contains("request{method=POST path=/v1/kkt/shift/close"),
        "{request}"
    );
    let cycle = cycle.expect("a sync cycle delivered the receipt");
    assert!(cycle.contains("cycle{n=") && cycle.contains("manual=false"), "{cycle}");
}
