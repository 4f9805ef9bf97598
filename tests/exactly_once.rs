//! Exactly once on a real register (issue 17, docs/contract.md §10), against `mock-atol`
//! answering as real ATOL servers and devices do and against the mock driver's faults: every
//! answer the device gives after it wrote the document, jobs that vanish, thin recovered results,
//! same-total sales from several tills, another program printing on the register, short FN
//! documents, 409 for two reasons, Basic auth, held receipts, unknown codes, late sales, and a
//! person settling a receipt the register cannot account for.

use kkt_core::kkt::{MockFaults, receipt_tag};
use kkt_tests::*;
use mock_atol::Faults;
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

const COFFEE: &str = r#"{"pos_id":"POS-A","type":"sale","items":[{"name":"Кофе","price":150,"qty":1}],"payments":[{"type":"cash","amount":150}]}"#;

async fn setup(configure: impl FnOnce(&mut kkt_core::Settings)) -> (mock_atol::MockAtol, TestApp) {
    TestApp::start_on_atol(Duration::from_millis(10), configure).await
}

/// The FN's receipts that carry this receipt's tag.
fn tagged(atol: &mock_atol::MockAtol, receipt_id: &str) -> Vec<mock_atol::Document> {
    let tag = receipt_tag(receipt_id);
    atol.documents()
        .into_iter()
        .filter(|d| d.tag.as_deref() == Some(tag.as_str()))
        .collect()
}

fn receipts(atol: &mock_atol::MockAtol) -> Vec<mock_atol::Document> {
    atol.documents()
        .into_iter()
        .filter(|d| d.kind.starts_with("receipt"))
        .collect()
}

/// Posts with `key` until the answer is final (200 or 422), as a till repeating its key does.
async fn until_final(t: &TestApp, key: &str, body: &str) -> (u16, Value) {
    wait_for(LIMIT, "a final answer", || async {
        let r = t.post_receipt(Some(key), body).await;
        let code = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        (code == 200 || code == 422).then_some((code, v))
    })
    .await
}

async fn post(t: &TestApp, key: &str, body: &str) -> (u16, Value) {
    let r = t.post_receipt(Some(key), body).await;
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_error_after_the_fn_wrote_the_receipt_is_found_in_the_fn_and_never_registered_twice() {
    let (atol, t) = setup(|_| {}).await;
    t.receipt(COFFEE).await;
    // Link lost while closing (2, 241), close interrupted (177), paper out after fiscalization
    // (44, a "device" code): each after the FN has the document.
    for code in [2, 241, 177, 44] {
        atol.set_faults(Faults {
            error_after_write: Some(code),
            ..Faults::default()
        });
        let key = format!("after-write-{code}");
        let (status, v) = until_final(&t, &key, COFFEE).await;
        assert_eq!(status, 200, "{code}: {v}");
        let id = v["receipt_id"].as_str().unwrap();
        let docs = tagged(&atol, id);
        assert_eq!(docs.len(), 1, "{code}: one document in the FN: {:?}", receipts(&atol));
        let doc = &v["fiscal_doc"];
        assert_eq!(doc["fiscal_doc_number"].as_i64(), Some(docs[0].number), "{code}");
        assert_eq!(
            doc["fiscal_sign"].as_str(),
            Some(docs[0].sign.as_str()),
            "{code}: the decimal sign"
        );
        assert_eq!(
            doc["fn_number"], "7380440700000001",
            "{code}: the FN though 1041 is not in the document"
        );
        let qr = doc["qr_code_data"].as_str().unwrap();
        assert!(
            qr.contains("&fn=7380440700000001&") && qr.contains(&format!("&fp={}&", docs[0].sign)),
            "{qr}"
        );
        assert!(
            doc["shift_number"].as_i64() > Some(0) && doc["receipt_number"].as_i64() > Some(0),
            "{doc}"
        );
    }
    assert_eq!(receipts(&atol).len(), 5, "five sales, five documents");
}

#[tokio::test]
async fn a_thin_recovered_result_counts_only_once_the_fn_shows_the_receipt() {
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        blocked_after_write: true,
        block_ms: 300,
        ..Faults::default()
    });
    let (status, v) = until_final(&t, "thin", COFFEE).await;
    assert_eq!(status, 200, "{v}");
    let docs = tagged(&atol, v["receipt_id"].as_str().unwrap());
    assert_eq!(docs.len(), 1);
    // The recovered result had only the number: the rest was read back from the FN.
    assert_eq!(
        v["fiscal_doc"]["fiscal_sign"].as_str(),
        Some(docs[0].sign.as_str()),
        "{v}"
    );
    assert_eq!(v["fiscal_doc"]["total"], 150.0);
}

#[tokio::test]
async fn two_same_total_sales_from_two_tills_with_the_first_job_lost_before_it_ran_are_two_documents() {
    for short in [false, true] {
        let (atol, t) = setup(|_| {}).await;
        atol.set_faults(Faults {
            vanish_next_job: true,
            short_documents: short,
            ..Faults::default()
        });
        let first = tokio::spawn({
            let (base, client) = (t.base.clone(), t.client.clone());
            async move {
                client
                    .post(format!("{base}/v1/kkt/receipt"))
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", "till-a")
                    .body(COFFEE)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        });
        // While the first till's job is lost, the second till sells the same coffee.
        wait_for(LIMIT, "the first job lost", || async {
            (!atol.faults().vanish_next_job).then_some(())
        })
        .await;
        let b = COFFEE.replace("POS-A", "POS-B");
        let (code_b, vb) = until_final(&t, "till-b", &b).await;
        assert_eq!(code_b, 200, "{vb}");
        let _ = first.await;
        let (code_a, va) = until_final(&t, "till-a", COFFEE).await;
        assert_eq!(code_a, 200, "short={short}: {va}");
        let (na, nb) = (
            va["fiscal_doc"]["fiscal_doc_number"].as_i64(),
            vb["fiscal_doc"]["fiscal_doc_number"].as_i64(),
        );
        assert_ne!(na, nb, "short={short}: each till its own document");
        let docs = receipts(&atol);
        assert_eq!(docs.len(), 2, "short={short}: both registered, once each: {docs:?}");
        for (v, n) in [(&va, na), (&vb, nb)] {
            let id = v["receipt_id"].as_str().unwrap();
            let own = tagged(&atol, id);
            assert_eq!((own.len(), Some(own[0].number)), (1, n), "short={short}");
        }
    }
}

#[tokio::test]
async fn a_document_the_fn_cannot_tell_apart_makes_the_receipt_need_review_and_the_manager_settles_it() {
    // An FN that keeps no tag (1192 dropped) but full documents: a lost receipt is found by
    // its content (operation, total, items) as the only candidate.
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        drop_tag: true,
        ..Faults::default()
    });
    t.receipt(COFFEE).await;
    atol.set_faults(Faults {
        drop_tag: true,
        crash_after_register: true,
        ..Faults::default()
    });
    let (code, done) = until_final(&t, "lost-untagged", COFFEE).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(receipts(&atol).len(), 2, "found by content, not sent again");
    assert_eq!(done["fiscal_doc"]["fiscal_doc_number"], 3);

    // Now a 150 ₽ coffee printed by another program lies beside the lost one, and the FN gives
    // short documents: operation and total match both, and nothing tells them apart. (The job
    // hangs after the FN wrote it; the other program prints; the server then forgets its jobs.)
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        hang_after_write: true,
        short_documents: true,
        ..Faults::default()
    });
    let (code, v) = post(&t, "ambiguous", COFFEE).await;
    assert_eq!(code, 202, "{v}");
    let id = v["receipt_id"].as_str().unwrap().to_string();
    let foreign = atol.foreign_receipt("sell", 150.0, Vec::new());
    atol.forget_jobs();
    atol.set_faults(Faults {
        short_documents: true,
        ..Faults::default()
    });
    let s = t
        .wait_status(LIMIT, "a receipt in review", |s| s["needs_review"] == 1)
        .await;
    assert_eq!(s["fiscalizing"], 0, "{s}");
    let (_, review) = t.get("/v1/kkt/review").await;
    assert_eq!(review["count"], 1, "{review}");
    let listed: Vec<i64> = review["receipts"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fiscal_doc_number"].as_i64().unwrap())
        .collect();
    let own = tagged(&atol, &id)[0].number;
    assert!(listed.contains(&own) && listed.contains(&foreign), "{review}");
    // Nothing is sent while it waits; the till keeps getting 202.
    let (code, _) = post(&t, "ambiguous", COFFEE).await;
    assert_eq!(code, 202);
    assert_eq!(receipts(&atol).len(), 2, "never sent again");
    // A wrong number is refused; the right one attaches.
    let (code, v) = resolve(
        &t,
        &id,
        json!({"action": "attach", "fiscal_doc_number": 1, "comment": "?"}),
    )
    .await;
    assert_eq!(
        (code, v["code"].as_str()),
        (422, Some("document_mismatch")),
        "1 opened the shift: {v}"
    );
    let (code, v) = resolve(
        &t,
        &id,
        json!({"action": "attach", "fiscal_doc_number": own, "comment": "сверено с лентой"}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (code, final_answer) = until_final(&t, "ambiguous", COFFEE).await;
    assert_eq!(
        (code, final_answer["fiscal_doc"]["fiscal_doc_number"].as_i64()),
        (200, Some(own))
    );
    let (code, v) = resolve(&t, &id, json!({"action": "void"})).await;
    assert_eq!((code, v["code"].as_str()), (409, Some("not_in_review")), "{v}");
    let (_, events) = t.get("/v1/kkt/buffer/events?limit=1000").await;
    let decided = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "receipt_resolved")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            decided["details"]["action"].as_str(),
            decided["details"]["comment"].as_str()
        ),
        (Some("attach"), Some("сверено с лентой"))
    );
    assert_eq!(t.status().await["needs_review"], 0);
}

#[tokio::test]
async fn a_409_for_a_device_that_is_not_connected_is_device_trouble_and_the_receipt_goes_once_it_is_back() {
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        not_connected: true,
        ..Faults::default()
    });
    let (code, v) = post(&t, "nc", COFFEE).await;
    assert_eq!(code, 202, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("не подключена"), "{v}");
    atol.set_faults(Faults::default());
    let (code, v) = until_final(&t, "nc", COFFEE).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(tagged(&atol, v["receipt_id"].as_str().unwrap()).len(), 1);
}

#[tokio::test]
async fn basic_auth_is_sent_when_configured_and_a_401_is_a_configuration_error_not_endless_202s() {
    let (atol, t) = setup(|_| {}).await;
    atol.require_credentials("kassa", "secret-1");
    let (code, v) = post(&t, "no-auth", COFFEE).await;
    assert_eq!((code, v["code"].as_str()), (503, Some("kkt_misconfigured")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("[kkt.atol] user"), "{v}");
    assert!(receipts(&atol).is_empty());
    let url = atol.url();
    let t = TestApp::start_with(|s| {
        s.kkt.driver = kkt_core::settings::KktDriver::Atol;
        s.kkt.atol.url = url;
        s.kkt.atol.user = Some("kassa".into());
        s.kkt.atol.password = Some("secret-1".to_string().into());
    })
    .await;
    let (code, v) = post(&t, "auth", COFFEE).await;
    assert_eq!(code, 200, "{v}");
}

#[tokio::test]
async fn a_receipt_answered_202_is_kept_when_its_retry_meets_an_expired_shift_until_the_shift_is_closed() {
    let (atol, t) = setup(|s| s.kkt.auto_shift = false).await;
    t.receipt(COFFEE).await;
    atol.set_faults(Faults {
        paper_out: true,
        ..Faults::default()
    });
    let (code, v) = post(&t, "held", COFFEE).await;
    assert_eq!(code, 202, "{v}");
    atol.advance_clock(Duration::from_secs(25 * 3600));
    atol.set_faults(Faults::default());
    // The retry meets 68 "shift expired": the receipt stays, with its cause shown.
    let s = t
        .wait_status(LIMIT, "the cause shown", |s| {
            s["device"]["problem"].as_str().is_some_and(|p| p.contains("24 часа"))
        })
        .await;
    assert_eq!(s["fiscalizing"], 1, "kept, not dropped: {s}");
    let (code, v) = post(&t, "held", COFFEE).await;
    assert_eq!(code, 202, "the till keeps its receipt");
    assert!(
        v["reason"].as_str().unwrap().contains("24 часа"),
        "and is told why: {v}"
    );
    let (code, z) = t.admin_post("/v1/kkt/shift/close", Some(&t.token)).await;
    assert_eq!(code, 200, "{z}");
    let (code, v) = until_final(&t, "held", COFFEE).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(tagged(&atol, v["receipt_id"].as_str().unwrap()).len(), 1);
    let (_, events) = t.get("/v1/kkt/buffer/events?limit=1000").await;
    assert!(events.to_string().contains("receipt_held"), "{events}");
}

#[tokio::test]
async fn each_class_of_device_code_gets_its_answer_and_an_unknown_code_is_tried_three_times_then_reviewed() {
    let (atol, t) = setup(|_| {}).await;
    for (code, want_status, want_code) in [
        (16, 422, "kkt_refused"),
        (143, 422, "kkt_refused"),
        (172, 503, "kkt_misconfigured"),
        (140, 503, "fn_blocked"),
    ] {
        atol.set_faults(Faults {
            error_code: Some(code),
            ..Faults::default()
        });
        let (status, v) = post(&t, &format!("class-{code}"), COFFEE).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (want_status, Some(want_code)),
            "{code}: {v}"
        );
    }
    atol.set_faults(Faults {
        error_code: Some(55),
        ..Faults::default()
    });
    let (status, v) = post(&t, "busy", COFFEE).await;
    assert_eq!(status, 202, "55 busy: {v}");
    atol.set_faults(Faults {
        error_code: Some(9999),
        ..Faults::default()
    });
    let (status, _) = post(&t, "unknown", COFFEE).await;
    assert_eq!(status, 202);
    let s = t
        .wait_status(LIMIT, "an unknown code reviewed", |s| s["needs_review"] == 1)
        .await;
    assert_eq!(s["fiscalizing"], 1, "the busy one still waits: {s}");
    assert!(receipts(&atol).is_empty(), "nothing was written");
}

#[tokio::test]
async fn delivery_from_the_fn_counts_only_a_reading_taken_after_the_document_existed() {
    let (atol, t) = setup(|_| {}).await;
    t.receipt(COFFEE).await;
    t.wait_status(LIMIT, "the first confirmed", |s| s["synced"] == 1).await;
    // The OFD goes away; a reading taken just before says "nothing unsent".
    atol.set_faults(Faults {
        ofd_down: true,
        ..Faults::default()
    });
    for _ in 0..3 {
        t.receipt(COFFEE).await;
    }
    t.admin_post("/v1/kkt/buffer/sync", Some(&t.token)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // readings come and go; none may confirm
    let s = t.status().await;
    assert_eq!(s["synced"], 1, "the FN still holds them: {s}");
    atol.set_faults(Faults::default());
    t.admin_post("/v1/kkt/buffer/sync", Some(&t.token)).await;
    t.wait_status(LIMIT, "all confirmed", |s| s["synced"] == 4).await;
}

#[tokio::test]
async fn a_sale_the_register_takes_past_the_late_limit_is_registered_as_its_correction() {
    let (atol, t) = setup(|s| s.kkt.late_sale_after_minutes = 5).await;
    atol.set_faults(Faults {
        paper_out: true,
        ..Faults::default()
    });
    let (code, _) = post(&t, "late", COFFEE).await;
    assert_eq!(code, 202);
    t.clock.advance(Duration::from_secs(6 * 60));
    atol.set_faults(Faults::default());
    let (code, v) = until_final(&t, "late", COFFEE).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["fiscal_doc"]["registered_as"], "sale_correction", "{v}");
    let docs = tagged(&atol, v["receipt_id"].as_str().unwrap());
    assert_eq!(
        (docs.len(), docs[0].operation.as_str(), docs[0].kind.as_str()),
        (1, "sellCorrection", "receiptCorrection")
    );
    let (_, r) = t
        .get(&format!("/v1/kkt/receipt/{}", v["receipt_id"].as_str().unwrap()))
        .await;
    assert_eq!(r["registered_as"], "sale_correction", "{r}");
    // In time, a sale is a sale.
    let v = t.receipt(COFFEE).await;
    assert!(v["fiscal_doc"].get("registered_as").is_none(), "{v}");
}

#[tokio::test]
async fn the_mock_register_loses_answers_after_writing_and_the_core_finds_them_or_asks_a_person() {
    let mut t = TestApp::start().await;
    t.app().mock_kkt().unwrap().set_faults(MockFaults {
        lose_after_write: 1,
        ..MockFaults::default()
    });
    let (code, v) = until_final(&t, "lost", SEED_BODY).await;
    assert_eq!(code, 200, "found by the lookup: {v}");
    assert_eq!(v["fiscal_doc"]["fiscal_doc_number"], 2, "1 opened the shift; once");
    // Untagged: a person decides; `register` sends it again, `void` drops it for good.
    for (key, action) in [("review-register", "register"), ("review-void", "void")] {
        t.app().mock_kkt().unwrap().set_faults(MockFaults {
            untagged_after_write: 1,
            ..MockFaults::default()
        });
        let (code, v) = post(&t, key, SEED_BODY).await;
        assert_eq!(code, 202, "{v}");
        let id = v["receipt_id"].as_str().unwrap().to_string();
        t.wait_status(LIMIT, "in review", |s| s["needs_review"] == 1).await;
        let (_, view) = t.get(&format!("/v1/kkt/receipt/{id}")).await;
        assert_eq!(view["status"], "needs_review", "{view}");
        assert_eq!(view["candidates"].as_array().map(Vec::len), Some(1), "{view}");
        let r = t
            .client
            .post(t.url(&format!("/v1/kkt/receipt/{id}/resolve")))
            .json(&json!({"action": action}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "admin only");
        let r = t
            .client
            .post(t.url(&format!("/v1/kkt/receipt/{id}/resolve")))
            .bearer_auth(&t.token)
            .json(&json!({"action": action, "comment": "решение менеджера"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{action}: {}", r.text().await.unwrap());
        let (code, v) = until_final(&t, key, SEED_BODY).await;
        match action {
            "register" => assert_eq!(code, 200, "{v}"),
            _ => assert_eq!((code, v["code"].as_str()), (422, Some("receipt_voided")), "{v}"),
        }
    }
    let s = t.status().await;
    assert_eq!(
        (s["needs_review"].as_u64(), s["voided"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    t.restart().await;
    let (code, v) = post(&t, "review-void", SEED_BODY).await;
    assert_eq!(
        (code, v["code"].as_str()),
        (422, Some("receipt_voided")),
        "the same answer after a restart"
    );
}

/// `POST /v1/kkt/receipt/{id}/resolve` as the manager.
async fn resolve(t: &TestApp, id: &str, body: Value) -> (u16, Value) {
    let r = t
        .client
        .post(t.url(&format!("/v1/kkt/receipt/{id}/resolve")))
        .bearer_auth(&t.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_refusal_of_a_receipt_already_answered_202_keeps_it_for_a_person_not_a_silent_422() {
    // §10.4: the till was told "taken" (202); the device refusing it later is a person's
    // decision, not a 422 nobody waits for.
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        paper_out: true,
        ..Faults::default()
    });
    let (code, v) = post(&t, "refused-later", COFFEE).await;
    assert_eq!(code, 202, "{v}");
    let id = v["receipt_id"].as_str().unwrap().to_string();
    atol.set_faults(Faults {
        error_code: Some(16), // "Не поддерживается в данном режиме": a refusal of the receipt
        ..Faults::default()
    });
    let s = t
        .wait_status(LIMIT, "the refused receipt in review", |s| s["needs_review"] == 1)
        .await;
    assert_eq!(
        (s["refused"].as_i64().unwrap_or(0), s["fiscalizing"].as_i64()),
        (0, Some(0)),
        "{s}"
    );
    let (code, v) = post(&t, "refused-later", COFFEE).await;
    assert_eq!(code, 202, "the till keeps its receipt: {v}");
    assert!(v["reason"].as_str().unwrap().contains("код 16"), "and is told why: {v}");
    let (_, review) = t.get("/v1/kkt/review").await;
    assert_eq!(review["receipts"][0]["receipt_id"], id.as_str(), "{review}");
    // The manager fixes the cause and registers it.
    atol.set_faults(Faults::default());
    let (code, v) = resolve(&t, &id, json!({"action": "register", "comment": "режим ККТ исправлен"})).await;
    assert_eq!((code, v["status"].as_str()), (202, Some("fiscalizing")), "{v}");
    let (code, v) = until_final(&t, "refused-later", COFFEE).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(tagged(&atol, &id).len(), 1);
}

#[tokio::test]
async fn a_ready_result_counts_as_the_operation_its_job_was_posted_with() {
    // §10.3: ATOL's result does not name its operation. A sale whose job was posted in time and
    // whose result is read after the late limit is a sale in the FN, not a correction.
    let (atol, t) = setup(|s| s.kkt.late_sale_after_minutes = 5).await;
    atol.set_faults(Faults {
        hang_after_write: true,
        ..Faults::default()
    });
    let (code, v) = post(&t, "late-result", COFFEE).await;
    assert_eq!(code, 202, "{v}");
    let id = v["receipt_id"].as_str().unwrap().to_string();
    t.clock.advance(Duration::from_secs(6 * 60));
    // A retry past the limit marks the sale late and finds its job still running.
    let before = atol.polls(&id);
    wait_for(LIMIT, "a retry asking for the job", || async {
        (atol.polls(&id) > before + 1).then_some(())
    })
    .await;
    atol.set_faults(Faults::default());
    let (code, v) = until_final(&t, "late-result", COFFEE).await;
    assert_eq!(code, 200, "{v}");
    let docs = tagged(&atol, &id);
    assert_eq!((docs.len(), docs[0].operation.as_str()), (1, "sell"));
    assert!(
        v["fiscal_doc"].get("registered_as").is_none(),
        "the FN holds a sale: {v}"
    );
}

#[tokio::test]
async fn a_receipt_of_another_program_in_the_window_of_a_lost_job_makes_the_receipt_need_review() {
    // §10.2: a document in the window that belongs to nobody makes the receipt `needs_review`,
    // even where the FN keeps our tags — a person looks, the adapter does not guess.
    // Retries 3 s apart: the other program prints between the lost attempt and the next.
    let (atol, t) = setup(|s| s.kkt.device_retry = Duration::from_secs(3)).await;
    t.receipt(COFFEE).await; // the FN is seen to keep the tag
    // The job is accepted and lost with the server's in-memory queue (S5 `README.md`).
    atol.set_faults(Faults {
        vanish_next_job: true,
        ..Faults::default()
    });
    let (code, v) = post(&t, "lost-beside-foreign", COFFEE).await;
    assert_eq!(code, 202, "{v}");
    let id = v["receipt_id"].as_str().unwrap().to_string();
    let foreign = atol.foreign_receipt("sell", 99.0, Vec::new());
    t.wait_status(LIMIT, "in review", |s| s["needs_review"] == 1).await;
    let (_, review) = t.get("/v1/kkt/review").await;
    let listed: Vec<i64> = review["receipts"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fiscal_doc_number"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![foreign], "{review}");
    assert!(tagged(&atol, &id).is_empty(), "not sent again while it waits");
    let (code, v) = resolve(
        &t,
        &id,
        json!({"action": "register", "comment": "чек 99 ₽ — другой кассы"}),
    )
    .await;
    assert_eq!((code, v["status"].as_str()), (202, Some("fiscalizing")), "{v}");
    let (code, v) = until_final(&t, "lost-beside-foreign", COFFEE).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(tagged(&atol, &id).len(), 1);
}

#[tokio::test]
async fn a_long_window_is_searched_fifty_documents_at_a_time_and_no_document_is_read_twice() {
    // The FN search is bounded (§10.1, issue 17): 60 receipts of another program lie after the
    // lost job's mark; a lookup reads at most 50, the next one the rest, none again.
    let (atol, t) = setup(|s| s.kkt.device_retry = Duration::from_secs(2)).await;
    t.receipt(COFFEE).await;
    atol.set_faults(Faults {
        vanish_next_job: true,
        ..Faults::default()
    });
    let (code, v) = post(&t, "long-window", COFFEE).await;
    assert_eq!(code, 202, "{v}");
    let mark = atol.documents().last().unwrap().number;
    for i in 0..60 {
        atol.foreign_receipt("sell", 10.0 + i as f64, Vec::new());
    }
    let s = t.wait_status(LIMIT, "in review", |s| s["needs_review"] == 1).await;
    assert_eq!(s["fiscalizing"], 0, "{s}");
    let reads = atol.document_reads();
    let window: Vec<u32> = (mark + 1..=mark + 60)
        .map(|n| reads.get(&n).copied().unwrap_or(0))
        .collect();
    assert!(
        window.iter().all(|r| *r == 1),
        "each document of the window read once: {window:?}"
    );
    let (_, review) = t.get("/v1/kkt/review").await;
    assert_eq!(review["receipts"][0]["candidates"].as_array().unwrap().len(), 60);
    assert!(
        tagged(&atol, v["receipt_id"].as_str().unwrap()).is_empty(),
        "never sent while in doubt"
    );
}
