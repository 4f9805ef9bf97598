//! The FFD 1.2 value lists the receipt model uses: each value's name in the API (snake_case, as in
//! ATOL Online v5), its tag value in the fiscal document, and how the slip prints it.
//!
//! Sources (see docs/research/ffd-1.2.md for the tables and where each comes from): tag 2108
//! (measure), 1214 (payment method), 1212 (payment object, with the FFD 1.2 marked-goods values
//! 30–33), 1199 (VAT rate, with 11 = 22 % and 12 = 22/122 from 2026), 1055 (taxation, a bit
//! mask), 1054 (operation) and the payment sum tags 1031/1081/1215/1216/1217.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines a value list: `Variant = code, "api_name" | "alias" …, "как на чеке"`.
macro_rules! value_list {
    ($(#[$meta:meta])* $name:ident, tag $tag:literal {
        $($(#[$vmeta:meta])* $variant:ident = $code:literal, $text:literal $(| $alias:literal)*, $ru:literal;)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The FFD tag this list belongs to.
            pub const TAG: u16 = $tag;

            /// The name in the API and in stored receipts.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value in the fiscal document (for payments: the tag of their sum).
            pub fn code(self) -> u16 {
                match self { $($name::$variant => $code),+ }
            }

            /// As the slip prints it.
            pub fn label_ru(self) -> &'static str {
                match self { $($name::$variant => $ru),+ }
            }

            /// The value named `name` (or one of its aliases).
            pub fn parse(name: &str) -> Option<$name> {
                match name {
                    $($text $(| $alias)* => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Every accepted name, for error messages.
            pub fn names() -> String {
                [$($text),+].join(", ")
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                $name::parse(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} {name:?}", stringify!($name)))
                })
            }
        }
    };
}

value_list! {
    /// The receipt's type: the operation (tag 1054) and whether it corrects an earlier settlement.
    ReceiptType, tag 1054 {
        Sale = 1, "sale", "КАССОВЫЙ ЧЕК / ПРИХОД";
        SaleRefund = 2, "sale_refund" | "refund", "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА";
        Buy = 3, "buy", "КАССОВЫЙ ЧЕК / РАСХОД";
        BuyRefund = 4, "buy_refund", "КАССОВЫЙ ЧЕК / ВОЗВРАТ РАСХОДА";
        SaleCorrection = 1, "sale_correction" | "correction", "ЧЕК КОРРЕКЦИИ / ПРИХОД";
        SaleRefundCorrection = 2, "sale_refund_correction", "ЧЕК КОРРЕКЦИИ / ВОЗВРАТ ПРИХОДА";
        BuyCorrection = 3, "buy_correction", "ЧЕК КОРРЕКЦИИ / РАСХОД";
        BuyRefundCorrection = 4, "buy_refund_correction", "ЧЕК КОРРЕКЦИИ / ВОЗВРАТ РАСХОДА";
    }
}

impl ReceiptType {
    /// A correction receipt (tags 1173, 1174).
    pub fn is_correction(self) -> bool {
        matches!(
            self,
            ReceiptType::SaleCorrection
                | ReceiptType::SaleRefundCorrection
                | ReceiptType::BuyCorrection
                | ReceiptType::BuyRefundCorrection
        )
    }

    /// The correction receipt of this operation (a correction is its own).
    pub fn correction(self) -> ReceiptType {
        match self {
            ReceiptType::Sale | ReceiptType::SaleCorrection => ReceiptType::SaleCorrection,
            ReceiptType::SaleRefund | ReceiptType::SaleRefundCorrection => ReceiptType::SaleRefundCorrection,
            ReceiptType::Buy | ReceiptType::BuyCorrection => ReceiptType::BuyCorrection,
            ReceiptType::BuyRefund | ReceiptType::BuyRefundCorrection => ReceiptType::BuyRefundCorrection,
        }
    }

    /// A refund (returns money to the buyer or from the seller).
    pub fn is_refund(self) -> bool {
        matches!(self, ReceiptType::SaleRefund | ReceiptType::BuyRefund)
    }

    /// Whether its money goes into the register's drawer (a sale, a buy refund, and their
    /// corrections) rather than out of it.
    pub fn money_in(self) -> bool {
        matches!(
            self,
            ReceiptType::Sale | ReceiptType::SaleCorrection | ReceiptType::BuyRefund | ReceiptType::BuyRefundCorrection
        )
    }

    /// The QR code's `n`: the operation (1 sale, 2 sale refund, 3 buy, 4 buy refund); a
    /// correction carries the operation it corrects.
    pub fn qr_operation(self) -> u16 {
        self.code()
    }
}

value_list! {
    /// Tag 1055: the taxation system, a bit of the FFD bit mask (ЕНВД is abolished since 2021).
    Taxation, tag 1055 {
        Osn = 1, "osn", "ОСН";
        UsnIncome = 2, "usn_income", "УСН доход";
        UsnIncomeOutcome = 4, "usn_income_outcome", "УСН доход - расход";
        Esn = 16, "esn", "ЕСХН";
        Patent = 32, "patent", "ПСН";
    }
}

value_list! {
    /// Tag 2108: the unit of the quantity.
    Measure, tag 2108 {
        Piece = 0, "piece", "шт";
        Gram = 10, "gram", "г";
        Kilogram = 11, "kilogram", "кг";
        Ton = 12, "ton", "т";
        Centimeter = 20, "centimeter", "см";
        Decimeter = 21, "decimeter", "дм";
        Meter = 22, "meter", "м";
        SquareCentimeter = 30, "square_centimeter", "кв. см";
        SquareDecimeter = 31, "square_decimeter", "кв. дм";
        SquareMeter = 32, "square_meter", "кв. м";
        Milliliter = 40, "milliliter", "мл";
        Liter = 41, "liter", "л";
        CubicMeter = 42, "cubic_meter", "куб. м";
        KilowattHour = 50, "kilowatt_hour", "кВт·ч";
        Gigacalorie = 51, "gigacalorie", "Гкал";
        Day = 70, "day", "сутки";
        Hour = 71, "hour", "ч";
        Minute = 72, "minute", "мин";
        Second = 73, "second", "с";
        Kilobyte = 80, "kilobyte", "Кбайт";
        Megabyte = 81, "megabyte", "Мбайт";
        Gigabyte = 82, "gigabyte", "Гбайт";
        Terabyte = 83, "terabyte", "Тбайт";
        Other = 255, "other", "ед.";
    }
}

value_list! {
    /// Tag 1214: how the item is paid for.
    PaymentMethod, tag 1214 {
        FullPrepayment = 1, "full_prepayment", "ПРЕДОПЛАТА 100%";
        Prepayment = 2, "prepayment", "ПРЕДОПЛАТА";
        Advance = 3, "advance", "АВАНС";
        FullPayment = 4, "full_payment", "ПОЛНЫЙ РАСЧЕТ";
        PartialPayment = 5, "partial_payment", "ЧАСТИЧНЫЙ РАСЧЕТ И КРЕДИТ";
        Credit = 6, "credit", "ПЕРЕДАЧА В КРЕДИТ";
        CreditPayment = 7, "credit_payment", "ОПЛАТА КРЕДИТА";
    }
}

value_list! {
    /// Tag 1212: what the item is. In FFD 1.2 goods subject to marking are 30–33, never 1 or 2.
    PaymentObject, tag 1212 {
        Commodity = 1, "commodity", "ТОВАР";
        Excise = 2, "excise", "ПОДАКЦИЗНЫЙ ТОВАР";
        Job = 3, "job", "РАБОТА";
        Service = 4, "service", "УСЛУГА";
        GamblingBet = 5, "gambling_bet", "СТАВКА АЗАРТНОЙ ИГРЫ";
        GamblingPrize = 6, "gambling_prize", "ВЫИГРЫШ АЗАРТНОЙ ИГРЫ";
        Lottery = 7, "lottery", "ЛОТЕРЕЙНЫЙ БИЛЕТ";
        LotteryPrize = 8, "lottery_prize", "ВЫИГРЫШ ЛОТЕРЕИ";
        IntellectualActivity = 9, "intellectual_activity", "ПРЕДОСТАВЛЕНИЕ РИД";
        Payment = 10, "payment", "ПЛАТЕЖ";
        AgentCommission = 11, "agent_commission", "АГЕНТСКОЕ ВОЗНАГРАЖДЕНИЕ";
        Award = 12, "award" | "composite", "ВЫПЛАТА";
        Another = 13, "another", "ИНОЙ ПРЕДМЕТ РАСЧЕТА";
        PropertyRight = 14, "property_right", "ИМУЩЕСТВЕННОЕ ПРАВО";
        NonOperatingIncome = 15, "non_operating_income", "ВНЕРЕАЛИЗАЦИОННЫЙ ДОХОД";
        OtherContributions = 16, "other_contributions" | "insurance_premium", "ИНЫЕ ПЛАТЕЖИ И ВЗНОСЫ";
        MerchantTax = 17, "merchant_tax", "ТОРГОВЫЙ СБОР";
        TouristTax = 18, "tourist_tax" | "resort_fee", "ТУРИСТИЧЕСКИЙ НАЛОГ";
        Deposit = 19, "deposit", "ЗАЛОГ";
        Consumption = 20, "consumption", "РАСХОД";
        SoleProprietorCpiContributions = 21, "sole_proprietor_cpi_contributions", "ВЗНОСЫ НА ОПС ИП";
        CpiContributions = 22, "cpi_contributions", "ВЗНОСЫ НА ОПС";
        SoleProprietorCmiContributions = 23, "sole_proprietor_cmi_contributions", "ВЗНОСЫ НА ОМС ИП";
        CmiContributions = 24, "cmi_contributions", "ВЗНОСЫ НА ОМС";
        CsiContributions = 25, "csi_contributions", "ВЗНОСЫ НА ОСС";
        CasinoPayment = 26, "casino_payment", "ПЛАТЕЖ КАЗИНО";
        FundsIssuance = 27, "funds_issuance", "ВЫДАЧА ДЕНЕЖНЫХ СРЕДСТВ";
        ExciseUnmarked = 30, "excise_unmarked" | "excise_without_marking", "АТНМ";
        ExciseMarked = 31, "excise_marked" | "excise_with_marking", "АТМ";
        CommodityUnmarked = 32, "commodity_unmarked" | "commodity_without_marking", "ТНМ";
        CommodityMarked = 33, "commodity_marked" | "commodity_with_marking", "ТМ";
    }
}

impl PaymentObject {
    /// Goods sold with their marking code (tag 2000 required).
    pub fn needs_marking_code(self) -> bool {
        matches!(self, PaymentObject::ExciseMarked | PaymentObject::CommodityMarked)
    }
}

value_list! {
    /// Tag 1199: the item's VAT rate. 22 % replaced 20 % on 2026-01-01; 20 % remains for refunds
    /// and corrections of earlier settlements.
    Vat, tag 1199 {
        Vat20 = 1, "vat20", "НДС 20%";
        Vat10 = 2, "vat10", "НДС 10%";
        Vat20_120 = 3, "vat20_120" | "vat120", "НДС 20/120";
        Vat10_110 = 4, "vat10_110" | "vat110", "НДС 10/110";
        Vat0 = 5, "vat0", "НДС 0%";
        None = 6, "none", "БЕЗ НДС";
        Vat5 = 7, "vat5", "НДС 5%";
        Vat7 = 8, "vat7", "НДС 7%";
        Vat5_105 = 9, "vat5_105" | "vat105", "НДС 5/105";
        Vat7_107 = 10, "vat7_107" | "vat107", "НДС 7/107";
        Vat22 = 11, "vat22", "НДС 22%";
        Vat22_122 = 12, "vat22_122" | "vat122", "НДС 22/122";
    }
}

impl Vat {
    /// The percentage in the item's cost (`None`: not subject to VAT).
    pub fn percent(self) -> Option<i64> {
        match self {
            Vat::Vat20 | Vat::Vat20_120 => Some(20),
            Vat::Vat10 | Vat::Vat10_110 => Some(10),
            Vat::Vat22 | Vat::Vat22_122 => Some(22),
            Vat::Vat5 | Vat::Vat5_105 => Some(5),
            Vat::Vat7 | Vat::Vat7_107 => Some(7),
            Vat::Vat0 => Some(0),
            Vat::None => None,
        }
    }

    /// The 20 % rates, allowed only for settlements made before 2026-01-01.
    pub fn is_twenty(self) -> bool {
        matches!(self, Vat::Vat20 | Vat::Vat20_120)
    }

    /// The VAT inside `cost` (prices include VAT): `cost × r / (100 + r)`, rounded half-up to
    /// whole kopecks, in integers (tag 1200). Zero for 0 % and for "no VAT".
    pub fn amount(self, cost: crate::money::Kopecks) -> crate::money::Kopecks {
        let Some(r) = self.percent().filter(|r| *r > 0) else {
            return crate::money::Kopecks(0);
        };
        let num = cost.0 as i128 * r as i128;
        let den = (100 + r) as i128;
        let half_up = (2 * num + den).div_euclid(2 * den);
        crate::money::Kopecks(half_up as i64)
    }

    /// The rate the older numeric `vat_rate` field names (0, 5, 7, 10, 20, 22, "none").
    pub fn from_percent(p: u8) -> Option<Vat> {
        match p {
            0 => Some(Vat::Vat0),
            5 => Some(Vat::Vat5),
            7 => Some(Vat::Vat7),
            10 => Some(Vat::Vat10),
            20 => Some(Vat::Vat20),
            22 => Some(Vat::Vat22),
            _ => None,
        }
    }
}

value_list! {
    /// A payment form, coded by the tag of its sum in the fiscal document.
    PaymentType, tag 1020 {
        Cash = 1031, "cash", "НАЛИЧНЫМИ";
        Card = 1081, "card" | "electronic", "БЕЗНАЛИЧНЫМИ";
        Prepaid = 1215, "prepaid", "ПРЕДВАРИТЕЛЬНАЯ ОПЛАТА (АВАНС)";
        Credit = 1216, "credit", "ПОСЛЕДУЮЩАЯ ОПЛАТА (КРЕДИТ)";
        Other = 1217, "other", "ИНАЯ ФОРМА ОПЛАТЫ";
    }
}

value_list! {
    /// Tag 1173: a correction made on the seller's own initiative or by a tax authority's order.
    CorrectionKind, tag 1173 {
        SelfMade = 0, "self", "САМОСТОЯТЕЛЬНО";
        Ordered = 1, "ordered", "ПО ПРЕДПИСАНИЮ";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Kopecks;
    use proptest::prelude::*;

    #[test]
    fn names_aliases_and_codes() {
        assert_eq!(ReceiptType::parse("refund"), Some(ReceiptType::SaleRefund));
        assert_eq!(ReceiptType::parse("correction"), Some(ReceiptType::SaleCorrection));
        assert_eq!(ReceiptType::BuyRefundCorrection.qr_operation(), 4);
        assert_eq!(PaymentType::parse("electronic"), Some(PaymentType::Card));
        assert_eq!(
            (Vat::Vat22.code(), Vat::Vat22_122.code(), Vat::None.code()),
            (11, 12, 6)
        );
        assert_eq!(Measure::Kilogram.code(), 11);
        assert_eq!(PaymentObject::CommodityMarked.code(), 33);
        assert_eq!(Taxation::Patent.code(), 32);
        assert_eq!(serde_json::to_string(&Vat::Vat10_110).unwrap(), "\"vat10_110\"");
        assert_eq!(serde_json::from_str::<Vat>("\"vat122\"").unwrap(), Vat::Vat22_122);
    }

    #[test]
    fn vat_is_the_share_inside_the_cost_rounded_half_up() {
        assert_eq!(Vat::Vat22.amount(Kopecks(12200)), Kopecks(2200));
        assert_eq!(Vat::Vat22_122.amount(Kopecks(10000)), Kopecks(1803)); // 18.032…
        assert_eq!(Vat::Vat10.amount(Kopecks(10000)), Kopecks(909)); // 9.0909…
        assert_eq!(Vat::Vat20.amount(Kopecks(100)), Kopecks(17)); // 16.67 → 17
        assert_eq!(Vat::Vat5.amount(Kopecks(21)), Kopecks(1)); // 1.0 exactly
        assert_eq!(Vat::Vat7.amount(Kopecks(1)), Kopecks(0)); // 0.065 → 0
        assert_eq!(Vat::Vat0.amount(Kopecks(10000)), Kopecks(0));
        assert_eq!(Vat::None.amount(Kopecks(10000)), Kopecks(0));
    }

    #[test]
    fn the_openapi_description_lists_exactly_these_values() {
        let spec: serde_json::Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
        let item = &spec["components"]["schemas"]["Item"]["properties"];
        let names = |v: &serde_json::Value| -> Vec<String> {
            let mut n: Vec<String> = v["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            n.sort();
            n
        };
        let ours = |all: Vec<&'static str>| -> Vec<String> {
            let mut n: Vec<String> = all.into_iter().map(str::to_string).collect();
            n.sort();
            n
        };
        assert_eq!(
            names(&item["measure"]),
            ours(Measure::ALL.iter().map(|m| m.as_str()).collect())
        );
        assert_eq!(
            names(&item["payment_object"]),
            ours(PaymentObject::ALL.iter().map(|m| m.as_str()).collect())
        );
        assert_eq!(
            names(&item["payment_method"]),
            ours(PaymentMethod::ALL.iter().map(|m| m.as_str()).collect())
        );
        assert_eq!(names(&item["vat"]), ours(Vat::ALL.iter().map(|m| m.as_str()).collect()));
    }

    proptest! {
        #[test]
        fn the_vat_part_and_the_rest_sum_to_the_cost_for_every_rate(cost in 0i64..4_294_967_295, i in 0usize..12) {
            let vat = Vat::ALL[i];
            let a = vat.amount(Kopecks(cost));
            prop_assert!(a.0 >= 0 && a.0 <= cost);
            // Exactly the half-up rounding of cost × r / (100 + r), checked in rationals.
            if let Some(r) = vat.percent().filter(|r| *r > 0) {
                let exact_times_den = cost as i128 * r as i128;
                let den = (100 + r) as i128;
                let diff = a.0 as i128 * den - exact_times_den; // = den × (rounded − exact)
                // Half-up: rounded − exact ∈ (−½, +½], a tie goes up.
                prop_assert!(2 * diff > -den && 2 * diff <= den, "cost {cost} rate {r} amount {a:?}");
            } else {
                prop_assert_eq!(a.0, 0);
            }
        }
    }
}
