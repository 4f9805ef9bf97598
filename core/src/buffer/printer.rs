//! The printer thread. The writer hands it receipts whose rows are already durable; it prints
//! them on the KKT (slow, and for a real device slower still) while the writer goes on with the
//! next batch, builds each answer, and hands the results back as a writer command, so the print
//! status and the exact answer bytes are committed with the writer's next transaction. Only
//! then does the POS get its answer.

use super::{Admission, AdmitError, Command};
use crate::kkt::{FiscalDoc, Kkt};
use crate::receipt::Receipt;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A stored receipt to print.
pub(crate) struct Job {
    pub id: String,
    pub receipt: Receipt,
    pub doc: FiscalDoc,
    pub reply: oneshot::Sender<Result<Admission, AdmitError>>,
}

/// A printed (or failed) receipt with the answer to store and send.
pub(crate) struct Printed {
    pub id: String,
    pub print_error: Option<String>,
    pub body: Vec<u8>,
    pub reply: oneshot::Sender<Result<Admission, AdmitError>>,
}

/// The 200 answer of `POST /v1/kkt/receipt`.
#[derive(Serialize)]
struct AdmitBody<'a> {
    status: &'a str,
    receipt_id: &'a str,
    sync_status: &'a str,
    fiscal_doc: &'a FiscalDoc,
    message: &'a str,
}

/// The answer bytes: `printed`, or `buffered` with the printer's error.
pub(crate) fn admit_body(id: &str, doc: &FiscalDoc, print_error: Option<&str>) -> Vec<u8> {
    let message = match print_error {
        None => "Receipt printed successfully".to_string(),
        Some(e) => format!("Receipt stored and will be sent to the OFD, but printing failed: {e}"),
    };
    let body = AdmitBody {
        status: if print_error.is_none() { "printed" } else { "buffered" },
        receipt_id: id,
        sync_status: "pending",
        fiscal_doc: doc,
        message: &message,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Prints one job; a panicking driver counts as a printer error, never as a lost answer.
pub(crate) fn print(kkt: &dyn Kkt, job: Job) -> Printed {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kkt.print(&job.id, &job.receipt, &job.doc)
    }));
    let print_error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("the printer driver crashed".to_string()),
    };
    if let Some(e) = &print_error {
        tracing::warn!(receipt_id = %job.id, error = %e, "receipt stored but not printed");
    }
    let body = admit_body(&job.id, &job.doc, print_error.as_deref());
    Printed {
        id: job.id,
        print_error,
        body,
        reply: job.reply,
    }
}

/// Starts the printer thread; it ends when the writer drops the job sender.
pub(crate) fn spawn(
    kkt: Arc<dyn Kkt>,
    results: mpsc::Sender<Command>,
) -> std::io::Result<std::sync::mpsc::Sender<Vec<Job>>> {
    let (jobs, rx) = std::sync::mpsc::channel::<Vec<Job>>();
    std::thread::Builder::new().name("kkt-printer".into()).spawn(move || {
        while let Ok(batch) = rx.recv() {
            let printed: Vec<Printed> = batch.into_iter().map(|job| print(kkt.as_ref(), job)).collect();
            if results.blocking_send(Command::Printed(printed)).is_err() {
                break;
            }
        }
    })?;
    Ok(jobs)
}
