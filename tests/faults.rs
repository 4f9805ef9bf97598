//! The OFD fault matrix (issue 5) against a real mock OFD over HTTP: for each fault, how the
//! adapter classifies it, that attempts are counted, how the breaker moves, that an open
//! breaker keeps the call rate bounded (no busy loop), and that everything is delivered exactly
//! once after recovery. Plus: the DLQ only after 20 real attempts (breaker refusals are not
//! attempts) or a rejection.

use kkt_tests::*;
use mock_ofd::Faults;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long each fault is held before recovery.
const WINDOW: Duration = Duration::from_secs(3);
const OPEN_FOR: Duration = Duration::from_millis(500);
const THRESHOLD: u32 = 5;
const RECEIPTS: usize = 3;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Retried with backoff; the breaker opens; `error` names the cause.
    Transient { error: &'static str, retry_after: bool },
    /// Transient for the breaker, plus the operator alarm with this status.
    Misconfigured(u16),
    /// Straight to the DLQ, breaker untouched.
    Rejected(u16),
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Mock,
    /// Nothing listens at the OFD address until recovery.
    Refused,
    /// The mock goes down and up every 250 ms during the window.
    Flapping,
}

struct Case {
    name: &'static str,
    target: Target,
    faults: Faults,
    ofd_timeout: Duration,
    expect: Expect,
}

fn failing(status: u16, retry_after: Option<u64>) -> Faults {
    Faults {
        failure_rate: 1.0,
        failure_status: status,
        retry_after,
        ..Faults::default()
    }
}

async fn ofd_attempts(t: &TestApp) -> u64 {
    let text = t.metrics().await;
    text.lines()
        .filter(|l| l.starts_with("kkt_ofd_sends_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn events(t: &TestApp) -> Vec<Value> {
    let (_, page) = t.get("/v1/kkt/buffer/events?limit=1000").await;
    page["events"].as_array().cloned().unwrap_or_default()
}

fn ms(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

async fn run(case: Case) {
    let dead = dead_url();
    let ofd = match case.target {
        Target::Refused => None,
        _ => Some(mock_ofd().await),
    };
    if let Some(o) = &ofd {
        o.set_faults(case.faults.clone());
    }
    let url = ofd.as_ref().map_or(dead.clone(), |o| o.url());
    let t = TestApp::start_with(|s| {
        s.ofd_url = Some(url);
        s.ofd.timeout = case.ofd_timeout;
        s.ofd.connect_timeout = Duration::from_millis(300);
        s.breaker.open_max = OPEN_FOR;
        s.breaker.failure_threshold = THRESHOLD;
    })
    .await;
    if case.target == Target::Flapping {
        // Down first, so the first sends meet the fault.
        ofd.as_ref().unwrap().set_faults(Faults {
            down: true,
            ..Faults::default()
        });
    }
    let mut ids = Vec::new();
    for _ in 0..RECEIPTS {
        ids.push(t.receipt(SEED_BODY).await["receipt_id"].as_str().unwrap().to_string());
    }
    // Hold the fault for the window (flapping: toggle it).
    let started = Instant::now();
    let mut down = true;
    while started.elapsed() < WINDOW {
        if case.target == Target::Flapping {
            down = !down;
            ofd.as_ref().unwrap().set_faults(Faults {
                down,
                ..Faults::default()
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let attempts_in_window = ofd_attempts(&t).await;
    let during = t.status().await;
    let evs = events(&t).await;
    let kinds: Vec<&str> = evs.iter().filter_map(|e| e["event_type"].as_str()).collect();
    let opened = kinds.iter().filter(|k| **k == "circuit_opened").count();
    let mut first_error = String::new();
    match case.expect {
        Expect::Transient { .. } | Expect::Misconfigured(_) if case.target != Target::Flapping => {
            // Attempts are counted, nothing is dead-lettered, the breaker opened, and while it is
            // open the calls are bounded: the threshold, the sends already in flight, one probe
            // per open period.
            assert_eq!(n(&during, "dlq_size"), 0, "{}: {during}", case.name);
            assert!(opened >= 1, "{}: breaker never opened: {kinds:?}", case.name);
            let bound = THRESHOLD as u64 + RECEIPTS as u64 + (WINDOW.as_millis() / OPEN_FOR.as_millis()) as u64 + 1;
            assert!(
                attempts_in_window <= bound,
                "{}: {attempts_in_window} calls in {WINDOW:?} (bound {bound}): busy loop",
                case.name
            );
            for id in &ids {
                let (_, r) = t.get(&format!("/v1/kkt/receipt/{id}")).await;
                assert!(n(&r, "retry_count") >= 1, "{}: attempts not counted: {r}", case.name);
                assert_ne!(r["status"], "failed");
                first_error = r["last_error"].as_str().unwrap_or_default().to_string();
            }
            let want = match case.expect {
                Expect::Transient { error, .. } => error.to_string(),
                Expect::Misconfigured(code) => format!("HTTP {code}"),
                Expect::Rejected(_) => unreachable!(),
            };
            assert!(
                first_error.contains(&want),
                "{}: last_error {first_error:?} should name {want:?}",
                case.name
            );
            if let Expect::Misconfigured(code) = case.expect {
                assert_eq!(during["ofd_misconfigured"], code, "{}: {during}", case.name);
                assert!(kinds.contains(&"ofd_misconfigured"), "{kinds:?}");
            }
            if let Expect::Transient { retry_after: true, .. } = case.expect {
                // The backoff is at most 500 ms here: a wait of ~1 s is the OFD's Retry-After.
                let honoured = evs
                    .iter()
                    .filter(|e| e["event_type"] == "receipt_failed")
                    .all(|e| ms(&e["details"]["next_attempt_at"]) - ms(&e["created_at"]) >= 900);
                assert!(honoured, "{}: Retry-After not honoured", case.name);
            }
        }
        Expect::Rejected(code) => {
            let s = t
                .wait_status(Duration::from_secs(10), "rejections in the DLQ", |s| {
                    n(s, "dlq_size") == RECEIPTS as u64
                })
                .await;
            assert_eq!(opened, 0, "a rejection means the OFD is up: {kinds:?}");
            assert_eq!(s["breaker"]["state"], "closed");
            assert_eq!(attempts_in_window, RECEIPTS as u64, "one attempt each, no retries");
            let (_, dlq) = t.get("/v1/kkt/dlq").await;
            for e in dlq["entries"].as_array().unwrap() {
                assert_eq!(e["reason"], "rejected_by_ofd");
                assert_eq!(e["retry_count"], 1);
                assert!(e["last_error"].as_str().unwrap().contains(&code.to_string()), "{e}");
            }
            first_error = dlq["entries"][0]["last_error"].as_str().unwrap().to_string();
        }
        _ => {
            // Flapping: the sends that met the outage failed as resets or refusals and were retried.
            let failed: Vec<&Value> = evs.iter().filter(|e| e["event_type"] == "receipt_failed").collect();
            assert!(!failed.is_empty(), "{}: no send met the outage: {kinds:?}", case.name);
            first_error = failed[0]["details"]["error"].as_str().unwrap_or_default().to_string();
            assert!(
                first_error.contains("reset") || first_error.contains("refused"),
                "{first_error}"
            );
        }
    }
    // Recovery: the OFD comes back (or the operator retries the DLQ after a fix).
    let ofd = match ofd {
        Some(o) => {
            o.set_faults(Faults::default());
            o
        }
        // The OFD starts listening at the address the adapter has been trying.
        None => mock_ofd::spawn(
            dead.trim_start_matches("http://").parse().unwrap(),
            None,
            Faults::default(),
        )
        .await
        .unwrap(),
    };
    if let Expect::Rejected(_) = case.expect {
        let (code, _) = t.admin_post("/v1/kkt/dlq/retry", Some(&t.token)).await;
        assert_eq!(code, 200);
    }
    let recovery = Instant::now();
    let s = t
        .wait_status(Duration::from_secs(20), "all delivered and the breaker closed", |s| {
            n(s, "synced") == RECEIPTS as u64 && s["breaker"]["state"] == "closed"
        })
        .await;
    assert_eq!(n(&s, "dlq_size"), 0);
    let stats = ofd.stats();
    assert_eq!(
        stats.unique_keys, RECEIPTS as u64,
        "{}: each receipt once at the OFD",
        case.name
    );
    for id in &ids {
        assert!(ofd.deliveries().contains_key(id));
    }
    let kinds: Vec<String> = events(&t)
        .await
        .iter()
        .filter_map(|e| e["event_type"].as_str().map(str::to_string))
        .filter(|k| k.starts_with("circuit_"))
        .collect();
    report(
        &format!("ofd_fault_{}", case.name),
        json!({
            "fault": case.name,
            "classified_as": if case.target == Target::Flapping {
                "mixed: reset while down, delivered while up".to_string()
            } else {
                format!("{:?}", case.expect)
            },
            "last_error": first_error.chars().take(80).collect::<String>(),
            "calls_in_window": attempts_in_window,
            "window_s": WINDOW.as_secs(),
            "open_for_ms": OPEN_FOR.as_millis() as u64,
            "breaker_transitions": kinds,
            "recovered_in_ms": recovery.elapsed().as_millis() as u64,
            "delivered": RECEIPTS,
            "ofd_unique": stats.unique_keys,
            "ofd_repeat_sends_deduplicated": stats.duplicates,
            "lost": 0,
            "issued_twice": 0,
        }),
    );
}

fn case(name: &'static str, target: Target, faults: Faults, expect: Expect) -> Case {
    Case {
        name,
        target,
        faults,
        ofd_timeout: Duration::from_secs(2),
        expect,
    }
}

const CONNECT: Expect = Expect::Transient {
    error: "refused",
    retry_after: false,
};

#[tokio::test]
async fn connection_refused() {
    run(case("refused", Target::Refused, Faults::default(), CONNECT)).await;
}

#[tokio::test]
async fn connection_reset() {
    let down = Faults {
        down: true,
        ..Faults::default()
    };
    let e = Expect::Transient {
        error: "reset by peer",
        retry_after: false,
    };
    run(case("reset", Target::Mock, down, e)).await;
}

#[tokio::test]
async fn answer_lost_after_the_ofd_accepted() {
    let lost = Faults {
        drop_answers: true,
        ..Faults::default()
    };
    let e = Expect::Transient {
        error: "reset by peer",
        retry_after: false,
    };
    run(case("reset_after_accept", Target::Mock, lost, e)).await;
}

#[tokio::test]
async fn slower_than_the_timeout() {
    let slow = Faults {
        latency_ms: 1500,
        ..Faults::default()
    };
    let mut c = case(
        "timeout",
        Target::Mock,
        slow,
        Expect::Transient {
            error: "timeout",
            retry_after: false,
        },
    );
    c.ofd_timeout = Duration::from_millis(300);
    run(c).await;
}

#[tokio::test]
async fn http_500() {
    let e = Expect::Transient {
        error: "HTTP 500",
        retry_after: false,
    };
    run(case("http_500", Target::Mock, failing(500, None), e)).await;
}

#[tokio::test]
async fn http_502() {
    let e = Expect::Transient {
        error: "HTTP 502",
        retry_after: false,
    };
    run(case("http_502", Target::Mock, failing(502, None), e)).await;
}

#[tokio::test]
async fn http_503() {
    let e = Expect::Transient {
        error: "HTTP 503",
        retry_after: false,
    };
    run(case("http_503", Target::Mock, failing(503, None), e)).await;
}

#[tokio::test]
async fn http_429_with_retry_after() {
    let e = Expect::Transient {
        error: "HTTP 429",
        retry_after: true,
    };
    run(case("http_429_retry_after", Target::Mock, failing(429, Some(1)), e)).await;
}

#[tokio::test]
async fn http_503_with_retry_after() {
    let e = Expect::Transient {
        error: "HTTP 503",
        retry_after: true,
    };
    run(case("http_503_retry_after", Target::Mock, failing(503, Some(1)), e)).await;
}

#[tokio::test]
async fn http_401_misconfigured() {
    let token = Faults {
        token: Some("the-right-one".into()),
        ..Faults::default()
    };
    run(case("http_401", Target::Mock, token, Expect::Misconfigured(401))).await;
}

#[tokio::test]
async fn http_422_rejected() {
    let reject = Faults {
        reject_rate: 1.0,
        reject_status: 422,
        ..Faults::default()
    };
    run(case("http_422", Target::Mock, reject, Expect::Rejected(422))).await;
}

#[tokio::test]
async fn flapping_up_and_down() {
    run(case("flapping", Target::Flapping, Faults::default(), CONNECT)).await;
}

/// One receipt against an OFD that always fails: it reaches the DLQ after exactly 20 calls that
/// reached the OFD — with the breaker opening in between (its refusals are not attempts).
#[tokio::test]
async fn the_dlq_only_after_twenty_real_attempts_even_with_the_breaker_opening() {
    for threshold in [1000, THRESHOLD] {
        let ofd = mock_ofd().await;
        ofd.set_faults(failing(503, None));
        let t = TestApp::start_with(|s| {
            s.ofd_url = Some(ofd.url());
            s.sync.backoff_base = Duration::from_millis(10);
            s.sync.backoff_max = Duration::from_millis(40);
            s.sync.interval = Duration::from_millis(50);
            s.breaker.failure_threshold = threshold;
            s.breaker.open_max = Duration::from_millis(150);
        })
        .await;
        let id = t.receipt(SEED_BODY).await["receipt_id"].as_str().unwrap().to_string();
        t.wait_status(Duration::from_secs(30), "the receipt in the DLQ", |s| {
            n(s, "dlq_size") == 1
        })
        .await;
        let (_, r) = t.get(&format!("/v1/kkt/receipt/{id}")).await;
        assert_eq!(r["status"], "failed");
        assert_eq!(r["retry_count"], 20, "{r}");
        assert_eq!(
            ofd.stats().received,
            20,
            "threshold {threshold}: calls that reached the OFD"
        );
        let (_, dlq) = t.get("/v1/kkt/dlq").await;
        assert_eq!(dlq["entries"][0]["retry_count"], 20);
        let opened = events(&t)
            .await
            .iter()
            .filter(|e| e["event_type"] == "circuit_opened")
            .count();
        if threshold == THRESHOLD {
            assert!(opened >= 3, "the breaker opened {opened} times on the way");
        }
        report(
            &format!("dlq_after_20_attempts_threshold_{threshold}"),
            json!({"attempts_counted": 20, "calls_reaching_ofd": ofd.stats().received, "breaker_openings": opened}),
        );
    }
}
