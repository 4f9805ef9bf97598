//! The receipt as ATOL's JSON task: field names and value lists as the driver's own scripts
//! and the typed wrappers give them (docs/research/atol-web-server.md §2–§3, sources S1, S6, S7
//! there).

use crate::money::Kopecks;
use crate::receipt::{PaymentObject, PaymentType, Receipt, ReceiptType, Taxation, Vat};
use serde_json::{Value, json};

fn rubles(k: Kopecks) -> Value {
    serde_json::from_str(&k.to_decimal_string()).unwrap_or(Value::Null)
}

/// The task type of a receipt type (§2.1, §2.2).
pub fn task_type(kind: ReceiptType) -> &'static str {
    match kind {
        ReceiptType::Sale => "sell",
        ReceiptType::SaleRefund => "sellReturn",
        ReceiptType::Buy => "buy",
        ReceiptType::BuyRefund => "buyReturn",
        ReceiptType::SaleCorrection => "sellCorrection",
        ReceiptType::SaleRefundCorrection => "sellReturnCorrection",
        ReceiptType::BuyCorrection => "buyCorrection",
        ReceiptType::BuyRefundCorrection => "buyReturnCorrection",
    }
}

/// The receipt type an ATOL task type registers (the inverse of [`task_type`]).
pub fn kind_of(task_type: &str) -> Option<ReceiptType> {
    [
        ReceiptType::Sale,
        ReceiptType::SaleRefund,
        ReceiptType::Buy,
        ReceiptType::BuyRefund,
        ReceiptType::SaleCorrection,
        ReceiptType::SaleRefundCorrection,
        ReceiptType::BuyCorrection,
        ReceiptType::BuyRefundCorrection,
    ]
    .into_iter()
    .find(|k| self::task_type(*k) == task_type)
}

/// An item's code for the driver (docs/research/marking.md §1.2, §1.5): base64 of its bytes
/// (S6, S7 require it; S1 falls back to raw text only when decoding fails), the planned status
/// by operation and measure (tag 2003: a sale of a piece, of a weighed good, their returns), the
/// FN's check (2106) as `itemInfoCheckResult` when the adapter has one.
fn imc_params(r: &Receipt, i: &crate::receipt::Item, code: &str) -> Value {
    let weighed = i.measure != crate::receipt::Measure::Piece;
    use crate::receipt::ReceiptType::*;
    let refund = matches!(
        r.kind,
        SaleRefund | BuyRefund | SaleRefundCorrection | BuyRefundCorrection
    );
    let status = super::marks::estimated_status(refund, weighed);
    let mut p = json!({"imcType": "auto", "imc": crate::receipt::mark::Code::new(code).base64(),
                       "itemEstimatedStatus": status, "imcModeProcessing": 0});
    if let Some(bits) = i.marking.as_ref().and_then(|m| m.tag_2106) {
        p["itemInfoCheckResult"] = crate::kkt::marks::FnCheck { tag_2106: bits }.atol();
    }
    p
}

/// The receipt as an ATOL JSON task (docs/research/atol-web-server.md §2.1, §2.2, §3), with
/// the receipt's tag as its additional attribute (tag 1192, an `items` element
/// `{"type": "additionalAttribute", "value", "print"}` — the driver's
/// `myscripts_items.js` executeAdditionalAttribute, at most 16 characters per KKTServiceLib
/// `AdditionalAttributeDocumentParams`), not printed: the FN keeps it with the document and
/// `getFnDocument` gives it back, so a lost job is matched exactly (docs/contract.md §10.2).
pub fn receipt_task(r: &Receipt, tag: &str) -> Value {
    let kind = task_type(r.kind);
    let taxation = match r.taxation {
        Taxation::Osn => "osn",
        Taxation::UsnIncome => "usnIncome",
        Taxation::UsnIncomeOutcome => "usnIncomeOutcome",
        Taxation::Esn => "esn",
        Taxation::Patent => "patent",
    };
    let items: Vec<Value> = r
        .items
        .iter()
        .map(|i| {
            let mut item = json!({
                "type": "position", "name": i.name, "price": rubles(i.price),
                "quantity": serde_json::to_value(i.quantity).unwrap_or(Value::Null), "amount": rubles(i.total),
                "measurementUnit": i.measure.code(),
                "paymentMethod": payment_method(i.payment_method),
                "paymentObject": payment_object(i.payment_object),
                "tax": {"type": tax(i.vat)},
            });
            if i.discount.0 > 0 {
                item["infoDiscountAmount"] = rubles(i.discount);
            }
            if let Some(code) = &i.marking_code {
                item["imcParams"] = imc_params(r, i, code);
                // The permissive mode's check (§12; docs/research/marking.md §4): 1260 with ФОИВ
                // 030, ПП № 1944 of 21.11.2023 (ATOL writes the date `YYYY.MM.DD`), 1265.
                if let Some(m) = i.marking.as_ref().filter(|m| m.req_id.is_some()) {
                    item["industryInfo"] = json!([{"fois": "030", "date": "2023.11.21", "number": "1944",
                        "industryAttribute": format!("UUID={}&Time={}", m.req_id.as_deref().unwrap_or_default(),
                                                     m.req_timestamp.as_deref().unwrap_or_default())}]);
                }
            }
            item
        })
        .chain(std::iter::once(
            json!({"type": "additionalAttribute", "value": tag, "print": false}),
        ))
        .collect();
    let payments: Vec<Value> = r
        .payments
        .iter()
        .map(|p| {
            let kind = match p.kind {
                PaymentType::Cash => "cash",
                PaymentType::Card => "electronically",
                PaymentType::Prepaid => "prepaid",
                PaymentType::Credit => "credit",
                PaymentType::Other => "other",
            };
            json!({"type": kind, "sum": rubles(p.amount)})
        })
        .collect();
    let mut task = json!({"type": kind, "taxationType": taxation, "items": items, "payments": payments,
                          "total": rubles(r.total)});
    if let Some(c) = &r.cashier {
        task["operator"] = json!({"name": c.name});
        if let Some(inn) = &c.inn {
            task["operator"]["vatin"] = json!(inn);
        }
    }
    if let Some(c) = &r.customer {
        task["clientInfo"] = json!({"emailOrPhone": c.contact()});
    }
    // Sent by the FN through the OFD, not printed (S1 `myscripts_base_receipt.js`:
    // `LIBFPTR_PARAM_RECEIPT_ELECTRONICALLY`; docs/research/atol-counter-operations.md §8).
    if r.electronic {
        task["electronically"] = json!(true);
    }
    if let Some(c) = &r.correction {
        task["correctionType"] = json!(match c.kind {
            crate::receipt::CorrectionKind::SelfMade => "self",
            crate::receipt::CorrectionKind::Ordered => "instruction",
        });
        task["correctionBaseDate"] = json!(c.base_date.format("%Y.%m.%d").to_string());
        task["correctionBaseNumber"] = json!(c.base_number.clone().unwrap_or_default());
    }
    task
}

pub(crate) fn tax(v: Vat) -> &'static str {
    match v {
        Vat::Vat20 => "vat20",
        Vat::Vat10 => "vat10",
        Vat::Vat20_120 => "vat120",
        Vat::Vat10_110 => "vat110",
        Vat::Vat0 => "vat0",
        Vat::None => "none",
        Vat::Vat5 => "vat5",
        Vat::Vat7 => "vat7",
        Vat::Vat5_105 => "vat105",
        Vat::Vat7_107 => "vat107",
        Vat::Vat22 => "vat22",
        Vat::Vat22_122 => "vat122",
    }
}

pub(crate) fn payment_method(m: crate::receipt::PaymentMethod) -> &'static str {
    use crate::receipt::PaymentMethod::*;
    match m {
        FullPrepayment => "fullPrepayment",
        Prepayment => "prepayment",
        Advance => "advance",
        FullPayment => "fullPayment",
        PartialPayment => "partialPayment",
        Credit => "credit",
        CreditPayment => "creditPayment",
    }
}

/// ATOL's names (§3.5); 18 as its number, since the sources disagree on its name.
pub(crate) fn payment_object(o: PaymentObject) -> String {
    use PaymentObject::*;
    match o {
        Commodity => "commodity",
        Excise => "excise",
        Job => "job",
        Service => "service",
        GamblingBet => "gamblingBet",
        GamblingPrize => "gamblingPrize",
        Lottery => "lottery",
        LotteryPrize => "lotteryPrize",
        IntellectualActivity => "intellectualActivity",
        Payment => "payment",
        AgentCommission => "agentCommission",
        Award => "composite",
        Another => "another",
        PropertyRight => "proprietaryLaw",
        NonOperatingIncome => "nonOperatingIncome",
        OtherContributions => "otherContributions",
        MerchantTax => "merchantTax",
        TouristTax => "18",
        Deposit => "deposit",
        Consumption => "consumption",
        SoleProprietorCpiContributions => "soleProprietorCPIContributions",
        CpiContributions => "cpiContributions",
        SoleProprietorCmiContributions => "soleProprietorCMIContributions",
        CmiContributions => "cmiContributions",
        CsiContributions => "csiContributions",
        CasinoPayment => "casinoPayment",
        FundsIssuance => "fundsIssuance",
        ExciseUnmarked => "exciseWithoutMarking",
        ExciseMarked => "exciseWithMarking",
        CommodityUnmarked => "commodityWithoutMarking",
        CommodityMarked => "commodityWithMarking",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{Defaults, ItemMarking, parse};

    fn marked(kind: &str, measure: &str) -> Receipt {
        let body = format!(
            r#"{{"pos_id":"P","type":"{kind}","items":[{{"name":"Сыр","price":100,"qty":1,"measure":"{measure}",
               "payment_object":"commodity_marked","marking_code":"0104630000000001210K00001\u001d93TEST"}}],
               "payments":[{{"type":"cash","amount":100}}]}}"#
        );
        let mut r = parse(body.as_bytes(), &Defaults::default()).unwrap();
        r.items[0].marking = Some(ItemMarking {
            check_id: "c".into(),
            verdict: "allowed".into(),
            tag_2106: Some(15),
            req_id: Some("c9188551-817a-85a7-93e4-7042d907ab13".into()),
            req_timestamp: Some("1757681987579".into()),
        });
        r
    }

    #[test]
    fn a_marked_item_carries_its_code_as_base64_its_status_by_operation_2106_and_1260() {
        let task = receipt_task(&marked("sale", "piece"), "KATAG");
        let item = &task["items"][0];
        let p = &item["imcParams"];
        assert_eq!(p["imc"], "MDEwNDYzMDAwMDAwMDAwMTIxMEswMDAwMR05M1RFU1Q=");
        assert_eq!(
            (p["imcType"].as_str(), p["itemEstimatedStatus"].as_str()),
            (Some("auto"), Some("itemPieceSold"))
        );
        assert_eq!(p["itemInfoCheckResult"]["imcEstimatedStatusCorrect"], true);
        assert_eq!(
            item["industryInfo"],
            json!([{"fois": "030", "date": "2023.11.21", "number": "1944",
                    "industryAttribute": "UUID=c9188551-817a-85a7-93e4-7042d907ab13&Time=1757681987579"}])
        );
        let refund = receipt_task(&marked("sale_refund", "piece"), "KATAG");
        assert_eq!(
            refund["items"][0]["imcParams"]["itemEstimatedStatus"],
            "itemPieceReturn"
        );
        let weighed = receipt_task(&marked("sale", "kilogram"), "KATAG");
        assert_eq!(
            weighed["items"][0]["imcParams"]["itemEstimatedStatus"],
            "itemDryForSale"
        );
    }
}
