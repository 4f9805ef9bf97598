//! What one answer of the permissive mode means for the sale (docs/research/marking.md §3.5:
//! ЦРПТ's «Методические рекомендации» §4 as retold by E5, checked against E4, E6 and M1's
//! `AsSimpleResult`), with the reason in the cashier's words.
//!
//! Online (ГИС МТ through ТС ПИоТ): refused when the code is malformed, not found, not applied
//! (`utilised`), not genuine (`verified`), blocked by a state body, already sold (on a sale),
//! not in circulation, expired, or has an error code. Offline (the local module ЛМ ЧЗ, whose
//! database does not know the rest): only a block by a state body, and a sold code, refuse.
//! A flag the answer leaves out is never a reason to refuse.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One code's fields in a `codes/check` answer (M1 `CodeInfo.cs`, M2 `CodeDataTrueApi.cs`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CodeAnswer {
    pub cis: Option<String>,
    pub valid: Option<bool>,
    pub found: Option<bool>,
    pub verified: Option<bool>,
    pub realizable: Option<bool>,
    pub utilised: Option<bool>,
    pub sold: Option<bool>,
    pub is_blocked: Option<bool>,
    pub expire_date: Option<String>,
    pub error_code: Option<i64>,
    pub message: Option<String>,
    pub gray_zone: Option<bool>,
    pub ogvs: Option<Vec<String>>,
}

impl CodeAnswer {
    /// A code found, applied, genuine, in circulation, not sold, not banned — the online answer
    /// that allows a sale (the demo's and the tests' starting point).
    pub fn all_good() -> CodeAnswer {
        CodeAnswer {
            valid: Some(true),
            found: Some(true),
            verified: Some(true),
            realizable: Some(true),
            utilised: Some(true),
            sold: Some(false),
            is_blocked: Some(false),
            error_code: Some(0),
            ..Default::default()
        }
    }
}

/// Why a code may not be sold; `None`: it may.
pub fn refusal(a: &CodeAnswer, refund: bool, offline: bool, now: DateTime<Utc>) -> Option<(i64, String)> {
    let no = |flag: Option<bool>| flag == Some(false);
    if a.is_blocked == Some(true) {
        let who = a
            .ogvs
            .as_ref()
            .filter(|o| !o.is_empty())
            .map(|o| format!(" ({})", o.join(", ")));
        return Some((
            101,
            format!(
                "продажа товара запрещена решением органа власти{}: товар нельзя продать",
                who.unwrap_or_default()
            ),
        ));
    }
    if a.sold == Some(true) && !refund {
        return Some((
            102,
            "код уже выведен из оборота (товар продан): повторная продажа запрещена".into(),
        ));
    }
    if offline {
        return None;
    }
    if let Some(code) = a.error_code.filter(|c| *c != 0) {
        let why = match code {
            1 => "код маркировки не прошёл проверку формата",
            2 => "в коде маркировки нет GTIN",
            3 => "в коде маркировки нет серийного номера",
            4 => "в коде маркировки недопустимые символы",
            5..=7 => "криптоподпись кода маркировки не прошла проверку",
            8 => "код не прошёл проверку в стране эмитента",
            9 => "идентификаторы применения кода не поддерживаются",
            10 => "код маркировки не найден в ГИС МТ",
            11 => "код не найден в трансграничном обороте",
            _ => "ГИС МТ вернула ошибку проверки кода",
        };
        let detail = a.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        return Some((code, format!("{why}{detail}")));
    }
    if no(a.valid) {
        return Some((
            111,
            "код маркировки имеет некорректный формат: отсканируйте его заново".into(),
        ));
    }
    if no(a.found) {
        return Some((
            10,
            "код маркировки не найден в ГИС МТ: товар не может быть продан".into(),
        ));
    }
    if no(a.utilised) {
        return Some((112, "нет сведений о нанесении кода на товар".into()));
    }
    if no(a.verified) {
        return Some((
            113,
            "код маркировки не подлинный (криптоподпись не подтверждена)".into(),
        ));
    }
    if no(a.realizable) && a.sold != Some(true) && a.gray_zone != Some(true) && !refund {
        return Some((114, "товар не введён в оборот: продавать его нельзя".into()));
    }
    if !refund
        && let Some(until) = a
            .expire_date
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        && until.to_utc() <= now
    {
        return Some((115, format!("срок годности истёк {}", until.format("%d.%m.%Y"))));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> CodeAnswer {
        CodeAnswer::all_good()
    }

    #[test]
    fn each_reason_refuses_a_sale_and_a_good_code_passes() {
        let now = Utc::now();
        assert_eq!(refusal(&good(), false, false, now), None);
        let reason = |edit: fn(&mut CodeAnswer)| {
            let mut a = good();
            edit(&mut a);
            refusal(&a, false, false, now).map(|r| r.0)
        };
        assert_eq!(reason(|a| a.is_blocked = Some(true)), Some(101));
        assert_eq!(reason(|a| a.sold = Some(true)), Some(102));
        assert_eq!(reason(|a| a.error_code = Some(10)), Some(10));
        assert_eq!(reason(|a| a.valid = Some(false)), Some(111));
        assert_eq!(reason(|a| a.found = Some(false)), Some(10));
        assert_eq!(reason(|a| a.utilised = Some(false)), Some(112));
        assert_eq!(reason(|a| a.verified = Some(false)), Some(113));
        assert_eq!(reason(|a| a.realizable = Some(false)), Some(114));
        assert_eq!(
            reason(|a| a.expire_date = Some("2020-01-01T00:00:00Z".into())),
            Some(115)
        );
        assert_eq!(reason(|a| a.found = None), None, "a flag left out is no reason");
    }

    #[test]
    fn a_refund_expects_a_sold_code_and_offline_only_a_ban_refuses() {
        let now = Utc::now();
        let mut sold = good();
        sold.sold = Some(true);
        sold.realizable = Some(false);
        assert_eq!(refusal(&sold, true, false, now), None, "a refund of a sold code");
        let offline = CodeAnswer {
            found: Some(false),
            valid: Some(false),
            is_blocked: Some(false),
            ..Default::default()
        };
        assert_eq!(
            refusal(&offline, false, true, now),
            None,
            "the local module knows only bans"
        );
        let banned = CodeAnswer {
            is_blocked: Some(true),
            ..Default::default()
        };
        assert_eq!(refusal(&banned, false, true, now).map(|r| r.0), Some(101));
    }
}
