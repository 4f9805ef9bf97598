//! The cashier (1021/1203) and the customer's contact for an electronic receipt (1008).

use super::Errors;
use super::fields::*;
use crate::receipt::*;

pub(super) fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn cashier(obj: &Object<'_>, errors: &mut Errors) -> Result<Option<Cashier>, ()> {
    let Some(raw) = present(obj, "cashier") else {
        return Ok(None);
    };
    let Some(c) = as_object(raw) else {
        errors.add("cashier", "must be an object {\"name\": …, \"inn\": …}");
        return Err(());
    };
    let name = string_field(&c, "name", "cashier.name", 64, errors);
    let inn = match present(&c, "inn") {
        None => None,
        Some(raw) => match as_string(raw) {
            Some(s) if digits(&s, 12) => Some(s),
            _ => {
                errors.add("cashier.inn", "must be the cashier's INN: 12 digits");
                return Err(());
            }
        },
    };
    match name {
        Some(name) => Ok(Some(Cashier { name, inn })),
        None => Err(()),
    }
}

pub(super) fn customer(obj: &Object<'_>, errors: &mut Errors) -> Result<Option<Customer>, ()> {
    let Some(raw) = present(obj, "customer") else {
        return Ok(None);
    };
    let Some(c) = as_object(raw) else {
        errors.add("customer", "must be an object {\"email\": …} or {\"phone\": …}");
        return Err(());
    };
    match (present(&c, "email"), present(&c, "phone")) {
        (Some(raw), None) => match text(raw, "customer.email", 64, &[], errors) {
            Some(e) if is_email(&e) => Ok(Some(Customer::Email(e))),
            Some(_) => {
                errors.add("customer.email", "must be an e-mail address (name@domain)");
                Err(())
            }
            None => Err(()),
        },
        (None, Some(raw)) => match as_string(raw) {
            Some(p) if is_phone(&p) => Ok(Some(Customer::Phone(p))),
            _ => {
                errors.add(
                    "customer.phone",
                    "must be a phone number in international form: + and 7–15 digits, e.g. +79991234567",
                );
                Err(())
            }
        },
        (Some(_), Some(_)) => {
            errors.add("customer", "must have either email or phone, not both");
            Err(())
        }
        (None, None) => {
            errors.add("customer", "must have email or phone");
            Err(())
        }
    }
}

pub(super) fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

pub(super) fn is_phone(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}
