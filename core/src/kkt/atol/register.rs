//! The exactly-once sequence of a receipt on an ATOL register (docs/contract.md §10):
//! look up what an earlier attempt left → journal the new attempt → post its job → read the
//! result and check it against the mark → on anything uncertain, settle it from the FN.
//!
//! Why each step is safe to die after (RELIABILITY.md, the kill-at-every-step test):
//! - journal written, job not posted: the lookup finds no job (404) and nothing in the FN, and
//!   posts the same uuid;
//! - job posted: the lookup polls it — the server keeps it, and a re-post of its uuid is a 409;
//! - FN written, result not read: the job's result (or, if the server lost it, the FN's
//!   document with the receipt's tag) is the receipt's;
//! - result read, not stored: the journal line is `done` with its document number.

use super::client::{Job, unavailable};
use super::codes::{self, Class};
use super::documents::{FnDocument, Likeness};
use super::journal::{Entry, State};
use super::tasks::{kind_of, receipt_task, task_type};
use super::{AtolKkt, FnNow, cause, fiscal_doc, sign_of};
use crate::kkt::{Candidate, DeviceError, Fiscalized, NotTaken, Task};
use crate::money::Kopecks;
use serde_json::{Value, json};

/// At most this many FN documents are read by one lookup; a longer window is read on over the
/// next lookups (every document once).
const MAX_SEARCH: i64 = 50;

/// What the FN says of a receipt.
enum InFn {
    /// Its document.
    Found(Fiscalized),
    /// Nothing of it up to the FN's last document.
    Nothing,
}

/// How an attempt ended, once settled.
enum Settled {
    Registered(Fiscalized),
    /// The FN holds nothing of it; `error`: its job's code and text, when it ended in one.
    NotRegistered {
        error: Option<(i64, String)>,
        lost: bool,
    },
}

impl AtolKkt {
    /// Registers a receipt; `again`: the shift was just closed or opened for it.
    pub(super) fn register(&self, task: &Task, again: bool) -> Result<Fiscalized, DeviceError> {
        let _span = tracing::info_span!("register", receipt_id = %task.id).entered();
        let prior = self.journal.get(&task.id)?;
        let (mut attempt, mut searched_to, mut candidates) = (1, None, Vec::new());
        if let Some(e) = prior {
            // Never blindly: what did the last attempt leave? (A person forcing a new attempt
            // skips this — but never past a document the journal knows is the receipt's.)
            if (e.state == State::Done || !task.forced)
                && let Some(found) = self.look_up(task, e)?
            {
                return Ok(found);
            }
            let e = self
                .journal
                .get(&task.id)?
                .ok_or_else(|| unavailable("журнал заданий ККТ потерял строку"))?;
            // The same uuid while the server does not hold it; a new one after its job ended.
            attempt = if e.state == State::Posted && !task.forced {
                e.attempt
            } else {
                e.attempt + 1
            };
            if !task.forced {
                searched_to = Some(e.searched_to);
                candidates = e.candidates;
            }
        }
        self.finish_printing();
        let now = self.fn_now()?;
        let document = self.with_accepted_codes(task.document())?;
        let entry = Entry {
            fn_number: now.serial.clone(),
            device_id: self.device().unwrap_or_default().to_string(),
            attempt,
            state: State::Posted,
            operation: task_type(document.kind).to_string(),
            mark: now.last,
            searched_to: searched_to.unwrap_or(now.last),
            candidates,
            doc_number: None,
        };
        // Durable before the job exists: from here on a crash is resolved by the lookup.
        self.journal.put(&task.id, &entry)?;
        crate::failpoint::hit("atol.journal_written");
        let uuid = entry.uuid(&task.id);
        // Not queued (not connected, refused, unreachable): the line stays `posted`, and the
        // next try asks the server for the uuid before anything.
        self.client
            .post(&uuid, entry.device(), &[receipt_task(&document, &task.tag())])?;
        crate::failpoint::hit("atol.posted");
        let job = self.client.wait(&uuid, entry.device())?;
        crate::failpoint::hit("atol.result_read");
        match self.settle(task, entry, job)? {
            Settled::Registered(f) => Ok(f),
            Settled::NotRegistered {
                error: Some((code, description)),
                ..
            } => self.after_error(task, code, description, again),
            Settled::NotRegistered { lost: true, .. } => Err(unavailable(
                "веб-сервер драйвера ККТ не знает задания этого чека, и в ФН его нет: чек будет отправлен снова",
            )),
            Settled::NotRegistered { lost: false, .. } => Err(unavailable(
                "ККТ сообщила о чеке, которого нет в ФН: чек будет отправлен снова",
            )),
        }
    }

    /// What an earlier attempt left: its document, `None` when the FN holds nothing of it (a
    /// new attempt may go), or an error (still running, or a person must decide).
    pub(super) fn look_up(&self, task: &Task, mut entry: Entry) -> Result<Option<Fiscalized>, DeviceError> {
        match (entry.state, entry.doc_number) {
            (State::Done, Some(n)) => {
                // Registered, its result perhaps not stored: read back from the same FN only.
                let now = self.fn_now()?;
                if now.serial != entry.fn_number {
                    return Err(DeviceError::NeedsReview {
                        reason: format!(
                            "чек записан в ФН {} документом № {n}, но сейчас в ККТ ФН {}: сверьте вручную",
                            entry.fn_number, now.serial
                        ),
                        candidates: Vec::new(),
                    });
                }
                let doc = self.read_document(n)?;
                return self.result_of(task, &doc, &entry.fn_number).map(Some);
            }
            (State::Failed, _) => return Ok(None),
            _ => {}
        }
        if entry.fn_number.is_empty() {
            // A line of the first driver: it went to the FN that is there now.
            entry.fn_number = self.fn_now()?.serial;
        }
        let job = self.client.state(&entry.uuid(&task.id), entry.device())?;
        match self.settle(task, entry, job)? {
            Settled::Registered(f) => Ok(Some(f)),
            Settled::NotRegistered { .. } => Ok(None),
        }
    }

    /// Settles a job's state from the FN whenever it does not prove itself (§10.1, §10.3).
    fn settle(&self, task: &Task, mut entry: Entry, job: Job) -> Result<Settled, DeviceError> {
        let ended = |entry: &mut Entry| {
            entry.state = State::Failed;
            self.journal.put(&task.id, entry)
        };
        match job {
            Job::Pending(s) => Err(unavailable(format!(
                "ККТ не ответила за {} с (задание {s}); чек будет проверен и доведён",
                self.client.job_bound().as_secs()
            ))),
            Job::Ready(results) => {
                if let Some(f) = self.checked(task, &entry, results.last().unwrap_or(&Value::Null)) {
                    self.done(task, &mut entry, &f)?;
                    return Ok(Settled::Registered(f));
                }
                // A thin recovered result, a number at or below the mark, another total or FN.
                match self.search(task, &mut entry)? {
                    InFn::Found(f) => Ok(Settled::Registered(f)),
                    InFn::Nothing => {
                        ended(&mut entry)?;
                        Ok(Settled::NotRegistered {
                            error: None,
                            lost: false,
                        })
                    }
                }
            }
            // Never queued, or lost before it ran: the same uuid may go again.
            Job::Unknown => match self.search(task, &mut entry)? {
                InFn::Found(f) => Ok(Settled::Registered(f)),
                InFn::Nothing => Ok(Settled::NotRegistered {
                    error: None,
                    lost: true,
                }),
            },
            Job::Failed { code, description } => match self.search(task, &mut entry)? {
                // The error came after the FN had written it (link lost while closing, …).
                InFn::Found(f) => Ok(Settled::Registered(f)),
                InFn::Nothing => {
                    ended(&mut entry)?;
                    Ok(Settled::NotRegistered {
                        error: Some((code, description)),
                        lost: false,
                    })
                }
            },
        }
    }

    /// The job failed and the FN holds nothing of it: what its code means (§10.6).
    fn after_error(&self, task: &Task, code: i64, description: String, again: bool) -> Result<Fiscalized, DeviceError> {
        let not_taken = |reason, message| Err(DeviceError::NotTaken { reason, message });
        match codes::lookup(code).map(|c| c.class) {
            Some(Class::Refused) => Err(DeviceError::Refused {
                code: code.to_string(),
                message: description,
            }),
            Some(Class::Device | Class::UnknownOutcome) => Err(unavailable(cause(code, &description))),
            Some(Class::ShiftExpired) if self.config.auto_shift && !again => {
                self.query(json!({"type": "closeShift"}))?;
                self.register(task, true)
            }
            Some(Class::ShiftExpired) => not_taken(
                NotTaken::ShiftExpired,
                format!("смена ККТ превысила 24 часа: закройте её (POST /v1/kkt/shift/close) ({description})"),
            ),
            Some(Class::ShiftClosed) if self.config.auto_shift && !again => {
                self.query(json!({"type": "openShift"}))?;
                self.register(task, true)
            }
            Some(Class::ShiftClosed) => not_taken(
                NotTaken::NoOpenShift,
                format!("смена на ККТ не открыта ({description})"),
            ),
            Some(Class::FnBlocked) => not_taken(
                NotTaken::FnBlocked,
                format!("ФН не принимает чеки: {description} (код {code})"),
            ),
            Some(Class::Config) => not_taken(
                NotTaken::Misconfigured,
                format!("ККТ не настроена для этого чека: {description} (код {code})"),
            ),
            None => Err(DeviceError::Unexpected {
                code: code.to_string(),
                message: description,
            }),
        }
    }

    /// A `ready` result, if it proves itself: a number above the mark, this receipt's total,
    /// this FN, a sign (§10.3). ATOL's result does not name its operation: the job's uuid does —
    /// the journal line says which task type that uuid was posted with, and that must be a form
    /// of this receipt (the sale itself, or its late correction, §10.7). A line that does not
    /// say (the first driver's) proves nothing: the FN is asked.
    fn checked(&self, task: &Task, entry: &Entry, result: &Value) -> Option<Fiscalized> {
        let p = &result["fiscalParams"];
        let number = p["fiscalDocumentNumber"].as_i64().filter(|n| *n > entry.mark)?;
        let operation = kind_of(&entry.operation)?;
        let forms = [task.receipt.clone(), task.document().into_owned()];
        let document = forms.iter().find(|r| r.kind == operation)?;
        let total = p["total"].as_f64().map(|t| Kopecks((t * 100.0).round() as i64))?;
        let fn_number = p["fnNumber"].as_str().filter(|f| *f == entry.fn_number)?;
        if total != document.total {
            return None;
        }
        let sign = sign_of(&p["fiscalDocumentSign"])?;
        let doc = fiscal_doc(
            &task.receipt,
            number,
            sign,
            p["fiscalDocumentDateTime"].as_str().unwrap_or_default(),
            fn_number,
            p["registrationNumber"].as_str().unwrap_or_default(),
            p["shiftNumber"].as_i64().unwrap_or(0),
            p["fiscalReceiptNumber"].as_i64().unwrap_or(0),
        );
        let not_printed = result["warnings"]["notPrinted"].as_bool().unwrap_or(false);
        self.note_printing(result);
        Some(Fiscalized {
            doc,
            print_error: not_printed.then(|| "ККТ зарегистрировала чек, но не напечатала его".to_string()),
            operation,
        })
    }

    /// Records the receipt's document; the first time on an FN, reads it back once to learn
    /// whether the FN keeps our tag.
    fn done(&self, task: &Task, entry: &mut Entry, f: &Fiscalized) -> Result<(), DeviceError> {
        entry.state = State::Done;
        entry.doc_number = Some(f.doc.fiscal_doc_number);
        entry.searched_to = entry.searched_to.max(f.doc.fiscal_doc_number);
        self.journal.put(&task.id, entry)?;
        if self.journal.tag_echo(&entry.fn_number)?.is_none()
            && let Ok(doc) = self.read_document(f.doc.fiscal_doc_number)
        {
            let echo = doc.tag.as_deref() == Some(task.tag().as_str());
            self.journal.set_tag_echo(&entry.fn_number, echo)?;
        }
        Ok(())
    }

    /// Reads the FN's documents after the line's window (each once) for this receipt (§10.2).
    fn search(&self, task: &Task, entry: &mut Entry) -> Result<InFn, DeviceError> {
        let now: FnNow = self.fn_now()?;
        if now.serial != entry.fn_number {
            return Err(DeviceError::NeedsReview {
                reason: format!(
                    "ФН заменён после отправки чека (был {}, теперь {}): в прежнем ФН чек не проверить",
                    entry.fn_number, now.serial
                ),
                candidates: entry.candidates.clone(),
            });
        }
        let tag = task.tag();
        let echo = self.journal.tag_echo(&now.serial)?;
        let sent = [task.receipt.clone(), task.document().into_owned()];
        let to = now.last.min(entry.searched_to + MAX_SEARCH);
        // The last unplaced document read in this pass: when it is the only candidate, it is
        // judged without reading it from the device again.
        let mut unplaced: Option<FnDocument> = None;
        for n in entry.searched_to + 1..=to {
            let doc = self.read_document(n)?;
            match doc.tag.as_deref() {
                Some(t) if t == tag => {
                    if echo != Some(true) {
                        self.journal.set_tag_echo(&now.serial, true)?;
                    }
                    if !sent.iter().any(|r| doc.likeness(r) != Likeness::Differs) && !doc.short {
                        return Err(DeviceError::NeedsReview {
                            reason: format!("документ № {n} в ФН несёт метку этого чека, но не сходится с ним"),
                            candidates: vec![candidate(&doc, "метка этого чека, но другое содержимое")],
                        });
                    }
                    let f = self.result_of(task, &doc, &now.serial)?;
                    tracing::warn!(receipt_id = %task.id, document = n, "found in the FN by its tag");
                    self.done(task, entry, &f)?;
                    return Ok(InFn::Found(f));
                }
                Some(_) => continue, // another of our receipts, by its tag
                None => {}
            }
            if !doc.is_receipt() {
                continue; // a shift's document, a report: never a receipt's
            }
            if self
                .journal
                .owner(&now.serial, n)?
                .is_some_and(|owner| owner != task.id)
            {
                continue; // another of our receipts, by the journal
            }
            // A receipt that belongs to nobody we know: it may be this one (the FN does not
            // show our tag, or shows no content), or another program's. Either way a person
            // looks, unless it is the only one and its whole content is this receipt's (§10.2).
            let full_on_echoing_fn = echo == Some(true) && !doc.short;
            let likeness = sent
                .iter()
                .map(|r| doc.likeness(r))
                .find(|l| *l != Likeness::Differs)
                .unwrap_or(Likeness::Differs);
            let why = match likeness {
                _ if full_on_echoing_fn => {
                    "чек без метки адаптера на ФН, который метки хранит: вероятно, чек другой программы"
                }
                Likeness::Differs => "чек, не записанный ни за одним чеком адаптера; операция или сумма другие",
                Likeness::Same { items: true } => "совпадают операция, сумма и позиции; метки чека в ФН нет",
                Likeness::Same { items: false } => {
                    "совпадают операция и сумма; позиций и метки чека ФН не показывает (короткий документ)"
                }
            };
            if !entry.candidates.iter().any(|c| c.fiscal_doc_number == n) {
                entry.candidates.push(candidate(&doc, why));
            }
            unplaced = Some(doc);
        }
        entry.searched_to = to;
        self.journal.put(&task.id, entry)?;
        if to < now.last {
            return Err(unavailable(format!(
                "в ФН ещё {} документов для проверки: чек будет доведён",
                now.last - to
            )));
        }
        match entry.candidates.as_slice() {
            [] => Ok(InFn::Nothing),
            // Content is only a fallback (§10.2): the one document in the window we cannot
            // place, and its whole content (operation, total, items) is this receipt's.
            [only] => {
                let doc = match unplaced.filter(|d| d.number == only.fiscal_doc_number) {
                    Some(doc) => doc,
                    None => self.read_document(only.fiscal_doc_number)?, // found by an earlier pass
                };
                // (A short document never shows its items, so it is never whole.)
                let whole = doc.tag.is_none()
                    && echo != Some(true)
                    && sent.iter().any(|r| doc.likeness(r) == Likeness::Same { items: true });
                if !whole {
                    return Err(self.review(entry));
                }
                let f = self.result_of(task, &doc, &now.serial)?;
                tracing::warn!(receipt_id = %task.id, document = doc.number, "found in the FN by its content (no tag)");
                self.done(task, entry, &f)?;
                Ok(InFn::Found(f))
            }
            _ => Err(self.review(entry)),
        }
    }

    /// The documents a person must place (§10.2, §10.5).
    fn review(&self, entry: &Entry) -> DeviceError {
        DeviceError::NeedsReview {
            reason: format!(
                "в ФН есть чеки, которые могут быть этим чеком или не записаны ни за одним чеком адаптера (№ {}), \
                 и ККТ не может сказать точно: решите вручную",
                entry
                    .candidates
                    .iter()
                    .map(|c| c.fiscal_doc_number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            candidates: entry.candidates.clone(),
        }
    }

    /// A document read back, as the receipt's result (the same fields as a job's, §10.9).
    fn result_of(&self, task: &Task, doc: &FnDocument, serial: &str) -> Result<Fiscalized, DeviceError> {
        let sign = doc
            .sign
            .clone()
            .ok_or_else(|| unavailable(format!("в документе № {} нет фискального признака", doc.number)))?;
        Ok(Fiscalized {
            doc: fiscal_doc(
                &task.receipt,
                doc.number,
                sign,
                doc.datetime.as_deref().unwrap_or_default(),
                doc.fn_number.as_deref().unwrap_or(serial),
                doc.registration.as_deref().unwrap_or_default(),
                doc.shift.unwrap_or(0),
                doc.in_shift.unwrap_or(0),
            ),
            print_error: None,
            operation: doc.receipt_type().unwrap_or(task.document().kind),
        })
    }

    /// A person attaches document `number` to a receipt in review (§10.5).
    pub(super) fn attach_document(&self, task: &Task, number: i64) -> Result<Fiscalized, DeviceError> {
        let mismatch = |why: String| DeviceError::Refused {
            code: "document_mismatch".into(),
            message: why,
        };
        let now = self.fn_now()?;
        let doc = self.read_document(number)?;
        if !doc.is_receipt() {
            return Err(mismatch(format!(
                "документ № {number} в ФН — не кассовый чек ({})",
                doc.kind
            )));
        }
        if doc.tag.as_deref().is_some_and(|t| t != task.tag()) {
            return Err(mismatch(format!("чек № {number} в ФН несёт метку другого чека")));
        }
        if self.journal.owner(&now.serial, number)?.is_some_and(|o| o != task.id) {
            return Err(mismatch(format!("чек № {number} в ФН уже записан за другим чеком")));
        }
        let sent = [task.receipt.clone(), task.document().into_owned()];
        if sent.iter().all(|r| doc.likeness(r) == Likeness::Differs) {
            return Err(mismatch(format!(
                "чек № {number} в ФН не сходится с этим чеком (операция {:?}, сумма {:?}; этот — {} на {} ₽)",
                doc.receipt_type().map(|t| t.as_str()),
                doc.total,
                task.receipt.kind.as_str(),
                task.receipt.total
            )));
        }
        let f = self.result_of(task, &doc, &now.serial)?;
        let mut entry = self.journal.get(&task.id)?.unwrap_or(Entry {
            fn_number: now.serial.clone(),
            device_id: self.device().unwrap_or_default().to_string(),
            attempt: 1,
            state: State::Failed,
            operation: task_type(task.document().kind).into(),
            mark: number - 1,
            searched_to: number - 1,
            candidates: Vec::new(),
            doc_number: None,
        });
        entry.state = State::Done;
        entry.doc_number = Some(number);
        self.journal.put(&task.id, &entry)?;
        Ok(f)
    }
}

fn candidate(doc: &FnDocument, why: &str) -> Candidate {
    Candidate {
        fiscal_doc_number: doc.number,
        operation: doc.receipt_type().map(|t| t.as_str().to_string()),
        total: doc.total.map(|t| Kopecks((t * 100.0).round() as i64)),
        datetime: doc.datetime.clone(),
        why: why.to_string(),
    }
}
