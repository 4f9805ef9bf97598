//! What a till gets for a receipt (docs/contract.md §1, §7). The buffer stores these exact
//! bytes with the receipt, so every replay of the key returns them again.

use crate::buffer::{Answer, ReceiptState};
use crate::kkt::FiscalDoc;
use crate::money::Kopecks;
use crate::receipt::VatSum;
use serde::Serialize;

/// What the till's answer says happened (its `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Registered and the slip printed.
    Printed,
    /// Registered; the slip did not print (the receipt is stored and will be sent).
    Buffered,
    /// Stored; the register has not registered it yet (202).
    AwaitingDevice,
}

/// `200`: registered (`printed`, or `buffered` when the slip did not print).
#[derive(Serialize)]
struct Registered<'a> {
    status: Outcome,
    receipt_id: &'a str,
    sync_status: ReceiptState,
    fiscal_doc: FiscalAnswer<'a>,
    /// What the cashier hands back (cash paid beyond the total).
    change: Kopecks,
    message: &'a str,
}

/// The register's fiscal attributes with the receipt's VAT per rate.
#[derive(Serialize)]
struct FiscalAnswer<'a> {
    #[serde(flatten)]
    doc: &'a FiscalDoc,
    vat: Vec<VatSum>,
    /// A late sale's correction (docs/contract.md §10.7): the document's operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_as: Option<&'a str>,
}

/// `202`: stored, the register has not registered it yet.
#[derive(Serialize)]
struct Awaiting<'a> {
    status: Outcome,
    receipt_id: &'a str,
    reason: &'a str,
    message: &'a str,
}

/// `422`: the register refused the receipt; the error body of every other error, plus the
/// device's own code and text.
#[derive(Serialize)]
struct Refused<'a> {
    code: &'a str,
    message: String,
    receipt_id: &'a str,
    device_error: DeviceError<'a>,
}

/// `422`: a person voided the receipt; never registered.
#[derive(Serialize)]
struct Voided<'a> {
    code: &'a str,
    message: String,
    receipt_id: &'a str,
    comment: &'a str,
}

#[derive(Serialize)]
struct DeviceError<'a> {
    code: &'a str,
    message: &'a str,
}

/// The HTTP status and body of the answer.
pub fn receipt(answer: &Answer<'_>) -> (u16, Vec<u8>) {
    let (status, body) = match *answer {
        Answer::Fiscalized {
            receipt_id,
            receipt,
            doc,
            print_error,
            registered_as,
        } => {
            let mut message = match print_error {
                None => "Receipt printed successfully".to_string(),
                Some(e) => format!("Receipt stored and will be sent to the OFD, but printing failed: {e}"),
            };
            if registered_as.is_some() {
                message.push_str(
                    "; registered late, as the self-initiated correction of the sale (54-FZ art. 4.3; README \"Late sales\")",
                );
            }
            let body = Registered {
                status: if print_error.is_none() {
                    Outcome::Printed
                } else {
                    Outcome::Buffered
                },
                receipt_id,
                sync_status: ReceiptState::Pending,
                fiscal_doc: FiscalAnswer {
                    doc,
                    vat: receipt.vat_sums(),
                    registered_as: registered_as.map(|k| k.as_str()),
                },
                change: receipt.change,
                message: &message,
            };
            (200, serde_json::to_vec(&body))
        }
        Answer::AwaitingDevice { receipt_id, reason } => {
            let body = Awaiting {
                status: Outcome::AwaitingDevice,
                receipt_id,
                reason,
                message: "The receipt is stored and will be fiscalized as soon as the register is ready; \
                          repeat the request with the same Idempotency-Key for the final answer",
            };
            (202, serde_json::to_vec(&body))
        }
        Answer::Refused {
            receipt_id,
            code,
            message,
        } => {
            let body = Refused {
                code: "kkt_refused",
                message: format!("The fiscal register refused the receipt ({code}): {message}"),
                receipt_id,
                device_error: DeviceError { code, message },
            };
            (422, serde_json::to_vec(&body))
        }
        Answer::Voided { receipt_id, comment } => {
            let body = Voided {
                code: "receipt_voided",
                message: format!(
                    "The shop's manager voided this receipt: it was not registered on the fiscal register ({comment})"
                ),
                receipt_id,
                comment,
            };
            (422, serde_json::to_vec(&body))
        }
    };
    (status, body.unwrap_or_default())
}
