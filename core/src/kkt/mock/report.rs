//! What the mock register's shift reports add up: each receipt's operation, total, payment
//! forms and VAT ([`Summary`], stored with its document), summed per operation ([`sum`]).

use super::super::{OperationSum, PaymentSum};
use crate::money::Kopecks;
use crate::receipt::{PaymentType, Receipt, ReceiptType, VatSum};
use serde::{Deserialize, Serialize};

/// What a shift report needs of a receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Summary {
    /// The document's operation (a late sale's is its correction).
    pub kind: ReceiptType,
    pub total: Kopecks,
    pub payments: Vec<PaymentSum>,
    pub vat: Vec<VatSum>,
}

impl Summary {
    pub fn of(r: &Receipt) -> Summary {
        let kinds = [
            PaymentType::Cash,
            PaymentType::Card,
            PaymentType::Prepaid,
            PaymentType::Credit,
            PaymentType::Other,
        ];
        Summary {
            kind: r.kind,
            total: r.total,
            payments: kinds
                .into_iter()
                .map(|k| PaymentSum {
                    kind: k,
                    amount: r.paid_by(k),
                })
                .filter(|p| p.amount.0 != 0)
                .collect(),
            vat: r.vat_sums(),
        }
    }
}

/// The receipts of a shift summed per operation, in the order the operations first appear;
/// a refund's money is never mixed with a sale's.
pub(super) fn sum(receipts: impl IntoIterator<Item = Summary>) -> Vec<OperationSum> {
    let mut operations: Vec<OperationSum> = Vec::new();
    for s in receipts {
        let i = match operations.iter().position(|o| o.kind == s.kind) {
            Some(i) => i,
            None => {
                operations.push(OperationSum {
                    kind: s.kind,
                    count: 0,
                    total: Kopecks(0),
                    payments: Vec::new(),
                    vat: Vec::new(),
                });
                operations.len() - 1
            }
        };
        let o = &mut operations[i];
        o.count += 1;
        o.total = Kopecks(o.total.0 + s.total.0);
        for p in s.payments {
            match o.payments.iter_mut().find(|q| q.kind == p.kind) {
                Some(q) => q.amount = Kopecks(q.amount.0 + p.amount.0),
                None => o.payments.push(p),
            }
        }
        for v in s.vat {
            match o.vat.iter_mut().find(|w| w.vat == v.vat) {
                Some(w) => w.amount = Kopecks(w.amount.0 + v.amount.0),
                None => o.vat.push(v),
            }
        }
    }
    operations
}
