//! Counter operations in the buffer (docs/contract.md §11): the request, the device thread's
//! job and result, and the answers a till gets — stored as bytes, so a replay of the
//! `Idempotency-Key` answers exactly what the first request got.
//!
//! The path is a receipt's: the writer makes the intent row durable (`pending`), hands the
//! operation to the device thread, and stores the register's result with the answer bytes
//! before anyone is answered. Device trouble leaves the row `pending` (the till gets `202
//! awaiting_device`) and the device thread tries again, asking the register first
//! ([`Kkt::operation_lookup`]) whether the earlier attempt happened. A restart resumes every
//! `pending` row the same way.

use super::{Admission, AdmitError};
use crate::kkt::{DeviceError, Kkt, OpResult, OpTask, Operation};
use serde::Serialize;
use tokio::sync::oneshot;

/// A counter operation a till or the window asks for.
#[derive(Debug, Clone)]
pub struct OpRequest {
    pub idempotency_key: String,
    /// SHA-256 of the request's canonical form (the operation as stored): a replay with another
    /// body is `422`.
    pub body_hash: String,
    pub op: Operation,
}

/// Where a waiting till's answer goes.
pub(crate) type OpReply = oneshot::Sender<Result<Admission, AdmitError>>;

/// An operation for the device thread.
pub(crate) struct OpJob {
    pub task: OpTask,
    pub reply: Option<OpReply>,
    /// Interrupted before (device trouble, a restart): ask the register before running it.
    pub resume: bool,
}

/// What became of an operation on the register.
pub(crate) struct OpDone {
    pub task: OpTask,
    pub result: Result<OpResult, DeviceError>,
    pub reply: Option<OpReply>,
}

/// Runs one operation: looked up first when it was interrupted before.
pub(crate) fn run(kkt: &dyn Kkt, job: OpJob) -> OpDone {
    let _span = tracing::info_span!("operation", operation_id = %job.task.id, kind = job.task.op.name()).entered();
    let guarded = |what: &str, f: &dyn Fn() -> Result<Option<OpResult>, DeviceError>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            tracing::error!("the fiscal register driver panicked during {what}");
            Err(DeviceError::Unavailable(format!(
                "сбой драйвера ККТ ({what}); операция будет проверена"
            )))
        })
    };
    let found = if job.resume {
        // Whatever the lookup meets, the earlier attempt's outcome stays unknown: it is asked
        // again later, never taken for "nothing happened".
        guarded("operation lookup", &|| kkt.operation_lookup(&job.task)).map_err(|e| match e {
            DeviceError::NotTaken { message, .. } => DeviceError::Unavailable(message),
            other => other,
        })
    } else {
        Ok(None)
    };
    let result = match found {
        Ok(Some(result)) => {
            tracing::info!("the register had done an interrupted operation");
            Ok(result)
        }
        Ok(None) => guarded("operation", &|| kkt.operate(&job.task).map(Some))
            .and_then(|r| r.ok_or_else(|| DeviceError::Unavailable("драйвер ККТ не вернул результат".into()))),
        Err(e) => Err(e),
    };
    match &result {
        Ok(_) => tracing::info!("operation done on the register"),
        Err(e) => tracing::warn!(error = %e, "operation not done"),
    }
    OpDone {
        task: job.task,
        result,
        reply: job.reply,
    }
}

/// Whether the result leaves the operation waiting for the register (tried again later).
pub(crate) fn waits(result: &Result<OpResult, DeviceError>) -> bool {
    matches!(
        result,
        Err(DeviceError::Unavailable(_) | DeviceError::Unexpected { .. })
    )
}

#[derive(Serialize)]
struct Awaiting<'a> {
    status: &'static str,
    operation_id: &'a str,
    operation: &'a str,
    reason: &'a str,
    message: &'static str,
}

#[derive(Serialize)]
struct Failed<'a> {
    code: &'a str,
    message: String,
    operation_id: &'a str,
    operation: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_error: Option<DeviceCode<'a>>,
}

#[derive(Serialize)]
struct DeviceCode<'a> {
    code: &'a str,
    message: &'a str,
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// `200`: the operation's result with its id in front.
pub(crate) fn done_body(task: &OpTask, result: &str) -> Vec<u8> {
    let head = format!(
        "{{\"operation_id\":{},\"operation\":\"{}\",\"status\":\"done\"",
        serde_json::Value::from(task.id.as_str()),
        task.op.name()
    );
    let rest = result.trim().strip_prefix('{').unwrap_or("}").trim_start();
    let sep = if rest.starts_with('}') { "" } else { "," };
    format!("{head}{sep}{rest}").into_bytes()
}

/// `202`: stored, and done as soon as the register is ready.
pub(crate) fn awaiting_body(task: &OpTask, reason: &str) -> Vec<u8> {
    json(&Awaiting {
        status: "awaiting_device",
        operation_id: &task.id,
        operation: task.op.name(),
        reason,
        message: "The operation is stored and will be done on the fiscal register as soon as it is ready; \
                  repeat the request with the same Idempotency-Key for its result",
    })
}

/// `422`: the register refused it (final; stored).
pub(crate) fn refused_body(task: &OpTask, code: &str, message: &str) -> Vec<u8> {
    json(&Failed {
        code: "kkt_refused",
        message: format!("The fiscal register refused the operation ({code}): {message}"),
        operation_id: &task.id,
        operation: task.op.name(),
        device_error: Some(DeviceCode { code, message }),
    })
}

/// `409`: the register cannot tell whether an interrupted operation happened; a person checks
/// (the X-report shows the shift's cash in and out).
pub(crate) fn review_body(task: &OpTask, reason: &str) -> Vec<u8> {
    json(&Failed {
        code: "operation_unknown",
        message: format!(
            "The fiscal register cannot tell whether the operation happened ({reason}); check the X-report \
             before doing it again under a new Idempotency-Key"
        ),
        operation_id: &task.id,
        operation: task.op.name(),
        device_error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn task() -> OpTask {
        OpTask {
            id: "op-1".into(),
            op: Operation::DrawerOpen,
            requested_at: Utc::now(),
        }
    }

    #[test]
    fn a_done_answer_puts_the_id_in_front_of_the_result_text() {
        let body = done_body(&task(), r#"{"done":"drawer_opened","amount":1500.00}"#);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"operation_id":"op-1","operation":"drawer_open","status":"done","done":"drawer_opened","amount":1500.00}"#
        );
        let empty = done_body(&task(), "{}");
        let v: serde_json::Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(v["status"], "done");
    }
}
