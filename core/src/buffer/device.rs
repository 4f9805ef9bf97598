//! The device thread: the one place that talks to the fiscal register (docs/contract.md §7, §10).
//!
//! The writer hands it jobs whose intent rows are already durable; it registers them on the
//! register ([`Kkt::fiscalize`], batches at a time) while the writer goes on, and hands each
//! result back as a writer command, so the device's fiscal attributes and the exact answer
//! bytes are committed together. A job resumed after an interruption asks the register first
//! ([`Kkt::lookup`]) and is sent only if the register never registered it.
//!
//! What it does with a receipt the register did not register (§10):
//! - device trouble (no paper, not connected, …): answered `awaiting_device` at once and tried
//!   again every `retry_every` — looked up first each time — until it is registered or refused;
//! - an error no table explains: the same, with an alarm, but at most [`MAX_UNEXPECTED`] times
//!   with a growing pause; then a person decides (`needs_review`);
//! - a receipt already answered that the register will not take now (shift expired, FN
//!   blocked): the writer keeps it and hands it back as [`Work::Held`]; it is tried again every
//!   [`HELD_RETRY`], and at once when something may have changed ([`Work::Wake`], an OFD
//!   confirmation).
//!
//! A receipt registered more than `late_after` after the buyer paid goes on the device as the
//! correction of that settlement (§10.7): decided here, once, before its next attempt.

use super::Command;
use super::operations::{self, OpDone, OpJob};
use super::{Admission, AdmitError};
use crate::kkt::{DeviceError, Fiscalized, Kkt, Task};
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What the writer hands the device thread.
pub(crate) enum Work {
    /// Stored intents to register.
    Register(Vec<Job>),
    /// Documents the OFD confirmed (FN, number): the register's FN learns it.
    Confirmed(Vec<(String, i64)>),
    /// Receipts already answered that the register will not take now (§10.4), with the cause:
    /// kept and tried again every [`HELD_RETRY`].
    Held(Vec<(Task, String)>),
    /// Something changed that may let waiting receipts through (a shift closed): try them now.
    Wake,
    /// Counter operations whose intent rows are stored (§11); run after the receipts before them.
    Operate(Vec<OpJob>),
    /// Operations whose result could not be stored: read back from the register later.
    RetryOperations(Vec<OpJob>),
}

/// A stored intent to register.
pub(crate) struct Job {
    pub task: Task,
    /// The waiting POS request; `None` for a job resumed after a restart or a retry.
    pub reply: Option<oneshot::Sender<Result<Admission, AdmitError>>>,
    /// Interrupted before: ask the register about it before sending it.
    pub resume: bool,
}

/// What became of a job.
pub(crate) struct Done {
    pub task: Task,
    pub result: Result<Fiscalized, DeviceError>,
    pub reply: Option<oneshot::Sender<Result<Admission, AdmitError>>>,
}

/// Runs a driver call; a panicking driver is device trouble (the job is looked up and retried),
/// never a lost receipt or a dead thread.
/// The message goes to the tray and the window, which speak Russian, as the drivers' do.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, DeviceError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!("the fiscal register driver panicked during {what}");
        DeviceError::Unavailable(format!("сбой драйвера ККТ ({what}); чек будет проверен и доведён"))
    })
}

/// Registers one batch: resumed jobs are looked up first, the rest sent together.
fn register(kkt: &dyn Kkt, jobs: Vec<Job>) -> Vec<Done> {
    let mut done = Vec::with_capacity(jobs.len());
    let mut to_send = Vec::new();
    for job in jobs {
        if job.resume {
            let _span = tracing::info_span!("register", receipt_id = %job.task.id).entered();
            match guarded("lookup", || kkt.lookup(&job.task)).and_then(|r| r) {
                Ok(Some(found)) => {
                    tracing::info!(receipt_id = %job.task.id, "the register had registered an interrupted receipt");
                    done.push(Done {
                        task: job.task,
                        result: Ok(found),
                        reply: job.reply,
                    });
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    done.push(Done {
                        task: job.task,
                        result: Err(e),
                        reply: job.reply,
                    });
                    continue;
                }
            }
        }
        to_send.push(job);
    }
    if to_send.is_empty() {
        return done;
    }
    let tasks: Vec<Task> = to_send.iter().map(|j| j.task.clone()).collect();
    // A driver that registers one receipt at a time opens `register{receipt_id}` per receipt.
    let _span = tracing::info_span!("register", receipt_id = %tasks[0].id, batch = tasks.len()).entered();
    let results = guarded("fiscalize", || kkt.fiscalize(&tasks))
        .ok()
        .filter(|r| r.len() == tasks.len())
        .unwrap_or_else(|| {
            let e = DeviceError::Unavailable("драйвер ККТ не вернул результат; чек будет проверен и доведён".into());
            tasks.iter().map(|_| Err(e.clone())).collect()
        });
    for (job, result) in to_send.into_iter().zip(results) {
        if let Err(e) = &result {
            tracing::warn!(receipt_id = %job.task.id, error = %e, "receipt not registered");
        }
        done.push(Done {
            task: job.task,
            result,
            reply: job.reply,
        });
    }
    done
}

/// How often a receipt the register will not take now (shift expired, FN blocked) is tried again.
pub(crate) const HELD_RETRY: Duration = Duration::from_secs(30);

/// Unknown errors a receipt may meet before a person decides (§10.6: never retried for ever).
pub(crate) const MAX_UNEXPECTED: u32 = 3;

/// What the device thread needs besides the register.
pub(crate) struct DeviceSetup {
    pub results: mpsc::Sender<Command>,
    pub retry_every: Duration,
    pub problem: Arc<std::sync::Mutex<Option<String>>>,
    /// Past this since the buyer paid, a sale goes on the device as a correction (§10.7).
    pub late_after: Option<Duration>,
    pub clock: crate::time::Clock,
    /// The register's time zone: the day a late sale was paid on.
    pub zone: crate::time::Zone,
}

/// A receipt the register has not registered yet, and when to try it again.
struct Waiting {
    task: Task,
    at: Instant,
    /// Unknown errors so far.
    unexpected: u32,
    /// Why it waits, in the register's words (shown in the tray and the window).
    cause: String,
}

/// Starts the device thread; it ends when the writer drops the job sender.
pub(crate) fn spawn(kkt: Arc<dyn Kkt>, setup: DeviceSetup) -> std::io::Result<std::sync::mpsc::Sender<Work>> {
    let (jobs, rx) = std::sync::mpsc::channel::<Work>();
    std::thread::Builder::new()
        .name("kkt-device".into())
        .spawn(move || run(kkt.as_ref(), rx, setup))?;
    Ok(jobs)
}

/// A counter operation the register has not done yet, and when to try it again.
struct WaitingOp {
    job: OpJob,
    at: Instant,
    unexpected: u32,
    cause: String,
}

/// Runs the operations in order; those the register could not do now wait in `later`, looked
/// up before their next attempt. Returns what goes back to the writer.
fn operate(kkt: &dyn Kkt, jobs: Vec<(OpJob, u32)>, later: &mut Vec<WaitingOp>, setup: &DeviceSetup) -> Vec<OpDone> {
    let mut report = Vec::new();
    // Once one waits, every one after it waits behind it (a Z-report never overtakes the
    // cash-out before it).
    let mut blocked: Option<(Instant, String)> = None;
    for (job, seen) in jobs {
        if let Some((at, cause)) = &blocked {
            queue_behind(job, seen, *at, cause, later, &mut report);
            continue;
        }
        let mut done = operations::run(kkt, job);
        if !operations::waits(&done.result) {
            report.push(done);
            continue;
        }
        let unexpected = matches!(done.result, Err(DeviceError::Unexpected { .. }));
        let count = seen + u32::from(unexpected);
        let cause = done.result.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
        if count >= MAX_UNEXPECTED {
            done.result = Err(DeviceError::NeedsReview {
                reason: format!("ККТ {count} раза ответила ошибкой, которой нет в таблице кодов ({cause})"),
                candidates: Vec::new(),
            });
            report.push(done);
            continue;
        }
        let pause = if unexpected {
            setup.retry_every * 4u32.pow(count)
        } else {
            setup.retry_every
        };
        let reply = done.reply.take();
        let at = Instant::now() + pause;
        blocked = Some((at, cause.clone()));
        later.push(WaitingOp {
            job: OpJob {
                task: done.task.clone(),
                reply: None,
                resume: true,
            },
            at,
            unexpected: count,
            cause,
        });
        if reply.is_some() {
            done.reply = reply; // its caller is told to come back
            report.push(done);
        }
    }
    report
}

/// Puts an operation in line behind one that waits for the register; its caller, if any, is
/// told to come back (`202`).
fn queue_behind(
    mut job: OpJob,
    seen: u32,
    at: Instant,
    cause: &str,
    later: &mut Vec<WaitingOp>,
    report: &mut Vec<OpDone>,
) {
    let cause = if cause.starts_with("ждёт предыдущую") {
        cause.to_string()
    } else {
        format!("ждёт предыдущую операцию на ККТ ({cause})")
    };
    if let Some(reply) = job.reply.take() {
        report.push(OpDone {
            task: job.task.clone(),
            result: Err(DeviceError::Unavailable(cause.clone())),
            reply: Some(reply),
        });
    }
    later.push(WaitingOp {
        job,
        at,
        unexpected: seen,
        cause,
    });
}

fn run(kkt: &dyn Kkt, rx: std::sync::mpsc::Receiver<Work>, setup: DeviceSetup) {
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut waiting_ops: Vec<WaitingOp> = Vec::new();
    loop {
        let next = waiting
            .iter()
            .map(|w| w.at)
            .chain(waiting_ops.iter().map(|w| w.at))
            .min();
        let received = match next {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let mut batch = Vec::new();
        let mut confirmed = Vec::new();
        let mut wake = false;
        let mut ops: Vec<(OpJob, u32)> = Vec::new();
        let mut take = |work: Work, waiting: &mut Vec<Waiting>, waiting_ops: &mut Vec<WaitingOp>| match work {
            Work::Register(jobs) => batch.extend(jobs),
            Work::Confirmed(docs) => confirmed.extend(docs),
            Work::Held(tasks) => {
                let at = Instant::now() + HELD_RETRY;
                for (task, cause) in tasks {
                    waiting.retain(|w| w.task.id != task.id);
                    waiting.push(Waiting {
                        task,
                        at,
                        unexpected: 0,
                        cause,
                    });
                }
            }
            Work::Wake => wake = true,
            Work::Operate(jobs) => {
                waiting_ops.retain(|w| !jobs.iter().any(|j| j.task.id == w.job.task.id));
                ops.extend(jobs.into_iter().map(|j| (j, 0)));
            }
            Work::RetryOperations(jobs) => {
                let at = Instant::now() + setup.retry_every;
                waiting_ops.retain(|w| !jobs.iter().any(|j| j.task.id == w.job.task.id));
                waiting_ops.extend(jobs.into_iter().map(|job| WaitingOp {
                    job,
                    at,
                    unexpected: 0,
                    cause: "результат операции не сохранён; будет прочитан из ККТ".into(),
                }));
            }
        };
        match received {
            Ok(work) => take(work, &mut waiting, &mut waiting_ops),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(more) = rx.try_recv() {
            take(more, &mut waiting, &mut waiting_ops);
        }
        // In order: the first waiting operation decides when the ones behind it go, and new
        // ones wait behind them.
        let now = Instant::now();
        let mut ops: Vec<(OpJob, u32)> = match waiting_ops.first() {
            Some(first) if !(wake || first.at <= now) => {
                let (at, cause) = (first.at, first.cause.clone());
                let mut queued = Vec::new();
                for (job, seen) in ops {
                    queue_behind(job, seen, at, &cause, &mut waiting_ops, &mut queued);
                }
                if !queued.is_empty() && setup.results.blocking_send(Command::Operated(queued)).is_err() {
                    break;
                }
                Vec::new()
            }
            _ => waiting_ops
                .drain(..)
                .map(|w| (w.job, w.unexpected))
                .chain(ops)
                .collect(),
        };
        if !confirmed.is_empty() {
            // Confirmations first: a receipt waiting for them (a blocked FN) may go through.
            let _ = guarded("OFD confirmations", || kkt.ofd_confirmed(&confirmed));
            wake = true;
        }
        let now = Instant::now();
        let (due, later): (Vec<Waiting>, Vec<Waiting>) = waiting.drain(..).partition(|w| wake || w.at <= now);
        waiting = later;
        let mut unexpected: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        for w in due {
            unexpected.insert(w.task.id.clone(), w.unexpected);
            batch.push(Job {
                task: w.task,
                reply: None,
                resume: true,
            });
        }
        // A job sent again (after a restart, or by a person) must not wait behind its own copy.
        waiting.retain(|w| !batch.iter().any(|j| j.task.id == w.task.id));
        if batch.is_empty() {
            if !run_ops(kkt, &mut ops, &mut waiting_ops, &setup) {
                break;
            }
            publish(&setup.problem, &waiting, &waiting_ops);
            continue;
        }
        for job in &mut batch {
            mark_late(&mut job.task, &setup);
        }
        let mut report = Vec::new();
        for mut d in register(kkt, batch) {
            let seen = unexpected.get(&d.task.id).copied().unwrap_or(0);
            let (pause, count, cause) = match &d.result {
                Err(DeviceError::Unavailable(why)) => (setup.retry_every, seen, why.clone()),
                Err(e @ DeviceError::Unexpected { .. }) if seen + 1 >= MAX_UNEXPECTED => {
                    let reason = format!(
                        "ККТ {} раза ответила ошибкой, которой нет в таблице кодов ({e}); проверьте ККТ и \
                         решите, был ли чек зарегистрирован",
                        seen + 1
                    );
                    tracing::error!(receipt_id = %d.task.id, error = %e, "unknown register errors: a person decides");
                    d.result = Err(DeviceError::NeedsReview {
                        reason,
                        candidates: Vec::new(),
                    });
                    report.push(d);
                    continue;
                }
                Err(e @ DeviceError::Unexpected { .. }) => {
                    tracing::error!(receipt_id = %d.task.id, error = %e, "the register answered an unknown error");
                    (setup.retry_every * 4u32.pow(seen + 1), seen + 1, e.to_string())
                }
                _ => {
                    report.push(d);
                    continue;
                }
            };
            waiting.push(Waiting {
                task: d.task.clone(),
                at: Instant::now() + pause,
                unexpected: count,
                cause,
            });
            if d.reply.is_some() {
                report.push(d); // its till is told to come back
            }
        }
        if !report.is_empty() && setup.results.blocking_send(Command::Fiscalized(report)).is_err() {
            break;
        }
        // Operations after the receipts that came before them (a Z-report counts them all).
        if !run_ops(kkt, &mut ops, &mut waiting_ops, &setup) {
            break;
        }
        publish(&setup.problem, &waiting, &waiting_ops);
    }
}

/// Runs the operations taken and sends their results to the writer; `false` when the writer
/// is gone.
fn run_ops(kkt: &dyn Kkt, ops: &mut Vec<(OpJob, u32)>, waiting_ops: &mut Vec<WaitingOp>, setup: &DeviceSetup) -> bool {
    if ops.is_empty() {
        return true;
    }
    let done = operate(kkt, std::mem::take(ops), waiting_ops, setup);
    done.is_empty() || setup.results.blocking_send(Command::Operated(done)).is_ok()
}

/// The register's trouble while receipts wait for it, for the tray and the window (in
/// Russian, as the driver words it); nothing when nothing waits.
fn publish(problem: &std::sync::Mutex<Option<String>>, waiting: &[Waiting], waiting_ops: &[WaitingOp]) {
    if let Ok(mut p) = problem.lock() {
        *p = waiting
            .iter()
            .map(|w| (w.at, &w.cause))
            .chain(waiting_ops.iter().map(|w| (w.at, &w.cause)))
            .min_by_key(|(at, _)| *at)
            .map(|(_, cause)| cause.clone());
    }
}

/// Decides once, before the next attempt, whether a sale is late (§10.7).
fn mark_late(task: &mut Task, setup: &DeviceSetup) {
    let Some(after) = setup.late_after else { return };
    if task.late.is_some() || task.receipt.kind.is_correction() {
        return;
    }
    let waited = setup.clock.utc() - task.requested_at;
    if waited.to_std().is_ok_and(|w| w > after) {
        let day = setup.zone.local(task.requested_at).date();
        tracing::warn!(receipt_id = %task.id, minutes = waited.num_minutes(), "a late sale is registered as a correction");
        task.late = Some(day);
    }
}
