//! The test codes (README "Marked goods"): in demo mode (no OFD URL, no service configured) the
//! built-in simulator answers the permissive check by the code's serial, so a POS integrator can
//! try every path without a real FN or network. The same serials drive `mock-marking`, the
//! emulators of ТС ПИоТ and ЛМ ЧЗ the tests use.
//!
//! A test code is `0104630000000001` + `21` + serial + GS + `93TEST`; the serial's start decides:

use super::rules::CodeAnswer;
use super::services::{Answer, Failure};

/// (serial start, what the check says) — documented in the README.
pub const TEST_CODES: &[(&str, &str)] = &[
    ("OK", "allowed: found, applied, genuine, in circulation"),
    ("BLOCKED", "refused: sale banned by a state body (also offline)"),
    ("SOLD", "refused: already sold"),
    ("NOTFOUND", "refused: not found in ГИС МТ (error 10)"),
    (
        "NOTAPPLIED",
        "refused: no record that the code was applied to the goods",
    ),
    ("FAKE", "refused: the crypto tail is not genuine"),
    ("NOTINCIRC", "refused: not in circulation"),
    ("EXPIRED", "refused: past its expiry date"),
    ("BADFORMAT", "refused: malformed code"),
    (
        "SLOW",
        "the online check does not answer within the budget; the offline check allows it",
    ),
    (
        "NOSERVICE",
        "neither check answers: refused unless [marking] sell_unchecked = true",
    ),
    (
        "FNREFUSE",
        "the permissive check allows it; the FN does not confirm its crypto tail (mock register)",
    ),
];

/// The serial of a test code.
fn serial(code: &str) -> &str {
    code.get(18..).unwrap_or_default()
}

/// The online answer for a test code.
pub fn online(code: &str, now_ms: i64) -> Result<Answer, Failure> {
    let s = serial(code);
    if s.starts_with("SLOW") || s.starts_with("NOSERVICE") {
        return Err(Failure::Unreachable("ТС ПИоТ (симулятор) не ответил вовремя".into()));
    }
    let mut a = CodeAnswer::all_good();
    match s {
        s if s.starts_with("BLOCKED") => a.is_blocked = Some(true),
        s if s.starts_with("SOLD") => a.sold = Some(true),
        s if s.starts_with("NOTFOUND") => {
            a.found = Some(false);
            a.error_code = Some(10);
        }
        s if s.starts_with("NOTAPPLIED") => a.utilised = Some(false),
        s if s.starts_with("FAKE") => a.verified = Some(false),
        s if s.starts_with("NOTINCIRC") => a.realizable = Some(false),
        s if s.starts_with("EXPIRED") => a.expire_date = Some("2025-01-01T00:00:00Z".into()),
        s if s.starts_with("BADFORMAT") => a.valid = Some(false),
        _ => {}
    }
    Ok(Answer {
        code: a,
        req_id: Some(uuid::Uuid::new_v4().to_string()),
        req_timestamp: Some(now_ms.to_string()),
        offline: false,
    })
}

/// The offline answer (the local module): it knows bans only.
pub fn offline(code: &str, now_ms: i64) -> Result<Answer, Failure> {
    let s = serial(code);
    if s.starts_with("NOSERVICE") {
        return Err(Failure::Unreachable(
            "локальный модуль ЧЗ (симулятор) недоступен".into(),
        ));
    }
    Ok(Answer {
        code: CodeAnswer {
            is_blocked: Some(s.starts_with("BLOCKED")),
            ..Default::default()
        },
        req_id: Some(uuid::Uuid::new_v4().to_string()),
        req_timestamp: Some(now_ms.to_string()),
        offline: true,
    })
}
