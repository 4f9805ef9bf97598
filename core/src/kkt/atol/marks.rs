//! The FN's check of a marking code on an ATOL register (docs/research/marking.md §1.1–§1.5;
//! S1 `myscripts_marks.js`, S6 `Operations/Fiscal/Ism/*`, E7 `Ffd120CodeValidation`): per code
//! `beginMarkingCodeValidation` `{params: {imcType: "auto", imc: <base64>, itemEstimatedStatus,
//! imcModeProcessing: 0}}` → poll `getMarkingCodeValidationStatus` until `ready` → then
//! `acceptMarkingCode` (before a sale: the code goes into the FN-M table the `sell` task reads)
//! or `declineMarkingCode` (a check only). The bits of tag 2106 come from
//! `onlineValidation.itemInfoCheckResult`; without the ОИСМ's answer (`driverError`, e.g. 411 no
//! connection) from the FN's own check (`offlineValidation`) with bit 4, "checked offline".
//! A validation left running (401 «проверка КМ уже запущена») is cancelled and begun again.

use super::AtolKkt;
use super::client::unavailable;
use crate::kkt::DeviceError;
use crate::kkt::marks::FnCheck;
use crate::receipt::mark::Code;
use serde_json::{Value, json};

/// The planned status (tag 2003) by operation and measure (S1 `ITEM_ESTIMATED_STATUSES`).
pub(super) fn estimated_status(refund: bool, weighed: bool) -> &'static str {
    match (refund, weighed) {
        (false, false) => "itemPieceSold",
        (false, true) => "itemDryForSale",
        (true, false) => "itemPieceReturn",
        (true, true) => "itemDryReturn",
    }
}

/// 2106 from `itemInfoCheckResult`'s five booleans (S1 `getItemInfoCheckResult`).
fn bits(info: &Value) -> u8 {
    [
        "imcCheckFlag",
        "imcCheckResult",
        "imcStatusInfo",
        "imcEstimatedStatusCorrect",
        "ecrStandAloneFlag",
    ]
    .iter()
    .enumerate()
    .filter(|(_, k)| info[**k].as_bool() == Some(true))
    .fold(0u8, |acc, (i, _)| acc | (1 << i))
}

impl AtolKkt {
    /// Checks one code on the FN; `accept`: keep it in the FN-M table for the sale that follows.
    pub(super) fn validate_code(&self, code: &str, status: &str, accept: bool) -> Result<FnCheck, DeviceError> {
        let _one_at_a_time = self.marking.lock().unwrap_or_else(|p| p.into_inner());
        let begin = json!({"type": "beginMarkingCodeValidation", "params": {
            "imcType": "auto", "imc": Code::new(code).base64(), "itemEstimatedStatus": status, "imcModeProcessing": 0}});
        let offline = match self.query(begin.clone()) {
            Ok(r) => r,
            Err(DeviceError::NotTaken { .. } | DeviceError::Unexpected { .. } | DeviceError::Refused { .. }) => {
                // 401: a validation left running (a crash, another program): cancel, begin again.
                let _ = self.query(json!({"type": "cancelMarkingCodeValidation"}));
                self.query(begin)?
            }
            Err(e) => return Err(e),
        };
        let mut status_now = Value::Null;
        let polls = (self.client.job_bound().as_millis() / self.config.poll_every.as_millis().max(1)).max(1);
        for _ in 0..polls {
            status_now = self.query(json!({"type": "getMarkingCodeValidationStatus"}))?;
            if status_now["ready"] == true {
                break;
            }
            std::thread::sleep(self.config.poll_every);
        }
        if status_now["ready"] != true {
            let _ = self.query(json!({"type": "cancelMarkingCodeValidation"}));
            return Err(unavailable("ФН не закончил проверку кода маркировки вовремя"));
        }
        let online = &status_now["onlineValidation"]["itemInfoCheckResult"];
        let mut tag = if online.is_object() {
            bits(online)
        } else {
            // No answer of the ОИСМ: the FN's own check, made offline (bit 4).
            let o = &offline["offlineValidation"];
            u8::from(o["fmCheck"] == true) | (u8::from(o["fmCheckResult"] == true) << 1) | (1 << 4)
        };
        if accept {
            let accepted = self.query(json!({"type": "acceptMarkingCode"}))?;
            if accepted["itemInfoCheckResult"].is_object() {
                tag = bits(&accepted["itemInfoCheckResult"]);
            }
        } else {
            let _ = self.query(json!({"type": "declineMarkingCode"}));
        }
        Ok(FnCheck { tag_2106: tag })
    }

    /// A receipt with marked items: each code checked by the FN and accepted into its table
    /// before the `sell` that reads it (docs/research/marking.md §1.1), its 2106 on the item.
    /// Nothing fiscal happens here: a failure leaves nothing to look up.
    pub(super) fn with_accepted_codes<'a>(
        &self,
        document: std::borrow::Cow<'a, crate::receipt::Receipt>,
    ) -> Result<std::borrow::Cow<'a, crate::receipt::Receipt>, DeviceError> {
        if document.items.iter().all(|i| i.marking_code.is_none()) {
            return Ok(document);
        }
        use crate::receipt::ReceiptType::*;
        let refund = matches!(
            document.kind,
            SaleRefund | BuyRefund | SaleRefundCorrection | BuyRefundCorrection
        );
        let mut doc = document.into_owned();
        for item in doc.items.iter_mut() {
            let Some(code) = item.marking_code.clone() else {
                continue;
            };
            let weighed = item.measure != crate::receipt::Measure::Piece;
            let check = self.validate_code(&code, estimated_status(refund, weighed), true)?;
            if let Some(why) = check.refusal() {
                return Err(DeviceError::Refused {
                    code: "marking".into(),
                    message: why,
                });
            }
            item.marking
                .get_or_insert_with(|| crate::receipt::ItemMarking {
                    check_id: String::new(),
                    verdict: "unknown".into(),
                    tag_2106: None,
                    req_id: None,
                    req_timestamp: None,
                })
                .tag_2106 = Some(check.tag_2106);
        }
        Ok(std::borrow::Cow::Owned(doc))
    }
}
