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
                item["imcParams"] = json!({"imcType": "auto", "imc": code, "itemEstimatedStatus": "itemPieceSold",
                                           "imcModeProcessing": 0});
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

fn tax(v: Vat) -> &'static str {
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

fn payment_method(m: crate::receipt::PaymentMethod) -> &'static str {
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
fn payment_object(o: PaymentObject) -> String {
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
