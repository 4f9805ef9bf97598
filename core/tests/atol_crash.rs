//! Exactly once on a real register's protocol (issue 11): `kkt-adapterd` with the ATOL driver
//! against `mock-atol` (in this process, so a kill of the daemon is not a kill of the device),
//! killed with SIGKILL again and again while tills post receipts and retry their keys. The kills
//! land at every step of a sale — after the intent row, after the job was posted, while the
//! device registers, before the result is stored — and one job in several is "lost" by the web
//! server after the FN registered it. Afterwards every acknowledged sale is on the device exactly
//! once, with the numbers the till was given, and no receipt is there twice.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_step_of_a_sale_leaves_each_acknowledged_sale_on_the_device_exactly_once() {
    const KILLS: usize = 8;
    const TILLS: usize = 3;
    let atol = mock_atol::spawn("127.0.0.1:0".parse().unwrap(), None, "7380440700000009")
        .await
        .unwrap();
    // Each task takes 15 ms: a kill has time to land while the device works.
    atol.set_faults(mock_atol::Faults {
        task_ms: 15,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[kkt]\ndriver = \"atol\"\nwrite_slips = false\nanswer_within_ms = 2000\n[kkt.atol]\nurl = \"{}\"\njob_bound_ms = 2000\npoll_ms = 10\n",
        atol.url()
    );
    let (listen, base) = fixed_address();
    let args = ["--listen", &listen];
    let mut daemon = Daemon::start_with_config(dir.path(), &config, &args);
    let stop = Arc::new(AtomicBool::new(false));
    let retries = Arc::new(AtomicU64::new(0));
    let tills: Vec<_> = (0..TILLS)
        .map(|c| tokio::spawn(till(base.clone(), c, stop.clone(), retries.clone())))
        .collect();
    let started = Instant::now();
    // How many of the armed "lost after registration" faults a job actually ran into (the mock
    // clears the flag when it fires).
    let mut armed = 0;
    let mut fired = 0;
    for k in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + 97 * k as u64)).await;
        if k % 3 == 1 {
            // The web server loses the next job after the FN registers it.
            fired += usize::from(armed > fired && !atol.faults().crash_after_register);
            armed += 1;
            let mut f = atol.faults();
            f.crash_after_register = true;
            atol.set_faults(f);
        }
        daemon.signal("-KILL");
        daemon.wait_exit(Duration::from_secs(10));
        drop(daemon);
        tokio::time::sleep(Duration::from_millis(100)).await;
        daemon = Daemon::start_with_config(dir.path(), &config, &args);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    fired += usize::from(armed > fired && !atol.faults().crash_after_register);
    let mut acked: BTreeMap<String, (Vec<u8>, String)> = BTreeMap::new();
    for t in tills {
        acked.extend(t.await.unwrap());
    }
    let run_secs = started.elapsed().as_secs_f64();
    // The device's receipts, by the receipt id their job's uuid carries.
    let mut on_device: HashMap<String, Vec<i64>> = HashMap::new();
    for d in atol.documents().into_iter().filter(|d| d.kind == "receipt") {
        let id = d.uuid.split('.').next().unwrap_or_default().to_string();
        on_device.entry(id).or_default().push(d.number);
    }
    let twice: Vec<_> = on_device.iter().filter(|(_, n)| n.len() > 1).collect();
    assert!(twice.is_empty(), "receipts registered twice on the device: {twice:?}");
    let client = reqwest::Client::new();
    for (key, (answer, id)) in &acked {
        let v: Value = serde_json::from_slice(answer).unwrap();
        let number = v["fiscal_doc"]["fiscal_doc_number"].as_i64().unwrap();
        assert_eq!(
            on_device.get(id),
            Some(&vec![number]),
            "{key}: the device's number is the one the till got"
        );
        let replay = resend(&client, &base, key).await;
        assert_eq!(replay.status(), 200);
        assert_eq!(&replay.bytes().await.unwrap()[..], &answer[..], "{key}: replay differs");
    }
    // Every receipt on the device belongs to an acknowledged sale or to one the adapter still
    // holds (a till stopped before its answer): nothing on the device is unknown to the adapter.
    let held: Value = status(&client, &base).await;
    let total = held["total_receipts"].as_u64().unwrap() as usize;
    assert!(
        on_device.len() <= total,
        "{} on the device, {total} in the adapter",
        on_device.len()
    );
    assert!(
        fired > 0,
        "no job was lost after registration ({armed} faults armed): the lookup went untested"
    );
    assert!(acked.len() >= TILLS * 3, "the tills got through: {}", acked.len());
    report(
        "atol_sigkill_loop",
        json!({"kills": KILLS, "tills": TILLS, "seconds": (run_secs * 10.0).round() / 10.0,
               "sales_acknowledged": acked.len(), "sales_on_the_device": on_device.len(),
               "registered_twice": 0, "lost_job_faults_armed": armed, "lost_job_faults_fired": fired,
               "client_retries": retries.load(Ordering::Relaxed)}),
    );
}
