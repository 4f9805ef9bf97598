//! The FN's check of a marking code (FFD 1.2, tag 2106 «результат проверки сведений о товаре»;
//! docs/research/marking.md §2): five bits the device sets from its own check of the code's
//! crypto tail and from the marking operator's (ОИСМ) answer.

use serde::{Deserialize, Serialize};

/// Tag 2106 as the register gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnCheck {
    /// The bits: 0 checked by the FN and/or the ОИСМ, 1 the crypto tail is genuine, 2 the ОИСМ
    /// was asked, 3 the ОИСМ says the planned status is right, 4 checked offline (S1
    /// `getItemInfoCheckResult`; S6 `ItemInfoCheckResult.cs`).
    pub tag_2106: u8,
}

impl FnCheck {
    pub fn bit(self, n: u8) -> bool {
        self.tag_2106 & (1 << n) != 0
    }

    /// Whether the register lets the code be sold: checked, and not found false (a code the FN
    /// cannot check — a 4-character tail — has bit 0 unset and passes to the permissive check).
    pub fn refusal(self) -> Option<String> {
        if self.bit(0) && !self.bit(1) {
            return Some("ФН: криптоподпись кода маркировки не подтверждена — код поддельный или повреждён".into());
        }
        if self.bit(2) && !self.bit(3) {
            return Some("ФН: оператор маркировки сообщил, что статус товара не позволяет эту операцию".into());
        }
        None
    }

    /// The bits as ATOL's `itemInfoCheckResult` (S1 `myscripts_validators.js`).
    pub fn atol(self) -> serde_json::Value {
        serde_json::json!({
            "imcCheckFlag": self.bit(0), "imcCheckResult": self.bit(1), "imcStatusInfo": self.bit(2),
            "imcEstimatedStatusCorrect": self.bit(3), "ecrStandAloneFlag": self.bit(4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_is_a_code_checked_and_correct_and_a_false_tail_refuses() {
        assert_eq!(FnCheck { tag_2106: 15 }.refusal(), None);
        assert!(FnCheck { tag_2106: 1 }.refusal().unwrap().contains("криптоподпись"));
        assert!(FnCheck { tag_2106: 7 }.refusal().unwrap().contains("статус"));
        assert_eq!(FnCheck { tag_2106: 0 }.refusal(), None, "not checkable by the FN");
        assert_eq!(FnCheck { tag_2106: 15 }.atol()["imcEstimatedStatusCorrect"], true);
    }
}
