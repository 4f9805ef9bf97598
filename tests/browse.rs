//! The manager's window's reads over HTTP (docs/contract.md §9): search by fiscal number, id, key
//! and filters; the slip and the QR image; the 24-hour activity with outages; CSV of the DLQ and
//! of a day; events that name receipts by fiscal number and sum.

use kkt_tests::*;
use serde_json::Value;
use std::time::Duration;

fn body(pos: &str, rubles: &str) -> String {
    format!(
        r#"{{"pos_id":"{pos}","type":"sale","items":[{{"name":"Хлеб","price":{rubles},"qty":1}}],"payments":[{{"type":"cash","amount":{rubles}}}]}}"#
    )
}

async fn text(t: &TestApp, path: &str) -> (u16, String, String) {
    let r = t
        .get_with(path, &[("Authorization", &format!("Bearer {}", t.token))])
        .await;
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    (status, ctype, r.text().await.unwrap_or_default())
}

fn numbers(v: &Value) -> Vec<i64> {
    v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fiscal_doc_number"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_receipt_is_found_by_number_id_prefix_key_and_filters() {
    let t = TestApp::start().await;
    let a = t.receipt(&body("POS-1", "100")).await;
    let b = t.receipt(&body("POS-2", "250.50")).await;
    let key = "till-2-sale-0042";
    let r = t.post_receipt(Some(key), &body("POS-2", "99.90")).await;
    assert_eq!(r.status(), 200);
    let c: Value = r.json().await.unwrap();
    let n = |v: &Value| v["fiscal_doc"]["fiscal_doc_number"].as_i64().unwrap();

    let (s, v) = t.get(&format!("/v1/kkt/receipts?q={}", n(&b))).await;
    assert_eq!(s, 200);
    assert_eq!(numbers(&v), vec![n(&b)], "by fiscal document number");
    let id = a["receipt_id"].as_str().unwrap();
    assert_eq!(
        numbers(&t.get(&format!("/v1/kkt/receipts?q={id}")).await.1),
        vec![n(&a)],
        "by id"
    );
    assert_eq!(
        numbers(&t.get(&format!("/v1/kkt/receipts?q={}", &id[..8])).await.1),
        vec![n(&a)],
        "by the id's first 8"
    );
    assert_eq!(
        numbers(&t.get(&format!("/v1/kkt/receipts?q={key}")).await.1),
        vec![n(&c)],
        "by key"
    );
    assert_eq!(
        numbers(&t.get("/v1/kkt/receipts?pos_id=POS-2").await.1),
        vec![n(&c), n(&b)],
        "till, newest first"
    );
    assert_eq!(
        numbers(&t.get("/v1/kkt/receipts?amount=250,50").await.1),
        vec![n(&b)],
        "amount with a comma"
    );
    assert_eq!(
        numbers(&t.get("/v1/kkt/receipts?pos_id=POS-2&amount=100").await.1),
        Vec::<i64>::new()
    );
    assert!(numbers(&t.get("/v1/kkt/receipts?q=999999").await.1).is_empty());
    assert!(
        numbers(&t.get("/v1/kkt/receipts?q=%25").await.1).is_empty(),
        "LIKE wildcards are not taken from the user"
    );
    // A day in the register's zone: today has all three, the day before none.
    let today = chrono::Local::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    assert_eq!(
        numbers(&t.get(&format!("/v1/kkt/receipts?date={today}")).await.1).len(),
        3
    );
    assert!(numbers(&t.get(&format!("/v1/kkt/receipts?date={yesterday}")).await.1).is_empty());
    let row = &t.get(&format!("/v1/kkt/receipts?q={key}")).await.1["receipts"][0];
    assert_eq!(row["total"], 99.9);
    assert_eq!(row["pos_id"], "POS-2");
    assert_eq!(row["idempotency_key"], key);
    assert_eq!(t.get("/v1/kkt/receipts?date=31.12.2026").await.0, 400);
    assert_eq!(t.get("/v1/kkt/receipts?amount=lots").await.0, 400);
    assert_eq!(t.get("/v1/kkt/receipts?color=red").await.0, 400);
}

#[tokio::test]
async fn the_slip_and_the_qr_image_of_a_printed_receipt() {
    let t = TestApp::start().await;
    let v = t.receipt(ORIGINAL_BODY).await;
    let id = v["receipt_id"].as_str().unwrap();
    let (s, ctype, slip) = text(&t, &format!("/v1/kkt/receipt/{id}/slip")).await;
    assert_eq!(s, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let fd = v["fiscal_doc"]["fiscal_doc_number"].as_i64().unwrap();
    for part in [
        "Хлеб",
        "Сыр",
        "405.97",
        v["fiscal_doc"]["fiscal_sign"].as_str().unwrap(),
    ] {
        assert!(slip.contains(part), "the slip shows {part}:\n{slip}");
    }
    assert!(slip.contains(&fd.to_string()), "{slip}");
    let r = t
        .get_with(
            &format!("/v1/kkt/receipt/{id}/qr.svg"),
            &[("Authorization", &format!("Bearer {}", t.token))],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let svg = r.text().await.unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("</svg>") && svg.len() > 2000,
        "{}",
        &svg[..svg.len().min(200)]
    );
    assert_eq!(t.get("/v1/kkt/receipt/nope/slip").await.0, 404);
    assert_eq!(t.get("/v1/kkt/receipt/nope/qr.svg").await.0, 404);
}

#[tokio::test]
async fn activity_counts_taken_delivered_failed_and_shades_the_outage() {
    let ofd = mock_ofd().await;
    let t = TestApp::start_with(|s| {
        s.ofd_url = Some(ofd.url());
        s.breaker.failure_threshold = 2;
        s.breaker.open_initial = Duration::from_millis(300);
    })
    .await;
    for i in 0..3 {
        t.receipt(&body("POS-1", &format!("{}", 10 + i))).await;
    }
    t.wait_status(Duration::from_secs(20), "3 delivered", |s| n(s, "synced") == 3)
        .await;
    ofd.set_faults(mock_ofd::Faults {
        down: true,
        ..Default::default()
    });
    t.receipt(&body("POS-1", "5")).await;
    t.wait_status(Duration::from_secs(20), "the breaker open", |s| {
        s["breaker"]["state"] != "closed"
    })
    .await;
    ofd.set_faults(mock_ofd::Faults {
        reject_pos_ids: vec!["POS-BAD".into()],
        ..Default::default()
    });
    t.receipt(&body("POS-BAD", "7")).await;
    t.receipt(&body("POS-1", "8")).await;
    // The open period is 0.5 s here; probes that succeed close the breaker.
    t.wait_status(
        Duration::from_secs(30),
        "5 delivered, 1 in the DLQ, the breaker closed",
        |s| n(s, "synced") == 5 && n(s, "dlq_size") == 1 && s["breaker"]["state"] == "closed",
    )
    .await;

    let (s, a) = t.get("/v1/kkt/activity").await;
    assert_eq!(s, 200);
    let intervals = a["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 24, "hourly over 24 h");
    let sum = |k: &str| intervals.iter().map(|i| i[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("taken"), sum("delivered"), sum("failed")), (6, 5, 1));
    // Everything happened within the last two intervals (the current hour, or the turn of one).
    let recent: u64 = intervals[22..].iter().map(|i| i["taken"].as_u64().unwrap()).sum();
    assert_eq!(recent, 6);
    let outages = a["outages"].as_array().unwrap();
    assert_eq!(outages.len(), 1, "{a}");
    assert_eq!(outages[0]["ongoing"], false);
    assert!(outages[0]["from"].as_str().unwrap() < outages[0]["to"].as_str().unwrap());
    let (_, fine) = t.get("/v1/kkt/activity?hours=2&interval_minutes=15").await;
    assert_eq!(fine["intervals"].as_array().unwrap().len(), 8);
    assert_eq!(t.get("/v1/kkt/activity?hours=0").await.0, 400);
    assert_eq!(t.get("/v1/kkt/activity?interval_minutes=1").await.0, 400);

    // The DLQ as CSV: BOM, semicolons, decimal comma, the reason.
    let (s, ctype, csv) = text(&t, "/v1/kkt/dlq.csv").await;
    assert_eq!(s, 200);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    assert!(csv.starts_with('\u{feff}'), "BOM for spreadsheets");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("ФД №;Время продажи;Касса"), "{}", lines[0]);
    assert!(
        lines[1].contains(";POS-BAD;sale;7,00;наличными 7,00;rejected_by_ofd;"),
        "{}",
        lines[1]
    );

    // A day's receipts.
    let today = chrono::Local::now().date_naive();
    let (s, _, day) = text(&t, &format!("/v1/kkt/receipts.csv?date={today}")).await;
    assert_eq!(s, 200);
    let rows: Vec<&str> = day.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{day}");
    assert_eq!(rows.iter().filter(|r| r.contains(";synced;")).count(), 5, "{day}");
    let (_, _, none) = text(&t, &format!("/v1/kkt/receipts.csv?date={}", today.pred_opt().unwrap())).await;
    assert_eq!(none.lines().count(), 1, "only the header");
    assert_eq!(t.get("/v1/kkt/receipts.csv?date=yesterday").await.0, 400);
}

#[tokio::test]
async fn events_name_receipts_by_fiscal_number_and_sum() {
    let t = TestApp::start().await;
    let v = t.receipt(&body("POS-1", "123.45")).await;
    let fd = v["fiscal_doc"]["fiscal_doc_number"].as_i64().unwrap();
    let page = wait_for(Duration::from_secs(10), "the receipt delivered", || async {
        let (_, page) = t.get("/v1/kkt/buffer/events?latest=20").await;
        let synced = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "receipt_synced");
        synced.then_some(page)
    })
    .await;
    for e in page["events"].as_array().unwrap() {
        if e["receipt_id"].is_string() {
            assert_eq!(e["fiscal_doc_number"], fd, "{e}");
            assert_eq!(e["total"], 123.45, "{e}");
        } else {
            assert!(e.get("fiscal_doc_number").is_none(), "{e}");
        }
    }
}
