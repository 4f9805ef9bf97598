//! Worker tests on a real SQLite buffer with a scripted OFD, under paused tokio time: backoff,
//! breaker periods and the 5 s tick are advanced, never slept through.

use super::*;
use crate::buffer::{AdmitRequest, ReceiptState};
use crate::events::EventKind;
use crate::ofd::SendOutcome;
use crate::settings::BreakerPolicy;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Answers from a script (then `fallback`), records every call, and tracks concurrency.
struct ScriptedOfd {
    script: Mutex<VecDeque<SendOutcome>>,
    fallback: Mutex<SendOutcome>,
    latency: Duration,
    calls: Mutex<Vec<String>>,
    /// When each call was made.
    times: Mutex<Vec<tokio::time::Instant>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

fn delivered() -> SendOutcome {
    SendOutcome::Delivered {
        http_status: 200,
        ofd_id: Some("X".into()),
        body: "{}".into(),
    }
}

fn transient() -> SendOutcome {
    SendOutcome::Transient {
        error: "connection refused".into(),
        http_status: None,
        retry_after: None,
    }
}

impl ScriptedOfd {
    fn new(fallback: SendOutcome) -> Arc<ScriptedOfd> {
        Arc::new(ScriptedOfd {
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(fallback),
            latency: Duration::from_millis(20),
            calls: Mutex::new(Vec::new()),
            times: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }
    fn set(&self, outcome: SendOutcome) {
        *lock(&self.fallback) = outcome;
    }
    fn then(&self, outcome: SendOutcome) {
        lock(&self.script).push_back(outcome);
    }
    fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }
}

impl Ofd for ScriptedOfd {
    fn send<'a>(&'a self, receipt_id: &'a str, _document: &'a str) -> futures::future::BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            lock(&self.calls).push(receipt_id.to_string());
            lock(&self.times).push(tokio::time::Instant::now());
            tokio::time::sleep(self.latency).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let next = lock(&self.script).pop_front();
            next.unwrap_or_else(|| lock(&self.fallback).clone())
        })
    }
    fn is_simulator(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "scripted".into()
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    buffer: Buffer,
    ofd: Arc<ScriptedOfd>,
    handle: WorkerHandle,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    policy: SyncPolicy,
    clock: Clock,
}

/// One send at a time: strict fiscal order, and outcomes in a predictable sequence.
fn serial() -> SyncPolicy {
    SyncPolicy {
        concurrency: 1,
        ..policy()
    }
}

fn policy() -> SyncPolicy {
    SyncPolicy {
        concurrency: 8,
        ..SyncPolicy::default()
    }
}

impl Rig {
    async fn new(ofd: Arc<ScriptedOfd>, policy: SyncPolicy) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let buffer = Buffer::open(
            crate::buffer::tests::config(dir.path().join("buffer.db")),
            crate::buffer::tests::mock_kkt(),
        )
        .unwrap();
        let mut rig = Rig {
            _dir: dir,
            buffer,
            ofd: ofd.clone(),
            handle: new_handle_placeholder(),
            cancel: CancellationToken::new(),
            task: None,
            policy,
            clock: Clock::new(),
        };
        rig.start();
        rig.settled().await;
        rig
    }

    /// Waits until the worker's start-up cycle is over, so a test's own actions are what it sees.
    async fn settled(&self) {
        let deadline = tokio::time::Instant::now() + MINUTE;
        while self.handle.status().cycles == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the worker never ran its first cycle"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn start(&mut self) {
        let (worker, handle) = new(
            self.buffer.clone(),
            self.ofd.clone(),
            self.policy,
            Breaker::new(BreakerPolicy::default()),
            self.clock.clone(),
            Arc::new(Metrics::default()),
        );
        self.cancel = CancellationToken::new();
        self.handle = handle;
        self.task = Some(tokio::spawn(worker.run(self.cancel.clone())));
    }

    async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    async fn add(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let body = r#"{"pos_id":"POS-1","type":"sale","items":[{"name":"A","price":10,"qty":1}],"payments":[{"type":"cash","amount":10}]}"#;
            let receipt = crate::receipt::parse(body.as_bytes(), &Default::default()).unwrap();
            let key = format!("k-{}-{i}", uuid::Uuid::new_v4());
            let a = self
                .buffer
                .admit(AdmitRequest {
                    idempotency_key: key,
                    body_hash: "h".into(),
                    receipt,
                })
                .await
                .unwrap();
            ids.push(a.receipt_id);
        }
        ids
    }

    /// Wakes the loop for one automatic cycle (which, unlike a manual sync, honours backoff and
    /// an open breaker) and waits until it is over.
    async fn tick(&self) -> CycleReport {
        let before = self.handle.status().cycles;
        self.handle.wake();
        let deadline = tokio::time::Instant::now() + MINUTE;
        loop {
            let s = self.handle.status();
            if s.cycles > before && s.current_cycle.is_none() {
                return s.last_cycle.unwrap();
            }
            assert!(tokio::time::Instant::now() < deadline, "no cycle ran");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Adds `n` receipts and runs a cycle against a failing OFD: five failures open the breaker.
    async fn open_breaker(&self, n: usize) {
        self.add(n).await;
        self.handle.sync_now().await.unwrap();
        assert_eq!(self.handle.breaker().state, breaker::State::Open);
    }

    /// Waits (in virtual time) until `f` holds; panics after `limit`.
    async fn until(&self, limit: Duration, what: &str, f: impl Fn(&crate::buffer::Counts) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if f(&self.buffer.counts()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.buffer.counts()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn receipt(&self, id: &str) -> crate::buffer::ReceiptView {
        self.buffer.receipt(id.to_string()).await.unwrap().unwrap()
    }

    async fn event_kinds(&self) -> Vec<EventKind> {
        self.buffer
            .events(0, 1000)
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

/// A handle that belongs to no worker, replaced by `start()`.
fn new_handle_placeholder() -> WorkerHandle {
    WorkerHandle {
        wake: Arc::new(Notify::new()),
        ofd: ScriptedOfd::new(delivered()),
        shared: Arc::new(Shared {
            breaker: Mutex::new(Breaker::new(BreakerPolicy::default())),
            state: Mutex::new(WorkerState::default()),
            progress: watch::Sender::new(Progress::default()),
        }),
        clock: Clock::new(),
        policy: SyncPolicy::default(),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn an_empty_buffer_gives_an_empty_cycle() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!((report.synced, report.failed, report.skipped), (0, 0, 0));
    assert!(rig.ofd.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_single_receipt_is_delivered_and_marked_synced() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    let ids = rig.add(1).await;
    rig.handle.wake();
    rig.until(MINUTE, "synced", |c| c.synced == 1).await;
    let r = rig.receipt(&ids[0]).await;
    assert_eq!(r.status, ReceiptState::Synced);
    assert!(r.synced_at.is_some());
    assert_eq!(rig.ofd.calls(), ids);
}

#[tokio::test(start_paused = true)]
async fn a_new_receipt_wakes_the_worker_without_waiting_for_the_tick() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    let t0 = tokio::time::Instant::now();
    rig.add(1).await;
    rig.handle.wake();
    rig.until(MINUTE, "synced", |c| c.synced == 1).await;
    assert!(t0.elapsed() < Duration::from_secs(1), "took {:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn without_a_wake_the_five_second_tick_picks_receipts_up() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    rig.add(2).await;
    let t0 = tokio::time::Instant::now();
    rig.until(MINUTE, "synced", |c| c.synced == 2).await;
    assert!(t0.elapsed() <= Duration::from_secs(6), "took {:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_backlog_from_before_a_restart_starts_draining_at_once() {
    let mut rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    rig.stop().await;
    rig.add(3).await;
    let t0 = tokio::time::Instant::now();
    rig.start();
    rig.until(MINUTE, "backlog delivered", |c| c.synced == 3).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "waited {:?} for the first cycle",
        t0.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn more_than_fifty_receipts_are_all_delivered_in_fiscal_order_one_by_one() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), serial()).await;
    let ids = rig.add(120).await;
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!(report.synced, 120);
    assert_eq!(rig.ofd.calls(), ids, "strict fiscal order with concurrency 1");
    assert_eq!(rig.ofd.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn sends_run_concurrently_up_to_the_configured_limit() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    rig.add(50).await;
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!(report.synced, 50);
    assert_eq!(rig.ofd.max_in_flight.load(Ordering::SeqCst), 8);
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_returns_the_receipt_to_pending_with_backoff() {
    let ofd = ScriptedOfd::new(delivered());
    ofd.then(transient());
    let rig = Rig::new(ofd, policy()).await;
    let ids = rig.add(1).await;
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!((report.synced, report.failed), (0, 1));
    let r = rig.receipt(&ids[0]).await;
    assert_eq!((r.status, r.retry_count), (ReceiptState::Pending, 1));
    assert_eq!(r.last_error.as_deref(), Some("connection refused"));
    // Not due before the backoff (5 s ± 20 %) has passed: a cycle sends nothing.
    assert_eq!(rig.tick().await.synced, 0);
    tokio::time::advance(Duration::from_secs(7)).await;
    rig.until(MINUTE, "synced after backoff", |c| c.synced == 1).await;
    assert_eq!(rig.ofd.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_from_the_ofd_postpones_the_next_attempt() {
    let ofd = ScriptedOfd::new(delivered());
    ofd.then(SendOutcome::Transient {
        error: "429".into(),
        http_status: Some(429),
        retry_after: Some(Duration::from_secs(120)),
    });
    let rig = Rig::new(ofd, policy()).await;
    rig.add(1).await;
    rig.tick().await;
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(rig.tick().await.synced, 0, "still inside Retry-After");
    tokio::time::advance(Duration::from_secs(21)).await;
    assert_eq!(rig.tick().await.synced, 1);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_five_failures_and_refused_calls_are_not_attempts() {
    let rig = Rig::new(ScriptedOfd::new(transient()), serial()).await;
    let ids = rig.add(10).await;
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!((report.failed, report.skipped), (5, 5), "{report:?}");
    assert_eq!(rig.handle.breaker().state, breaker::State::Open);
    assert_eq!(rig.ofd.calls().len(), 5);
    assert_eq!(
        rig.receipt(&ids[9]).await.retry_count,
        0,
        "a refused call is not an attempt"
    );
    // While open (1 s at first), cycles send nothing, however often they run.
    for _ in 0..4 {
        tokio::time::advance(Duration::from_millis(200)).await;
        let r = rig.tick().await;
        assert_eq!((r.synced, r.failed), (0, 0), "{r:?}");
    }
    assert_eq!(rig.ofd.calls().len(), 5);
    assert!(rig.event_kinds().await.contains(&EventKind::CircuitOpened));
}

#[tokio::test(start_paused = true)]
async fn after_sixty_seconds_a_probe_goes_through_and_two_successes_close_the_breaker() {
    let ofd = ScriptedOfd::new(transient());
    let rig = Rig::new(ofd.clone(), serial()).await;
    rig.open_breaker(5).await;
    ofd.set(delivered());
    tokio::time::advance(Duration::from_secs(61)).await;
    rig.until(Duration::from_secs(600), "all delivered", |c| c.synced == 5)
        .await;
    assert_eq!(rig.handle.breaker().state, breaker::State::Closed);
    let kinds = rig.event_kinds().await;
    for k in [
        EventKind::CircuitOpened,
        EventKind::CircuitHalfOpen,
        EventKind::CircuitClosed,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing");
    }
}

#[tokio::test(start_paused = true)]
async fn once_half_open_the_probes_follow_each_other_and_the_backlog_drains_in_the_same_cycle() {
    let ofd = ScriptedOfd::new(transient());
    let rig = Rig::new(ofd.clone(), policy()).await;
    rig.open_breaker(60).await;
    ofd.set(delivered());
    tokio::time::advance(Duration::from_secs(61)).await;
    // The first tick after the open period probes; the second probe and then full batches follow
    // at once, not one tick (5 s) apart.
    rig.until(Duration::from_secs(6), "the backlog delivered", |c| c.synced == 60)
        .await;
    let kinds = rig.event_kinds().await;
    let half_open = kinds.iter().rposition(|k| *k == EventKind::CircuitHalfOpen).unwrap();
    assert!(
        !kinds[half_open..].contains(&EventKind::SyncReleased),
        "half-open claims only its probe: nothing is claimed just to be released"
    );
}

#[tokio::test(start_paused = true)]
async fn a_manual_sync_sends_one_probe_through_an_open_breaker() {
    let ofd = ScriptedOfd::new(transient());
    let rig = Rig::new(ofd.clone(), serial()).await;
    rig.add(6).await;
    rig.handle.sync_now().await.unwrap();
    assert_eq!(ofd.calls().len(), 5);
    assert_eq!(rig.handle.breaker().state, breaker::State::Open);
    // Still failing: the probe is the only call, and its failure re-opens the breaker.
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!((report.failed, ofd.calls().len()), (1, 6), "{report:?}");
    assert_eq!(rig.handle.breaker().state, breaker::State::Open);
    // Recovered: the probe succeeds, the next ones close the breaker, and everything goes at
    // once — the receipts' own backoff (5 s and more) does not hold a manual sync back.
    ofd.set(delivered());
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!(report.synced, 6, "{report:?}");
    assert!(report.manual);
    assert_eq!(rig.handle.breaker().state, breaker::State::Closed);
    assert_eq!(rig.buffer.counts().synced, 6);
}

#[tokio::test(start_paused = true)]
async fn a_manual_sync_ignores_backoff_even_with_the_breaker_closed() {
    let ofd = ScriptedOfd::new(delivered());
    for _ in 0..3 {
        ofd.then(transient());
    }
    let rig = Rig::new(ofd.clone(), serial()).await;
    rig.add(3).await;
    rig.until(MINUTE, "three failed attempts", |c| c.retrying == 3).await;
    assert_eq!(rig.handle.breaker().state, breaker::State::Closed);
    // All three wait 4–6 s; nothing is due, yet a manual sync sends them now.
    let report = rig.handle.sync_now().await.unwrap();
    assert_eq!((report.synced, report.failed), (3, 0), "{report:?}");
    assert!(rig.event_kinds().await.contains(&EventKind::BackoffCleared));
}

#[tokio::test(start_paused = true)]
async fn a_manual_sync_during_a_long_drain_is_numbered_at_once_and_the_drain_yields_to_it() {
    let ofd = ScriptedOfd::new(delivered());
    let rig = Rig::new(ofd.clone(), serial()).await;
    rig.add(400).await;
    rig.handle.wake();
    // The automatic cycle is draining (20 ms a receipt, one at a time: 8 s of work).
    rig.until(MINUTE, "the drain under way", |c| c.synced >= 10).await;
    let running = rig.handle.status().current_cycle.expect("a cycle is running");
    assert!(!running.manual);
    let ticket = rig.handle.request_sync().unwrap();
    assert_eq!(ticket, SyncTicket::Started(running.cycle + 1));
    assert_eq!(
        rig.handle.request_sync(),
        Some(SyncTicket::AlreadyRunning(running.cycle + 1)),
        "a second press joins the queued sync"
    );
    let report = rig
        .handle
        .wait_for_cycle(ticket.cycle(), MINUTE)
        .await
        .expect("the manual cycle finished");
    assert!(report.manual);
    assert!(report.synced > 0, "{report:?}");
    assert_eq!(rig.buffer.counts().synced, 400);
    assert_eq!(rig.handle.status().last_manual_sync, Some(report));
}

#[tokio::test(start_paused = true)]
async fn after_a_short_outage_delivery_resumes_within_ten_seconds_without_a_button() {
    let ofd = ScriptedOfd::new(transient());
    let rig = Rig::new(ofd.clone(), policy()).await;
    rig.open_breaker(100).await;
    // Down for 8 s in all, then back.
    tokio::time::advance(Duration::from_secs(8)).await;
    ofd.set(delivered());
    let back = tokio::time::Instant::now();
    rig.until(MINUTE, "the backlog delivered", |c| c.synced == 100).await;
    let took = tokio::time::Instant::now() - back;
    assert!(took <= Duration::from_secs(10), "delivery resumed after {took:?}");
}

#[tokio::test(start_paused = true)]
async fn during_a_long_outage_probes_come_at_growing_intervals_and_at_most_once_a_minute() {
    let ofd = ScriptedOfd::new(transient());
    let rig = Rig::new(ofd.clone(), serial()).await;
    rig.open_breaker(10).await;
    let opened = lock(&ofd.times).len();
    for _ in 0..600 {
        tokio::time::advance(Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let times = lock(&ofd.times).clone();
    // After each failed probe the next comes after half the outage so far (it began with the
    // first failure), at least 1 s and at most a minute. (A period starts when the failed
    // answer comes back, 20 ms after the call, and time moves here in 1 s steps, also while a
    // cycle waits for the writer: a probe may come up to three steps late, never early.)
    let start = times[0];
    let probes = &times[opened - 1..];
    for w in probes.windows(2) {
        let since = (w[0] - start).as_secs_f64();
        let want = (since / 2.0).clamp(1.0, 60.0);
        let gap = (w[1] - w[0]).as_secs_f64();
        assert!(
            gap >= want - 0.05 && gap <= want + 3.1,
            "gap {gap} s at {since} s: {probes:?}"
        );
    }
    let gaps: Vec<u64> = probes.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert!(
        gaps.iter().filter(|g| **g >= 60).count() >= 3,
        "at most once a minute in the end: {gaps:?}"
    );
    assert!(gaps.len() >= 12, "the probes went on: {gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn after_a_five_second_outage_delivery_resumes_within_three_seconds() {
    let ofd = ScriptedOfd::new(transient());
    let rig = Rig::new(ofd.clone(), policy()).await;
    rig.open_breaker(100).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    ofd.set(delivered());
    let back = tokio::time::Instant::now();
    rig.until(MINUTE, "the backlog delivered", |c| c.synced == 100).await;
    let took = tokio::time::Instant::now() - back;
    assert!(took <= Duration::from_secs(3), "delivery resumed after {took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_receipt_is_moved_to_the_dlq_after_twenty_failed_attempts() {
    let ofd = ScriptedOfd::new(transient());
    // One receipt: five failures open the breaker, so the full 20 take several breaker periods.
    let rig = Rig::new(ofd.clone(), policy()).await;
    let ids = rig.add(1).await;
    rig.until(Duration::from_secs(4 * 3600), "DLQ", |c| c.failed == 1).await;
    assert_eq!(ofd.calls().len(), 20, "exactly twenty real attempts");
    let r = rig.receipt(&ids[0]).await;
    assert_eq!((r.status, r.retry_count), (ReceiptState::Failed, 20));
    let dlq = rig.buffer.dlq().await.unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].reason, "max_retries_exceeded");
    assert_eq!(dlq[0].retry_count, 20);
}

#[tokio::test(start_paused = true)]
async fn a_rejection_moves_the_receipt_to_the_dlq_at_once_and_a_retry_delivers_it() {
    let ofd = ScriptedOfd::new(delivered());
    ofd.then(SendOutcome::Rejected {
        http_status: 422,
        body: "bad vat".into(),
    });
    let rig = Rig::new(ofd.clone(), policy()).await;
    let ids = rig.add(1).await;
    rig.handle.sync_now().await.unwrap();
    let dlq = rig.buffer.dlq().await.unwrap();
    assert_eq!((dlq[0].reason.as_str(), dlq[0].retry_count), ("rejected_by_ofd", 1));
    assert!(dlq[0].last_error.as_deref().unwrap().contains("bad vat"));
    assert_eq!(
        rig.handle.breaker().consecutive_failures,
        0,
        "a rejection says the OFD is up"
    );
    let moved = rig.buffer.retry_dlq(None).await.unwrap();
    assert_eq!(moved, ids);
    assert_eq!(rig.receipt(&ids[0]).await.retry_count, 0);
    rig.handle.sync_now().await.unwrap();
    assert_eq!(rig.receipt(&ids[0]).await.status, ReceiptState::Synced);
    assert!(rig.event_kinds().await.contains(&EventKind::DlqRetried));
}

#[tokio::test(start_paused = true)]
async fn an_ofd_that_comes_back_rejecting_closes_the_breaker_all_the_same() {
    let ofd = ScriptedOfd::new(transient());
    let rig = Rig::new(ofd.clone(), serial()).await;
    rig.open_breaker(8).await;
    ofd.set(SendOutcome::Rejected {
        http_status: 422,
        body: "bad".into(),
    });
    tokio::time::advance(Duration::from_secs(61)).await;
    rig.until(Duration::from_secs(600), "all rejected into the DLQ", |c| c.failed == 8)
        .await;
    assert_eq!(
        rig.handle.breaker().state,
        breaker::State::Closed,
        "answers, even rejections, show the OFD is up"
    );
}

#[tokio::test(start_paused = true)]
async fn a_misconfigured_ofd_is_retried_and_raises_one_alarm() {
    let ofd = ScriptedOfd::new(SendOutcome::Misconfigured {
        http_status: 401,
        body: "no".into(),
    });
    let rig = Rig::new(ofd, serial()).await;
    let ids = rig.add(3).await;
    rig.handle.sync_now().await.unwrap();
    assert_eq!(rig.handle.status().misconfigured.map(|m| m.0), Some(401));
    assert_eq!(rig.receipt(&ids[0]).await.status, ReceiptState::Pending);
    let alarms = rig
        .event_kinds()
        .await
        .into_iter()
        .filter(|k| *k == EventKind::OfdMisconfigured)
        .count();
    assert_eq!(alarms, 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_manual_syncs_never_send_a_receipt_twice() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    rig.add(40).await;
    let reports = futures::future::join_all((0..10).map(|_| rig.handle.sync_now())).await;
    assert!(reports.iter().all(Option::is_some));
    let calls = rig.ofd.calls();
    let mut per_id: HashMap<&String, usize> = HashMap::new();
    for c in &calls {
        *per_id.entry(c).or_default() += 1;
    }
    assert_eq!(per_id.len(), 40);
    assert!(per_id.values().all(|n| *n == 1), "a receipt was sent twice");
    assert_eq!(rig.buffer.counts().synced, 40);
}

#[tokio::test(start_paused = true)]
async fn the_worker_stops_on_cancellation_and_a_new_one_carries_on() {
    let mut rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    rig.add(3).await;
    rig.handle.sync_now().await.unwrap();
    rig.stop().await;
    assert!(!rig.handle.status().running);
    assert!(
        rig.handle.sync_now().await.is_none(),
        "a stopped worker takes no requests"
    );
    rig.add(2).await;
    rig.start();
    rig.handle.wake();
    rig.until(MINUTE, "restarted worker delivers", |c| c.synced == 5).await;
    assert!(rig.handle.status().running);
}

#[tokio::test(start_paused = true)]
async fn receipts_left_syncing_by_a_crash_go_back_to_pending_at_start_and_are_delivered() {
    let mut rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    rig.stop().await;
    let ids = rig.add(3).await;
    // A crashed worker's claim: rows `syncing` with a lease that nobody will finish.
    let claimed = rig
        .buffer
        .claim_due(50, rig.clock.now_ms(), Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert_eq!(rig.buffer.counts().syncing, 3);
    rig.start();
    rig.handle.wake();
    rig.until(MINUTE, "recovered and delivered", |c| c.synced == 3).await;
    assert_eq!(rig.ofd.calls(), ids);
    assert!(rig.event_kinds().await.contains(&EventKind::LeaseRecovered));
}

#[tokio::test(start_paused = true)]
async fn every_transition_of_a_delivery_writes_an_event() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    let ids = rig.add(1).await;
    rig.handle.sync_now().await.unwrap();
    let r = rig.receipt(&ids[0]).await;
    let kinds: Vec<EventKind> = r.events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::ReceiptAdded,
            EventKind::SyncStarted,
            EventKind::ReceiptSynced
        ]
    );
    assert!(rig.event_kinds().await.contains(&EventKind::SyncCycleCompleted));
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_follows_the_loop() {
    let rig = Rig::new(ScriptedOfd::new(delivered()), policy()).await;
    rig.handle.sync_now().await.unwrap();
    let first = rig.handle.status().heartbeat_ms.unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    rig.handle.sync_now().await.unwrap();
    let second = rig.handle.status().heartbeat_ms.unwrap();
    assert!(second - first >= 10_000, "{first} → {second}");
}
