//! Exactly once on a real register, step by step (issue 17, docs/contract.md §10): the adapter
//! (`kkt-adapterd`, ATOL driver) is stopped dead at each named step of a sale — by a failpoint
//! inside it (`KKT_TEST_FAILPOINT`, core/src/failpoint.rs: the process aborts there, as at a
//! power cut) or by SIGKILL while `mock-atol` holds the device at a step — and restarted; the
//! till repeats its key until it has a final answer. For every step: what the FN holds, what the
//! adapter recorded, what the till was told — and never two documents, never a sale lost. The
//! table goes to RELIABILITY.md ("Exactly once on a real register").

mod common;

use common::*;
use mock_atol::Faults;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const COFFEE: &str = r#"{"pos_id":"POS-A","type":"sale","items":[{"name":"Кофе","price":150,"qty":1}],"payments":[{"type":"cash","amount":150}]}"#;

/// How the sale is stopped.
#[derive(Clone, Copy)]
enum Stop {
    /// The adapter dies at this failpoint.
    Failpoint(&'static str),
    /// The device writes the FN and holds the job; the adapter is killed then. `lost`: the web
    /// server also forgets the job (restarted with its queue in memory).
    FnWritten { lost: bool },
    /// The adapter is killed right after the till got its answer.
    Answered,
    /// The adapter lives; the device answers an error after the FN wrote the document.
    ErrorAfterWrite(i64),
    /// The adapter lives; the web server accepts the job and loses it before it runs.
    JobVanished,
}

async fn run_step(name: &str, stop: Stop) -> Value {
    let atol = mock_atol::spawn("127.0.0.1:0".parse().unwrap(), None, "7380440700000007")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[kkt]\ndriver = \"atol\"\nwrite_slips = false\nanswer_within_ms = 1500\nretry_ms = 50\n[kkt.atol]\nurl = \"{}\"\njob_bound_ms = 1000\npoll_ms = 10\n",
        atol.url()
    );
    let (listen, base) = fixed_address();
    let args = ["--listen", &listen];
    let env: Vec<(&str, &str)> = match stop {
        Stop::Failpoint(p) => vec![("KKT_TEST_FAILPOINT", p)],
        _ => Vec::new(),
    };
    match stop {
        Stop::FnWritten { .. } => atol.set_faults(Faults {
            hang_after_write: true,
            ..Faults::default()
        }),
        Stop::ErrorAfterWrite(code) => atol.set_faults(Faults {
            error_after_write: Some(code),
            ..Faults::default()
        }),
        Stop::JobVanished => atol.set_faults(Faults {
            vanish_next_job: true,
            ..Faults::default()
        }),
        _ => {}
    }
    let mut daemon = Daemon::start_with_env(dir.path(), &config, &args, &env);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let first = tokio::spawn({
        let (client, base) = (client.clone(), base.clone());
        async move {
            match send(&client, &base, "step", COFFEE.to_string()).await {
                Ok(r) => format!("{}", r.status().as_u16()),
                Err(_) => "no answer (connection lost)".to_string(),
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    match stop {
        Stop::Failpoint(_) => {
            let status = daemon.wait_exit(Duration::from_secs(20));
            assert!(!status.success(), "{name}: the failpoint did not fire");
        }
        Stop::FnWritten { lost } => {
            while !atol.documents().iter().any(|d| d.kind == "receipt") {
                assert!(Instant::now() < deadline, "{name}: the device never wrote it");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            daemon.signal("-KILL");
            daemon.wait_exit(Duration::from_secs(10));
            if lost {
                atol.forget_jobs();
            }
            atol.set_faults(Faults::default());
        }
        Stop::Answered | Stop::ErrorAfterWrite(_) | Stop::JobVanished => {}
    }
    let told = first.await.unwrap();
    if let Stop::Answered = stop {
        daemon.signal("-KILL");
        daemon.wait_exit(Duration::from_secs(10));
    }
    let at_stop = atol
        .documents()
        .iter()
        .filter(|d| d.kind.starts_with("receipt"))
        .count();
    let restarted = !matches!(stop, Stop::ErrorAfterWrite(_) | Stop::JobVanished);
    if restarted {
        drop(daemon);
        daemon = Daemon::start_with_config(dir.path(), &config, &args);
    }
    // The till repeats its key until the answer is final.
    let (answer, tries) = {
        let mut tries = 0;
        loop {
            assert!(
                Instant::now() < deadline + Duration::from_secs(20),
                "{name}: no final answer"
            );
            tries += 1;
            if let Ok(r) = send(&client, &daemon.base, "step", COFFEE.to_string()).await
                && r.status() == 200
            {
                break (r.bytes().await.unwrap().to_vec(), tries);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let v: Value = serde_json::from_slice(&answer).unwrap();
    let id = v["receipt_id"].as_str().unwrap();
    let tag = kkt_core::kkt::receipt_tag(id);
    let docs: Vec<_> = atol
        .documents()
        .into_iter()
        .filter(|d| d.kind.starts_with("receipt"))
        .collect();
    let ours: Vec<i64> = docs
        .iter()
        .filter(|d| d.tag.as_deref() == Some(tag.as_str()))
        .map(|d| d.number)
        .collect();
    let number = v["fiscal_doc"]["fiscal_doc_number"].as_i64().unwrap();
    let stored: Value = client
        .get(format!("{}/v1/kkt/receipt/{id}", daemon.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Counted from what the FN holds, before anything is asserted: a sale the till was told
    // of and the FN does not hold is lost; more than one document of it are doubles.
    let lost = usize::from(ours.is_empty());
    let doubles = ours.len().saturating_sub(1) + docs.len().saturating_sub(ours.len().max(1));
    let row = json!({"step": name, "fn_at_stop": format!("{at_stop} receipt(s)"),
           "fn_holds": format!("{} receipt(s); this sale's tag on document(s) {ours:?}", docs.len()),
           "adapter_recorded": format!("{} (document {})", stored["status"].as_str().unwrap_or("?"),
                                       stored["fiscal_doc"]["fiscal_doc_number"]),
           "till_told_first": told, "till_told_finally": format!("200, document {number}, after {tries} tries"),
           "documents_for_the_sale": ours.len(), "doubles": doubles, "lost": lost});
    assert_eq!(docs.len(), 1, "{name}: the FN holds one receipt: {docs:?}");
    assert_eq!(ours.len(), 1, "{name}: and it is this sale's");
    assert_eq!(number, ours[0], "{name}: the till got the FN's number");
    assert_eq!(
        stored["fiscal_doc"]["fiscal_doc_number"].as_i64(),
        Some(number),
        "{name}: {stored}"
    );
    let replay = send(&client, &daemon.base, "step", COFFEE.to_string()).await.unwrap();
    assert_eq!(
        &replay.bytes().await.unwrap()[..],
        &answer[..],
        "{name}: the replay is the same bytes"
    );
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_stopped_at_every_step_of_a_sale_leaves_one_document_which_the_till_gets() {
    let steps = [
        (
            "journal written, job not posted",
            Stop::Failpoint("atol.journal_written"),
        ),
        ("job accepted by the web server", Stop::Failpoint("atol.posted")),
        (
            "FN written, result not read (job kept)",
            Stop::FnWritten { lost: false },
        ),
        ("FN written, result not read (job lost)", Stop::FnWritten { lost: true }),
        ("result read, not stored", Stop::Failpoint("atol.result_read")),
        (
            "result stored, till not answered",
            Stop::Failpoint("buffer.result_committed"),
        ),
        ("till answered", Stop::Answered),
        ("device error after the FN write (241)", Stop::ErrorAfterWrite(241)),
        ("device error after the FN write (177)", Stop::ErrorAfterWrite(177)),
        ("job accepted, lost before it ran", Stop::JobVanished),
    ];
    let mut rows = Vec::new();
    for (name, stop) in steps {
        rows.push(run_step(name, stop).await);
    }
    for p in kkt_core::failpoint::POINTS {
        assert!(
            steps.iter().any(|(_, s)| matches!(s, Stop::Failpoint(q) if q == p)),
            "failpoint {p} has no step here"
        );
    }
    let sum = |k: &str| rows.iter().map(|r| r[k].as_u64().unwrap_or(0)).sum::<u64>();
    let (doubles, lost) = (sum("doubles"), sum("lost"));
    report("atol_steps", json!({"steps": rows, "doubles": doubles, "lost": lost}));
}
