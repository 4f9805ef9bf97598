//! The bodies of the counter operations (docs/contract.md §11): the cashier, cash in or out,
//! the lines of a non-fiscal slip — checked field by field as a receipt is.

use super::fields::*;
use super::people::cashier;
use super::{Errors, Invalid};
use crate::receipt::Defaults;
use crate::receipt::counter::{CashDirection, Operation};
use serde_json::value::RawValue;

/// The most lines one non-fiscal slip may have, and the longest line (a bank slip has ~40 lines
/// of at most 48 characters on an 80 mm roll; longer lines wrap on the register).
pub const MAX_PRINT_LINES: usize = 200;
pub const MAX_PRINT_LINE: usize = 128;

/// Which operation a body is for (the endpoint says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    ShiftOpen,
    ShiftClose,
    ReportX,
    Cash,
    Print,
}

/// Parses the body of one operation; an empty body is `{}`. A cashier the body does not name
/// is the `[fiscal]` default one, as for a receipt.
pub fn operation(kind: OpKind, body: &[u8], defaults: &Defaults) -> Result<Operation, Invalid> {
    let raw = std::str::from_utf8(body).map_err(|_| Invalid::Malformed("body is not UTF-8".into()))?;
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    let value: &RawValue =
        serde_json::from_str(raw).map_err(|e| Invalid::Malformed(format!("body is not valid JSON: {e}")))?;
    let Some(obj) = as_object(value) else {
        return Err(Invalid::Malformed("body must be a JSON object".into()));
    };
    let mut errors = Errors(Vec::new());
    let who = cashier(&obj, &mut errors).map(|c| c.or_else(|| defaults.cashier.clone()));
    let op = match kind {
        OpKind::ShiftOpen => who.map(|cashier| Operation::ShiftOpen { cashier }),
        OpKind::ShiftClose => who.map(|cashier| Operation::ShiftClose { cashier }),
        OpKind::ReportX => who.map(|cashier| Operation::ReportX { cashier }),
        OpKind::Cash => {
            let direction = match present(&obj, "direction").and_then(as_string).as_deref() {
                Some("in") => Some(CashDirection::In),
                Some("out") => Some(CashDirection::Out),
                Some(_) => {
                    errors.add("direction", "must be \"in\" (внесение) or \"out\" (выплата)");
                    None
                }
                None => {
                    errors.add("direction", "is required: \"in\" or \"out\"");
                    None
                }
            };
            let amount = amount(present(&obj, "amount"), "amount", &mut errors);
            match (direction, amount, who) {
                (Some(direction), Some(amount), Ok(cashier)) => Ok(Operation::Cash {
                    direction,
                    amount,
                    cashier,
                }),
                _ => Err(()),
            }
        }
        OpKind::Print => {
            let lines: Vec<Option<String>> = array(&obj, "lines", MAX_PRINT_LINES, &mut errors)
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, raw)| {
                    let path = format!("lines[{i}]");
                    let Some(line) = as_string(raw) else {
                        errors.add(&path, "must be a string");
                        return None;
                    };
                    // An empty line is a blank line on the slip.
                    if line.is_empty() {
                        return Some(line);
                    }
                    text(raw, &path, MAX_PRINT_LINE, &[], &mut errors)
                })
                .collect();
            if lines.iter().all(Option::is_some) && errors.0.is_empty() {
                Ok(Operation::Print {
                    lines: lines.into_iter().flatten().collect(),
                })
            } else {
                Err(())
            }
        }
    };
    match op {
        Ok(op) if errors.0.is_empty() => Ok(op),
        _ if !errors.0.is_empty() => Err(Invalid::Fields(errors.0)),
        _ => Err(Invalid::Malformed("incomplete request".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Kopecks;

    fn parse(kind: OpKind, body: &str) -> Result<Operation, Invalid> {
        operation(kind, body.as_bytes(), &Defaults::default())
    }

    fn fields(r: Result<Operation, Invalid>) -> Vec<String> {
        match r {
            Err(Invalid::Fields(f)) => f.into_iter().map(|e| e.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn cash_needs_a_direction_and_an_exact_positive_amount() {
        assert_eq!(
            parse(
                OpKind::Cash,
                r#"{"direction":"in","amount":1000.10,"cashier":{"name":"Иванова"}}"#
            )
            .unwrap(),
            Operation::Cash {
                direction: CashDirection::In,
                amount: Kopecks(100_010),
                cashier: Some(crate::receipt::Cashier {
                    name: "Иванова".into(),
                    inn: None
                }),
            }
        );
        assert_eq!(fields(parse(OpKind::Cash, r#"{"amount":10}"#)), ["direction"]);
        assert_eq!(
            fields(parse(OpKind::Cash, r#"{"direction":"sideways","amount":0}"#)),
            ["direction", "amount"]
        );
        assert_eq!(
            fields(parse(OpKind::Cash, r#"{"direction":"out","amount":1.001}"#)),
            ["amount"]
        );
    }

    #[test]
    fn a_shift_takes_an_optional_cashier_and_an_empty_body() {
        assert_eq!(
            parse(OpKind::ShiftOpen, "").unwrap(),
            Operation::ShiftOpen { cashier: None }
        );
        assert_eq!(
            fields(parse(OpKind::ShiftClose, r#"{"cashier":{"name":"Петров","inn":"12"}}"#)),
            ["cashier.inn"]
        );
        assert!(matches!(parse(OpKind::ReportX, "[1]"), Err(Invalid::Malformed(_))));
    }

    #[test]
    fn a_slip_is_lines_of_text_without_control_characters() {
        assert_eq!(
            parse(OpKind::Print, r#"{"lines":["Слип оплаты","","Сумма 179.80"]}"#).unwrap(),
            Operation::Print {
                lines: vec!["Слип оплаты".into(), "".into(), "Сумма 179.80".into()]
            }
        );
        assert_eq!(fields(parse(OpKind::Print, r#"{"lines":[]}"#)), ["lines"]);
        assert_eq!(
            fields(parse(OpKind::Print, r#"{"lines":["ok", 5, "a\u0007"]}"#)),
            ["lines[1]", "lines[2]"]
        );
    }
}
