//! The device thread: the one place that talks to the fiscal register (docs/contract.md §7).
//!
//! The writer hands it jobs whose intent rows are already durable; it registers them on the
//! register ([`Kkt::fiscalize`], batches at a time) while the writer goes on, and hands each
//! result back as a writer command, so the device's fiscal attributes and the exact answer
//! bytes are committed together. A job resumed after an interruption asks the register first
//! ([`Kkt::lookup`]) and is sent only if the register never registered it. A job the register
//! cannot take now (no paper, not connected, …) is answered `awaiting_device` at once and tried
//! again every `retry_every` — looked up first each time — until it is registered or refused.

use super::Command;
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

/// Starts the device thread; it ends when the writer drops the job sender.
pub(crate) fn spawn(
    kkt: Arc<dyn Kkt>,
    results: mpsc::Sender<Command>,
    retry_every: Duration,
    problem: Arc<std::sync::Mutex<Option<String>>>,
) -> std::io::Result<std::sync::mpsc::Sender<Work>> {
    let (jobs, rx) = std::sync::mpsc::channel::<Work>();
    std::thread::Builder::new().name("kkt-device".into()).spawn(move || {
        // Jobs the register could not take yet, and when to try them again.
        let mut waiting: Vec<Task> = Vec::new();
        let mut retry_at: Option<Instant> = None;
        loop {
            let received = match retry_at {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            let mut batch = Vec::new();
            let mut confirmed = Vec::new();
            let mut take = |work: Work| match work {
                Work::Register(jobs) => batch.extend(jobs),
                Work::Confirmed(docs) => confirmed.extend(docs),
            };
            match received {
                Ok(work) => take(work),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(more) = rx.try_recv() {
                take(more);
            }
            if !confirmed.is_empty() {
                // Confirmations first: a receipt waiting for them (a blocked FN) may go through.
                let _ = guarded("OFD confirmations", || kkt.ofd_confirmed(&confirmed));
            }
            if retry_at.is_some_and(|at| Instant::now() >= at) {
                retry_at = None;
                batch.extend(waiting.drain(..).map(|task| Job {
                    task,
                    reply: None,
                    resume: true,
                }));
            }
            let mut report = Vec::new();
            let done = register(kkt.as_ref(), batch);
            // What the register's trouble is now, for the tray and the window (in Russian, as
            // the driver words it); a registered receipt says it is ready again.
            let now = done.last().map(|d| match &d.result {
                Ok(_) | Err(DeviceError::Refused { .. }) | Err(DeviceError::NotTaken { .. }) => None,
                Err(DeviceError::Unavailable(why)) => Some(why.clone()),
            });
            if let (Some(now), Ok(mut p)) = (now, problem.lock()) {
                *p = now;
            }
            for d in done {
                if let Err(DeviceError::Unavailable(_)) = &d.result {
                    waiting.push(d.task.clone());
                    retry_at.get_or_insert_with(|| Instant::now() + retry_every);
                    if d.reply.is_none() {
                        continue; // still waiting: nobody to tell yet
                    }
                }
                report.push(d);
            }
            if !report.is_empty() && results.blocking_send(Command::Fiscalized(report)).is_err() {
                break;
            }
        }
    })?;
    Ok(jobs)
}
