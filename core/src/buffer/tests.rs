//! The buffer's own tests: storage failures, register trouble, refusals and crashes.
use super::*;
use crate::kkt::{DeviceError, Fiscalized, Kkt, MockKkt, MockKktConfig, Task};
use rusqlite::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Defaults for a buffer under test: the API's real answers, a 10 s answer bound.
pub(crate) fn config(path: PathBuf) -> BufferConfig {
    BufferConfig {
        path,
        capacity: 100_000,
        max_db_bytes: 0,
        answer: crate::api::answers::receipt,
        answer_within: Duration::from_secs(10),
        device_retry: Duration::from_millis(50),
        late_sale_after: None,
        zone: crate::time::Zone::Utc,
        clock: crate::time::Clock::new(),
    }
}

/// The mock register with an in-memory fiscal memory and no slips.
pub(crate) fn mock_kkt() -> Arc<dyn Kkt> {
    Arc::new(MockKkt::open(MockKktConfig::for_tests()).unwrap())
}

fn request(key: &str, body: &str) -> AdmitRequest {
    AdmitRequest {
        idempotency_key: key.into(),
        body_hash: format!("{:x}", body.len()),
        receipt: crate::receipt::parse(body.as_bytes(), &Default::default()).unwrap(),
    }
}

const SEED: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

#[tokio::test]
async fn a_storage_failure_is_reported_until_a_receipt_is_stored_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = BufferConfig {
        max_db_bytes: 256 * 1024,
        ..config(dir.path().join("buffer.db"))
    };
    let buffer = Buffer::open(config, mock_kkt()).unwrap();
    let item = format!(r#"{{"name":"{}","price":1,"qty":1}}"#, "x".repeat(128));
    let body = format!(
        r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"cash","amount":20}}]}}"#,
        vec![item; 20].join(",")
    );
    let mut refused = false;
    for i in 0..2000 {
        match buffer.admit(request(&format!("k{i}"), &body)).await {
            Ok(_) => assert!(buffer.writer_stats().failing().is_none()),
            // The full disk meets the intent row or, a commit later, the register's result.
            Err(AdmitError::Storage(_) | AdmitError::ResultUnstored(_)) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(refused, "the cap was never reached");
    assert!(buffer.writer_stats().failing().is_some());
    // A commit that stores no receipt (an empty claim, an event that fits) proves nothing.
    buffer.log(Vec::new()).await.unwrap();
    assert!(
        buffer.writer_stats().failing().is_some(),
        "still failing until a receipt is stored"
    );
    buffer.close().await;
}

/// A register that is out of paper for its first `unavailable` calls, then registers
/// through the mock; it can refuse receipts of one till.
struct Flaky {
    inner: Arc<dyn Kkt>,
    unavailable: AtomicUsize,
    refuse_pos: &'static str,
    fiscalize_calls: AtomicUsize,
    lookups: AtomicUsize,
}

impl Kkt for Flaky {
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
        self.fiscalize_calls.fetch_add(1, Ordering::SeqCst);
        if self
            .unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return tasks
                .iter()
                .map(|_| Err(DeviceError::Unavailable("нет бумаги".into())))
                .collect();
        }
        let (refuse, ok): (Vec<_>, Vec<_>) = tasks.iter().partition(|t| t.receipt.pos_id == self.refuse_pos);
        assert!(refuse.is_empty() || ok.is_empty(), "one kind per test call");
        if !refuse.is_empty() {
            return refuse
                .iter()
                .map(|_| {
                    Err(DeviceError::Refused {
                        code: "3926".into(),
                        message: "Неверная сумма".into(),
                    })
                })
                .collect();
        }
        self.inner.fiscalize(tasks)
    }
    fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.lookup(task)
    }
    fn shift(&self, now: chrono::DateTime<chrono::Utc>) -> Result<crate::kkt::ShiftStatus, DeviceError> {
        self.inner.shift(now)
    }
    fn close_shift(&self, now: chrono::DateTime<chrono::Utc>) -> Result<crate::kkt::ZReport, DeviceError> {
        self.inner.close_shift(now)
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
}

fn flaky(unavailable: usize) -> Arc<Flaky> {
    Arc::new(Flaky {
        inner: mock_kkt(),
        unavailable: AtomicUsize::new(unavailable),
        refuse_pos: "BAD",
        fiscalize_calls: AtomicUsize::new(0),
        lookups: AtomicUsize::new(0),
    })
}

#[tokio::test]
async fn a_register_out_of_paper_gets_the_till_a_202_and_the_receipt_is_registered_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let kkt = flaky(3);
    let buffer = Buffer::open(config(dir.path().join("buffer.db")), kkt.clone()).unwrap();
    let first = buffer.admit(request("paper", SEED)).await.unwrap();
    assert_eq!(first.http_status, 202);
    let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(
        (body["status"].as_str(), body["reason"].as_str()),
        (
            Some("awaiting_device"),
            Some("the fiscal register is not available: нет бумаги")
        )
    );
    assert_eq!(buffer.counts().fiscalizing, 1);
    // A replay meanwhile gets the same interim answer, not 409 and not a guess.
    let again = buffer.admit(request("paper", SEED)).await.unwrap();
    assert_eq!((again.http_status, again.replayed), (202, true));
    // Paper back: retried (looked up first each time) and registered.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while buffer.counts().pending == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never registered: {:?}",
            buffer.counts()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        kkt.lookups.load(Ordering::SeqCst) >= 3,
        "every retry asks the register first"
    );
    let last = buffer.admit(request("paper", SEED)).await.unwrap();
    assert_eq!((last.http_status, last.replayed), (200, true));
    let done: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(done["fiscal_doc"]["fiscal_doc_number"], 2, "1 opened the shift");
    assert_eq!(buffer.admit(request("paper", SEED)).await.unwrap().body, last.body);
    buffer.close().await;
}

#[tokio::test]
async fn a_receipt_the_register_refuses_is_a_422_with_its_code_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let kkt = flaky(0);
    let buffer = Buffer::open(config(dir.path().join("buffer.db")), kkt.clone()).unwrap();
    let body = SEED.replace("POS-001", "BAD");
    let first = buffer.admit(request("bad", &body)).await.unwrap();
    assert_eq!(first.http_status, 422);
    let v: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(
        (v["code"].as_str(), v["device_error"]["code"].as_str()),
        (Some("kkt_refused"), Some("3926"))
    );
    let replay = buffer.admit(request("bad", &body)).await.unwrap();
    assert_eq!(
        (replay.http_status, replay.replayed, &replay.body),
        (422, true, &first.body)
    );
    assert_eq!(kkt.fiscalize_calls.load(Ordering::SeqCst), 1, "never sent again");
    let c = buffer.counts();
    assert_eq!((c.refused, c.unsynced(), c.total()), (1, 0, 0));
    buffer.close().await;
}

#[tokio::test]
async fn an_intent_left_by_a_crash_is_looked_up_on_the_register_and_never_registered_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let memory = dir.path().join("mock-kkt.db");
    let mock = |path: &PathBuf| -> Arc<dyn Kkt> {
        Arc::new(
            MockKkt::open(MockKktConfig {
                state_path: Some(path.clone()),
                ..MockKktConfig::for_tests()
            })
            .unwrap(),
        )
    };
    // A register that is never reached: the intent stays `fiscalizing`, as after a crash
    // between the intent's commit and the register's answer.
    let buffer = Buffer::open(config(path.clone()), flaky(usize::MAX)).unwrap();
    assert_eq!(buffer.admit(request("crash", SEED)).await.unwrap().http_status, 202);
    let receipt_id = buffer.counts();
    assert_eq!(receipt_id.fiscalizing, 1);
    buffer.close().await;
    // Meanwhile the register did register it (the answer was what got lost).
    let stored: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT request_json FROM receipts", [], |r| r.get(0))
        .unwrap();
    let id: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT id FROM receipts", [], |r| r.get(0))
        .unwrap();
    let register = mock(&memory);
    let task = Task::new(id.clone(), serde_json::from_str(&stored).unwrap(), chrono::Utc::now());
    let on_device = register.fiscalize(std::slice::from_ref(&task)).remove(0).unwrap();
    drop(register);
    // The restart resumes it: looked up, found, stored; the register has one document.
    let counting = Arc::new(Flaky {
        inner: mock(&memory),
        unavailable: AtomicUsize::new(0),
        refuse_pos: "BAD",
        fiscalize_calls: AtomicUsize::new(0),
        lookups: AtomicUsize::new(0),
    });
    let buffer = Buffer::open(config(path), counting.clone()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while buffer.counts().pending == 0 {
        assert!(std::time::Instant::now() < deadline, "never resumed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counting.lookups.load(Ordering::SeqCst), 1);
    assert_eq!(
        counting.fiscalize_calls.load(Ordering::SeqCst),
        0,
        "found on the register: not sent again"
    );
    let replay = buffer.admit(request("crash", SEED)).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&replay.body).unwrap();
    assert_eq!(v["fiscal_doc"]["fiscal_doc_number"], on_device.doc.fiscal_doc_number);
    assert_eq!(
        v["fiscal_doc"]["fiscal_sign"].as_str(),
        Some(on_device.doc.fiscal_sign.as_str())
    );
    buffer.close().await;
}

/// Refuses the receipts of till `REFUSE`; sends those of till `REVIEW` to review until a
/// person forces them; registers the rest through the mock.
struct ByTill(Arc<dyn Kkt>);

impl Kkt for ByTill {
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
        tasks
            .iter()
            .map(|t| match t.receipt.pos_id.as_str() {
                "REFUSE" => Err(DeviceError::Refused {
                    code: "3926".into(),
                    message: "Неверная сумма".into(),
                }),
                "REVIEW" if !t.forced => Err(DeviceError::NeedsReview {
                    reason: "тест".into(),
                    candidates: Vec::new(),
                }),
                _ => self.0.fiscalize(std::slice::from_ref(t)).remove(0),
            })
            .collect()
    }
    fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError> {
        self.0.lookup(task)
    }
    fn shift(&self, now: chrono::DateTime<chrono::Utc>) -> Result<crate::kkt::ShiftStatus, DeviceError> {
        self.0.shift(now)
    }
    fn close_shift(&self, now: chrono::DateTime<chrono::Utc>) -> Result<crate::kkt::ZReport, DeviceError> {
        self.0.close_shift(now)
    }
    fn describe(&self) -> String {
        "by till".into()
    }
}

/// The writer keeps its counts as rows change (issue 18): after every kind of change, in a
/// seeded random order, they equal a recount of the rows — and a reopened buffer counts the same.
#[tokio::test]
async fn the_kept_counts_equal_a_recount_after_every_kind_of_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let buffer = Buffer::open(config(path.clone()), Arc::new(ByTill(mock_kkt()))).unwrap();
    let reader = Connection::open(&path).unwrap();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let lease = Duration::from_secs(60);
    let mut kinds = [0usize; 9];
    let mut occupied = [false; 6];
    for step in 0..400 {
        let now = 1_000_000 + step as i64 * 1000;
        let kind = next(9) as usize;
        kinds[kind] += 1;
        match kind {
            0..=2 => {
                let till = ["POS-1", "POS-2", "REFUSE", "REVIEW"][next(4) as usize];
                let body = SEED.replace("POS-001", till);
                let _ = buffer.admit(request(&format!("k{step}"), &body)).await;
            }
            3 | 4 => {
                let claimed = buffer.claim_due(1 + next(3) as usize, now, lease).await.unwrap();
                let results = claimed
                    .into_iter()
                    .map(|c| {
                        let d = match next(5) {
                            0 | 1 => Disposition::Synced {
                                http_status: 200,
                                ofd_id: None,
                                response: "{}".into(),
                            },
                            2 => Disposition::Retry {
                                error: "503".into(),
                                next_attempt_at_ms: now + 500 * next(4) as i64,
                            },
                            3 => Disposition::Dead {
                                reason: DeadReason::RejectedByOfd,
                                error: "422".into(),
                                http_status: Some(422),
                            },
                            _ if next(2) == 0 => Disposition::Release,
                            _ => Disposition::Postpone {
                                reason: "fn".into(),
                                next_attempt_at_ms: now + 2000,
                            },
                        };
                        (c.receipt_id, d)
                    })
                    .collect();
                buffer.record(results, now).await.unwrap();
            }
            5 => {
                if next(3) == 0 {
                    // Claimed and never answered: the lease runs out.
                    buffer.claim_due(1, now, Duration::from_millis(1)).await.unwrap();
                }
                buffer.recover_leases(Some(now + 10)).await.unwrap();
            }
            6 => {
                let dlq = buffer.dlq().await.unwrap();
                let one = dlq.first().filter(|_| next(2) == 0).map(|d| d.receipt_id.clone());
                buffer.retry_dlq(one).await.unwrap();
            }
            7 => {
                if let Some(r) = buffer.review().await.unwrap().first() {
                    let how = if next(2) == 0 {
                        Resolution::Void
                    } else {
                        Resolution::Register
                    };
                    buffer.resolve(r.receipt_id.clone(), how, "тест".into()).await.unwrap();
                }
            }
            _ => {
                if next(2) == 0 {
                    buffer.make_due(now, "test").await.unwrap();
                } else {
                    buffer.purge(now + 1, 1 + next(5) as usize).await.unwrap();
                }
            }
        }
        // The device thread's results land on their own time (a receipt a person sent to the
        // register again): the counts are published just after their commit, so a recount may
        // be a moment ahead. Kept counts that drifted never catch up; ones that lag do, at once.
        let mut tries = 0;
        let counted = loop {
            let kept = Counts {
                last_synced_ms: None,
                ..buffer.counts()
            };
            let counted = writer::recount(&reader).unwrap();
            tries += 1;
            if kept == counted {
                break counted;
            }
            assert!(
                tries < 200,
                "step {step} (change of kind {kind}): {kept:?} != {counted:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let c = counted;
        for (seen, n) in occupied
            .iter_mut()
            .zip([c.pending, c.synced, c.failed, c.refused, c.needs_review, c.voided])
        {
            *seen |= n > 0;
        }
    }
    assert!(kinds.iter().all(|k| *k > 20), "every kind of change ran: {kinds:?}");
    assert!(
        occupied.iter().all(|o| *o),
        "every status was occupied at some step: {occupied:?}"
    );
    let before = buffer.counts();
    buffer.close().await;
    let reopened = Buffer::open(config(path), mock_kkt()).unwrap();
    assert_eq!(reopened.counts(), before);
    reopened.close().await;
}
