#!/usr/bin/env python3
"""Writes core/openapi.json, the OpenAPI 3.0 description of the local API (docs/contract.md §1).

Kept as a script so the spec is reviewed as code; run it after changing the API:
    python3 tests/tools/openapi.py
"""
import json, pathlib

def ref(name): return {"$ref": f"#/components/schemas/{name}"}
def ok(schema, desc="OK"): return {"description": desc, "content": {"application/json": {"schema": schema}}}
def err(desc): return {"description": desc, "content": {"application/json": {"schema": ref("Error")}}}
ADMIN = [{"adminToken": []}]
money = {"oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}],
         "description": "Rubles, at most 2 decimals; parsed exactly from the JSON text (never through a float)."}

MEASURES = ["piece", "gram", "kilogram", "ton", "centimeter", "decimeter", "meter", "square_centimeter", "square_decimeter",
            "square_meter", "milliliter", "liter", "cubic_meter", "kilowatt_hour", "gigacalorie", "day", "hour", "minute", "second",
            "kilobyte", "megabyte", "gigabyte", "terabyte", "other"]
OBJECTS = ["commodity", "excise", "job", "service", "gambling_bet", "gambling_prize", "lottery", "lottery_prize", "intellectual_activity",
           "payment", "agent_commission", "award", "another", "property_right", "non_operating_income", "other_contributions", "merchant_tax",
           "tourist_tax", "deposit", "consumption", "sole_proprietor_cpi_contributions", "cpi_contributions", "sole_proprietor_cmi_contributions",
           "cmi_contributions", "csi_contributions", "casino_payment", "funds_issuance", "excise_unmarked", "excise_marked",
           "commodity_unmarked", "commodity_marked"]
VATS = ["vat22", "vat22_122", "vat10", "vat10_110", "vat0", "none", "vat5", "vat7", "vat5_105", "vat7_107", "vat20", "vat20_120"]
TYPES = ["sale", "sale_refund", "refund", "buy", "buy_refund", "sale_correction", "correction", "sale_refund_correction",
         "buy_correction", "buy_refund_correction"]

def op(summary, result, body, key_required=True, params=()):
    """A counter operation (docs/contract.md §11): exactly once under its Idempotency-Key."""
    entry = {"summary": summary + " (docs/contract.md §11; a till's token or the admin token)",
      "parameters": [{"name": "Idempotency-Key", "in": "header", "required": key_required,
                      "schema": {"type": "string", "minLength": 1, "maxLength": 255}}, *params],
      "responses": {
        "200": ok({"allOf": [ref("OperationHead"), result]}, "Done on the register; a replay answers the same bytes with Idempotent-Replayed: true"),
        "202": ok({"type": "object", "properties": {"status": {"type": "string", "enum": ["awaiting_device"]},
          "operation_id": {"type": "string"}, "reason": {"type": "string"}, "message": {"type": "string"}}},
          "Stored; the register has not done it yet (no paper, not connected). Repeat the key for the result"),
        "400": err("Missing/invalid Idempotency-Key or malformed JSON"), "401": err("No till or admin token"),
        "409": err("shift_not_open, shift_expired (nothing stored: the key may be sent again), idempotency_request_in_progress, or operation_unknown (the register cannot tell whether an interrupted operation happened; stored)"),
        "422": err("validation_error, idempotency_key_reused (another body or another endpoint), or kkt_refused (the register refused it: device_error {code, message}; stored)"),
        "503": err("device_unavailable, fn_blocked, kkt_misconfigured, or storage_unavailable")}}
    if body is not None:
        entry["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    return {"post": entry}

MOVEMENT = {"type": "object", "properties": {"count": {"type": "integer"}, "sum": {"type": "number"}}}
TOTALS = {"shift_number": {"type": "integer"}, "receipts": {"type": "integer"},
  "operations": {"type": "array", "items": {"type": "object", "properties": {"type": {"type": "string"}, "count": {"type": "integer"},
    "total": {"type": "number"}, "payments": {"type": "array", "items": {"type": "object"}}, "vat": {"type": "array", "items": {"type": "object"}}}}},
  "cash_in": MOVEMENT, "cash_out": MOVEMENT, "cash_in_drawer": {"type": "number", "nullable": True}}

spec = {
  "openapi": "3.0.3",
  "info": {"title": "KKT Adapter local API", "version": "0.1.0",
           "description": "Phase 1 (durable intake, KKT print, immediate answer) and Phase 2 (background OFD sync). "
                          "Every error is JSON: {code, message, details?}. Admin calls need Authorization: Bearer <admin token>."},
  "servers": [{"url": "http://127.0.0.1:8000"}],
  "components": {
    "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
      "Item": {"type": "object", "required": ["name", "price"], "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 128, "description": "tag 1030"}, "price": money,
        "quantity": {"oneOf": [{"type": "number"}, {"type": "string"}], "description": "> 0, at most 6 decimals (tag 1023); alias qty"},
        "qty": {"oneOf": [{"type": "number"}, {"type": "string"}], "description": "alias of quantity"},
        "total": {**money, "description": "optional; ≤ price × quantity (+0.01 rounding); less is a discount (kept and printed)"},
        "measure": {"type": "string", "enum": MEASURES, "default": "piece", "description": "tag 2108"},
        "payment_method": {"type": "string", "enum": ["full_prepayment", "prepayment", "advance", "full_payment", "partial_payment", "credit", "credit_payment"],
                           "default": "full_payment", "description": "tag 1214"},
        "payment_object": {"type": "string", "enum": OBJECTS, "default": "commodity",
                           "description": "tag 1212; commodity_marked / excise_marked need marking_code (a marking code alone makes commodity_marked)"},
        "marking_code": {"type": "string", "minLength": 1, "maxLength": 223, "description": "tag 2000, as scanned (GS separators kept)"},
        "marking_check_id": {"type": "string", "maxLength": 64, "description": "the till's check of this code (POST /v1/kkt/marking/check; docs/contract.md §12)"},
        "vat": {"type": "string", "enum": VATS, "description": "tag 1199; vat20/vat20_120 only on refunds and corrections of settlements before 2026-01-01; default [fiscal] default_vat"},
        "vat_rate": {"oneOf": [{"type": "integer", "enum": [0, 5, 7, 10, 22]}, {"type": "string", "enum": ["none"]}],
                     "description": "the original adapter's field; maps to vat (20 gets the same 422 as vat20 on a sale)"}}},
      "Payment": {"type": "object", "required": ["type", "amount"], "properties": {
        "type": {"type": "string", "enum": ["cash", "card", "electronic", "prepaid", "credit", "other"],
                 "description": "tags 1031, 1081 (card = electronic), 1215, 1216, 1217; only cash may exceed the total (change)"},
        "amount": money}},
      "ReceiptRequest": {"type": "object", "required": ["pos_id", "type", "items", "payments"], "properties": {
        "pos_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "type": {"type": "string", "enum": TYPES, "description": "tag 1054 and the correction flag; refund = sale_refund, correction = sale_correction"},
        "taxation": {"type": "string", "enum": ["osn", "usn_income", "usn_income_outcome", "esn", "patent"], "description": "tag 1055; default [fiscal] taxation"},
        "cashier": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 64, "description": "tag 1021"},
                    "inn": {"type": "string", "pattern": r"^\d{12}$", "description": "tag 1203"}}},
        "customer": {"type": "object", "description": "tag 1008: one of", "properties": {"email": {"type": "string"}, "phone": {"type": "string", "pattern": r"^\+\d{7,15}$"}}},
        "electronic": {"type": "boolean", "default": False, "description": "Sent to the customer by the FN through the OFD and not printed (ATOL electronically); needs customer (docs/contract.md §11)"},
        "correction": {"type": "object", "required": ["kind", "base_date"], "description": "required for the *_correction types",
                       "properties": {"kind": {"type": "string", "enum": ["self", "ordered"], "description": "tag 1173"},
                                      "base_date": {"type": "string", "format": "date", "description": "tag 1178"},
                                      "base_number": {"type": "string", "maxLength": 32, "description": "tag 1179; required when ordered"}}},
        "base_date": {"type": "string", "format": "date", "description": "refunds only: the date of the sale refunded (for vat20)"},
        "items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": ref("Item")},
        "payments": {"type": "array", "minItems": 1, "maxItems": 20, "items": ref("Payment")}},
        "description": "Every amount and the total ≤ 42 949 672.95 (the FN's counter)."},
      "ShiftStatus": {"type": "object", "properties": {"state": {"type": "string", "enum": ["open", "expired", "closed"]},
        "number": {"type": "integer"}, "opened_at": {"type": "string", "nullable": True}, "expires_at": {"type": "string", "nullable": True},
        "receipts": {"type": "integer"}, "fn_number": {"type": "string"}, "last_fiscal_doc_number": {"type": "integer"}}},
      "DeviceInfo": {"type": "object", "description": "The register itself (§11); what a register does not tell is null",
        "properties": {"model": {"type": "string"}, "serial": {"type": "string"}, "firmware": {"type": "string", "nullable": True},
        "ffd_version": {"type": "string", "nullable": True}, "fn_number": {"type": "string"},
        "fn_valid_until": {"type": "string", "nullable": True, "description": "When the FN's keys expire (RFC 3339)"},
        "fn_phase": {"type": "string", "nullable": True}, "shift": {"type": "string", "enum": ["open", "expired", "closed"]},
        "shift_number": {"type": "integer"}, "paper_present": {"type": "boolean", "nullable": True},
        "cover_open": {"type": "boolean", "nullable": True}, "drawer_open": {"type": "boolean", "nullable": True},
        "fn_unsent": {"type": "integer", "description": "Documents in the FN the OFD has not confirmed"},
        "fn_unsent_first": {"type": "integer", "nullable": True}, "fn_unsent_first_at": {"type": "string", "nullable": True},
        "cash_in_drawer": {"type": "number", "nullable": True, "description": "The register's cash counter, rubles"}}},
      "ZReport": {"type": "object", "properties": {"shift_number": {"type": "integer"}, "fiscal_doc_number": {"type": "integer"},
        "fiscal_sign": {"type": "string"}, "fn_number": {"type": "string"}, "opened_at": {"type": "string"}, "closed_at": {"type": "string"},
        "receipts": {"type": "integer"}, "operations": TOTALS["operations"], "cash_in": MOVEMENT, "cash_out": MOVEMENT,
        "cash_in_drawer": {"type": "number"}, "cashier": {"$ref": "#/components/schemas/Cashier"}}},
      "MarkingCheck": {"type": "object", "properties": {"check_id": {"type": "string"}, "operation": {"type": "string", "enum": ["sale", "refund"]},
        "code": {"type": "string", "description": "the identifier (up to the first GS), shortened"},
        "verdict": {"type": "string", "enum": ["allowed", "refused", "unknown"]}, "reason": {"type": "string", "description": "in Russian"},
        "fn": {"type": "object", "properties": {"tag_2106": {"type": "integer"}}},
        "permissive": {"type": "object", "properties": {"source": {"type": "string", "enum": ["tspiot", "lm_chz", "gis_mt", "none"]},
          "code": {"type": "integer"}, "reason": {"type": "string"}, "req_id": {"type": "string"}, "req_timestamp": {"type": "string"},
          "offline": {"type": "boolean"}}}, "checked_at": {"type": "string"}}},
      "Cashier": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 64},
        "inn": {"type": "string", "pattern": "^[0-9]{12}$"}}},
      "CashierBody": {"type": "object", "properties": {"cashier": {"$ref": "#/components/schemas/Cashier"}},
        "description": "The cashier (tags 1021/1203); the [fiscal] default cashier when left out"},
      "OperationHead": {"type": "object", "properties": {"operation_id": {"type": "string"},
        "operation": {"type": "string", "enum": ["shift_open", "shift_close", "report_x", "cash", "drawer_open", "print", "copy"]},
        "status": {"type": "string", "enum": ["done"]}}},
      "ShiftOpened": {"type": "object", "properties": {"shift_number": {"type": "integer"}, "opened_at": {"type": "string"},
        "fiscal_doc_number": {"type": "integer"}, "fiscal_sign": {"type": "string"}, "fn_number": {"type": "string"},
        "cashier": {"$ref": "#/components/schemas/Cashier"}}},
      "XReport": {"type": "object", "properties": {**TOTALS, "opened_at": {"type": "string"}, "printed_at": {"type": "string"},
        "cashier": {"$ref": "#/components/schemas/Cashier"}}},
      "CashMoved": {"type": "object", "properties": {"direction": {"type": "string", "enum": ["in", "out"]}, "amount": {"type": "number"},
        "cash_in_drawer": {"type": "number", "description": "The drawer's counter after it"}, "shift_number": {"type": "integer"},
        "cashier": {"$ref": "#/components/schemas/Cashier"}}},
      "Printed": {"type": "object", "properties": {"done": {"type": "string", "enum": ["drawer_opened", "printed", "copy_printed"]},
        "lines": {"type": "integer"}, "fiscal_doc_number": {"type": "integer"}}},
      "FiscalDoc": {"type": "object", "properties": {
        "fiscal_doc_number": {"type": "integer"}, "fiscal_sign": {"type": "string"}, "fiscal_datetime": {"type": "string", "format": "date-time"},
        "fn_number": {"type": "string"}, "kkt_number": {"type": "string"}, "shift_number": {"type": "integer"},
        "receipt_number": {"type": "integer"}, "total": {"type": "number"},
        "qr_code_data": {"type": "string", "description": "t= the register's local YYYYMMDDTHHMM, s=, fn=, i=, fp= (decimal, ≤ 10 digits), n= 1–4"},
        "vat": {"type": "array", "items": {"type": "object", "properties": {"vat": {"type": "string"}, "amount": {"type": "number"}}},
                "description": "VAT per rate (in the answer)"}}},
      "ReceiptAnswer": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["printed", "buffered"]}, "receipt_id": {"type": "string", "format": "uuid"},
        "sync_status": {"type": "string"}, "fiscal_doc": ref("FiscalDoc"), "change": {"type": "number", "description": "cash to hand back"},
        "message": {"type": "string"}}},
      "Receipt": {"type": "object", "properties": {
        "receipt_id": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "syncing", "synced", "failed"]},
        "retry_count": {"type": "integer"}, "last_error": {"type": "string", "nullable": True},
        "created_at": {"type": "string"}, "next_attempt_at": {"type": "string", "nullable": True}, "synced_at": {"type": "string", "nullable": True},
        "fiscal_doc": ref("FiscalDoc"), "ofd_response": {"type": "object", "nullable": True}, "dlq": {"type": "object", "nullable": True},
        "request": {"type": "object"},
        "front": {"type": "string", "enum": ["api", "atol", "kkmserver"], "description": "which front took it (docs/contract.md §13)"},
        "events": {"type": "array", "items": ref("Event")}}},
      "Event": {"type": "object", "properties": {"id": {"type": "integer"}, "receipt_id": {"type": "string", "nullable": True},
        "event_type": {"type": "string"}, "created_at": {"type": "string"}, "details": {"type": "object"}}},
      "BufferStatus": {"type": "object", "properties": {k: {"type": t} for k, t in [
        ("total_capacity", "integer"), ("current_queued", "integer"), ("percent_full", "number"), ("network_status", "string"),
        ("total_receipts", "integer"), ("pending", "integer"), ("synced", "integer"), ("failed", "integer"), ("dlq_size", "integer"),
        ("syncing", "integer"), ("fiscalizing", "integer"), ("refused", "integer"), ("needs_review", "integer"), ("voided", "integer"), ("retrying", "integer"), ("oldest_pending_at", "string"), ("oldest_pending_age_seconds", "integer"),
        ("last_sync_at", "string"), ("breaker", "object"), ("worker", "object"), ("mode", "string"), ("fn_age", "object")]}},
      "CycleReport": {"type": "object", "description": "A sync cycle: its progress while running, its result once finished",
        "properties": {"cycle": {"type": "integer"}, "manual": {"type": "boolean"}, "running": {"type": "boolean"},
        "synced": {"type": "integer"}, "failed": {"type": "integer"}, "skipped": {"type": "integer"}, "duration_seconds": {"type": "number"}}},
      "SyncDone": {"allOf": [{"type": "object", "properties": {"status": {"type": "string", "enum": ["completed"]}}}, ref("CycleReport")]},
      "SyncStarted": {"type": "object", "properties": {"status": {"type": "string", "enum": ["started", "already_running"]},
        "cycle": {"type": "integer"}, "progress": ref("CycleReport"), "message": {"type": "string"}}},
      "DlqEntry": {"type": "object", "properties": {"receipt_id": {"type": "string"}, "pos_id": {"type": "string"}, "total": {"type": "number"},
        "fiscal_doc_number": {"type": "integer"}, "moved_at": {"type": "string"}, "reason": {"type": "string"},
        "retry_count": {"type": "integer"}, "last_error": {"type": "string", "nullable": True}}},
    }},
  "paths": {
    "/v1/kkt/receipt": {"post": {"summary": "Phase 1: store durably, print, answer at once",
      "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 255}}],
      "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ReceiptRequest")}}},
      "responses": {"200": ok(ref("ReceiptAnswer"), "Stored (and printed); a replay carries Idempotent-Replayed: true"),
        "202": ok({"type": "object", "properties": {"status": {"type": "string", "enum": ["awaiting_device"]}, "receipt_id": {"type": "string"},
          "reason": {"type": "string"}, "message": {"type": "string"}}},
          "Stored; the fiscal register has not registered it yet (answer_within_ms passed, or no paper/not connected). Repeat the key for the final answer"),
        "400": err("Missing/invalid Idempotency-Key or malformed JSON"),
        "413": err("Body over 1 MiB"), "415": err("Not application/json"),
        "422": err("validation_error (details name each field), idempotency_key_reused, or kkt_refused (the register refused the receipt: device_error {code, message}; stored, replayed, never sent again)"),
        "409": err("idempotency_request_in_progress, or shift_expired (the shift is over 24 h old and [kkt] auto_shift is off; nothing stored)"),
        "503": err("buffer_full (with Retry-After), storage_unavailable, or fn_blocked (a receipt has waited 30 days for the OFD; nothing stored)")}}},
    "/v1/kkt/shift": {"get": {"summary": "The register's shift: state, number, opened_at, expires_at, receipts", "responses": {"200": ok(ref("ShiftStatus"))}}},
    "/v1/kkt/device": {"get": {"summary": "The register's own state, read now: model, serial, FFD, the FN and its validity, shift, paper, cover, drawer, the FN's unsent documents, cash in the drawer (a till's token or the admin token)",
      "responses": {"200": ok(ref("DeviceInfo")), "401": err("No till or admin token"), "503": err("The register cannot be reached")}}},
    "/v1/kkt/marking/check": {"post": {"summary": "Check a marking code before the sale (docs/contract.md §12): the permissive mode (ТС ПИоТ online within the budget, the local module ЛМ ЧЗ offline) and the FN; the verdict is kept and reused by the receipt",
      "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["code"], "properties": {
        "code": {"type": "string", "maxLength": 223}, "operation": {"type": "string", "enum": ["sale", "refund"]},
        "quantity": {"type": "number"}, "measure": {"type": "string"}}}}}},
      "responses": {"200": ok(ref("MarkingCheck")), "401": err("No till or admin token"), "422": err("validation_error: not a marking code")}}},
    "/v1/kkt/marking/checks": {"get": {"summary": "A day's marking checks with counts per verdict (admin or read token)",
      "parameters": [{"name": "date", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}}],
      "responses": {"200": ok({"type": "object", "properties": {"mode": {"type": "string", "enum": ["off", "fn", "permissive"]},
        "date": {"type": "string"}, "counts": {"type": "object"}, "checks": {"type": "array", "items": ref("MarkingCheck")}}}),
        "401": err("No admin or read token")}}},
    "/v1/kkt/shift/open": op("Open the shift with the cashier (an FN document); the answer is the shift", ref("ShiftOpened"), ref("CashierBody")),
    "/v1/kkt/shift/close": op("Close the shift (an FN document); the answer is its Z-report with the register's totals per receipt type and payment form, cash in and out, the drawer. Without an Idempotency-Key (the earlier contract) it is not protected against a retry", ref("ZReport"), ref("CashierBody"), key_required=False),
    "/v1/kkt/report/x": op("The X-report: the shift's totals now, printed; the shift stays open", ref("XReport"), ref("CashierBody")),
    "/v1/kkt/cash": op("Cash in (внесение) or out (выплата; more than the drawer holds is refused)", ref("CashMoved"),
      {"type": "object", "required": ["direction", "amount"], "properties": {"direction": {"type": "string", "enum": ["in", "out"]},
        "amount": money, "cashier": ref("Cashier")}}),
    "/v1/kkt/drawer/open": op("Open the cash drawer", ref("Printed"), None),
    "/v1/kkt/print": op("Print non-fiscal text (a bank terminal's slip)", ref("Printed"),
      {"type": "object", "required": ["lines"], "properties": {"lines": {"type": "array", "minItems": 1, "maxItems": 200,
        "items": {"type": "string", "maxLength": 128}}}}),
    "/v1/kkt/receipt/{receipt_id}/copy": op("Print a copy of that receipt's document from the FN", ref("Printed"), None,
      params=[{"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}]),
    "/v1/kkt/receipt/{receipt_id}": {"get": {"summary": "A receipt with its status, fiscal document, OFD answer and history",
      "parameters": [{"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
      "responses": {"200": ok(ref("Receipt")), "404": err("Unknown receipt")}}},
    "/v1/kkt/buffer/status": {"get": {"summary": "Counts, breaker, worker, oldest pending age", "responses": {"200": ok(ref("BufferStatus"))}}},
    "/v1/kkt/buffer/events": {"get": {"summary": "The buffer_events log, paged",
      "parameters": [{"name": "after", "in": "query", "schema": {"type": "integer"}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}}],
      "responses": {"200": ok({"type": "object", "properties": {"events": {"type": "array", "items": ref("Event")}, "next_after": {"type": "integer"}}})}}},
    "/v1/kkt/buffer/sync": {"post": {"summary": "Manual sync: a numbered cycle of the one worker; every pending receipt is due now and an open breaker gets one probe. Answers within 1 s",
      "security": ADMIN,
      "parameters": [{"name": "force", "in": "query", "schema": {"type": "boolean"}, "description": "accepted for compatibility; every manual sync probes an open breaker"}],
      "responses": {"200": ok(ref("SyncDone"), "The cycle finished within the second"),
        "202": ok(ref("SyncStarted"), "The cycle runs on; its progress and result are in GET /v1/kkt/worker/status (current_cycle, last_manual_sync)"),
        "401": err("Admin token missing or wrong"), "503": err("The worker is stopping")}}},
    "/v1/kkt/dlq": {"get": {"summary": "Dead-letter entries", "responses": {"200": ok({"type": "object", "properties": {
      "count": {"type": "integer"}, "entries": {"type": "array", "items": ref("DlqEntry")}}})}}},
    "/v1/kkt/review": {"get": {"summary": "Receipts the register may hold and cannot account for (docs/contract.md §10.5), oldest first, with the FN documents that may be theirs",
      "responses": {"200": ok({"type": "object", "properties": {"count": {"type": "integer"}, "receipts": {"type": "array", "items": {"type": "object", "properties": {
        "receipt_id": {"type": "string"}, "pos_id": {"type": "string"}, "type": {"type": "string"}, "total": {"type": "number"},
        "created_at": {"type": "string"}, "reason": {"type": "string"},
        "candidates": {"type": "array", "items": {"type": "object", "properties": {"fiscal_doc_number": {"type": "integer"}, "operation": {"type": "string"},
          "total": {"type": "number"}, "datetime": {"type": "string"}, "why": {"type": "string"}}}},
        "request": {"type": "object"}}}}}})}}},
    "/v1/kkt/receipt/{receipt_id}/resolve": {"post": {"summary": "A person settles a receipt in review: attach an FN document, register it now, or void it (docs/contract.md §10.5)",
      "security": ADMIN,
      "parameters": [{"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
      "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["action"], "additionalProperties": False, "properties": {
        "action": {"type": "string", "enum": ["attach", "register", "void"]},
        "fiscal_doc_number": {"type": "integer", "minimum": 1, "description": "for attach: the FN document that is this receipt's"},
        "comment": {"type": "string", "maxLength": 500, "description": "the manager's words, kept in the receipt_resolved event"}}}}}},
      "responses": {"200": ok({"type": "object", "properties": {"receipt_id": {"type": "string"}, "action": {"type": "string"}, "status": {"type": "string"},
                                "fiscal_doc_number": {"type": "integer"}, "message": {"type": "string"}}}, "Attached or voided"),
                    "202": ok({"type": "object"}, "Sent to the register again"),
                    "401": err("Admin token missing or wrong"), "404": err("No such receipt"),
                    "409": err("not_in_review, document_taken"), "422": err("document_mismatch, validation_error"),
                    "503": err("The register cannot read the document now")}}},
    "/v1/kkt/dlq/retry": {"post": {"summary": "Return every DLQ entry to pending, attempts reset", "security": ADMIN,
      "responses": {"200": ok({"type": "object"}), "401": err("Admin token missing or wrong")}}},
    "/v1/kkt/dlq/{receipt_id}/retry": {"post": {"summary": "Return one DLQ entry to pending, attempts reset", "security": ADMIN,
      "parameters": [{"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
      "responses": {"200": ok({"type": "object"}), "401": err("Admin token missing or wrong"), "404": err("Not in the DLQ")}}},
    "/v1/kkt/receipts": {"get": {"summary": "Find receipts by fiscal document number, receipt id (or its first 8+ characters) or idempotency key, narrowed by a day (the register's time zone), a till and a total; newest first",
      "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d} for n, t, d in [
        ("q", "string", "fiscal document number, receipt id or its first 8+ characters, or idempotency key"),
        ("date", "string", "YYYY-MM-DD, a day in the register's time zone"), ("pos_id", "string", "the till"),
        ("amount", "string", "the receipt's total in rubles, `.` or `,` as the decimal mark"), ("limit", "integer", "1–1000, default 50")]],
      "responses": {"200": ok({"type": "object", "properties": {"receipts": {"type": "array", "items": {"type": "object"}}}}),
                    "400": err("A parameter is malformed")}}},
    "/v1/kkt/receipts.csv": {"get": {"summary": "A day's receipts as CSV (UTF-8 with BOM, `;`, decimal comma, local times)",
      "parameters": [{"name": "date", "in": "query", "required": False, "schema": {"type": "string"}, "description": "YYYY-MM-DD; today by default"}],
      "responses": {"200": {"description": "text/csv"}, "400": err("The date is malformed")}}},
    "/v1/kkt/dlq.csv": {"get": {"summary": "The DLQ as CSV (UTF-8 with BOM, `;`, decimal comma, local times)",
      "responses": {"200": {"description": "text/csv"}}}},
    "/v1/kkt/receipt/{receipt_id}/slip": {"get": {"summary": "The receipt's slip as the register prints it",
      "parameters": [{"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "text/plain; charset=utf-8"}, "404": err("No such registered receipt")}}},
    "/v1/kkt/receipt/{receipt_id}/qr.svg": {"get": {"summary": "The receipt's QR code (the FNS QR data) as an SVG image",
      "parameters": [{"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "image/svg+xml"}, "404": err("No such registered receipt")}}},
    "/v1/kkt/activity": {"get": {"summary": "Receipts taken, delivered and failed per interval over the last hours, and the OFD outages (breaker open), aggregated in SQL",
      "parameters": [{"name": "hours", "in": "query", "required": False, "schema": {"type": "integer"}, "description": "1–168, default 24"},
                     {"name": "interval_minutes", "in": "query", "required": False, "schema": {"type": "integer"}, "description": "5–1440, default 60"}],
      "responses": {"200": ok({"type": "object", "properties": {
        "from": {"type": "string"}, "to": {"type": "string"}, "interval_minutes": {"type": "integer"},
        "intervals": {"type": "array", "items": {"type": "object", "properties": {"start": {"type": "string"}, "taken": {"type": "integer"},
                                                                                 "delivered": {"type": "integer"}, "failed": {"type": "integer"}}}},
        "outages": {"type": "array", "items": {"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                                                                               "ongoing": {"type": "boolean"}}}}}}),
                    "400": err("hours or interval_minutes out of range")}}},
    "/v1/kkt/worker/status": {"get": {"summary": "The sync worker's state", "responses": {"200": ok({"type": "object"})}}},
    "/v1/health": {"get": {"summary": "healthy | degraded | unhealthy with components",
      "responses": {"200": ok({"type": "object"}, "Healthy or degraded"), "503": ok({"type": "object"}, "Unhealthy")}}},
    "/metrics": {"get": {"summary": "Prometheus text", "responses": {"200": {"description": "text/plain; version=0.0.4"}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
  },
}
# Who reads what (SECURITY.md): the personal-data reads take the admin or the read token; the
# tills' calls a POS token (or none on loopback with the defaults).
spec["components"]["securitySchemes"].update({
    "readToken": {"type": "http", "scheme": "bearer", "description": "[http] read_token: every read, no change"},
    "posToken": {"type": "http", "scheme": "bearer", "description": "[http] pos_token or a till's own [http.pos_tokens] entry"},
})
READ = [{"adminToken": []}, {"readToken": []}]
for path in ["/v1/kkt/receipt/{receipt_id}/slip", "/v1/kkt/receipt/{receipt_id}/qr.svg", "/v1/kkt/receipts",
             "/v1/kkt/receipts.csv", "/v1/kkt/dlq.csv", "/v1/kkt/buffer/events", "/v1/kkt/dlq", "/v1/kkt/review"]:
    spec["paths"][path]["get"]["security"] = READ
    spec["paths"][path]["get"]["responses"]["401"] = err("Neither the admin nor the read token")
spec["paths"]["/v1/kkt/receipt"]["post"]["security"] = [{"posToken": []}, {"adminToken": []}, {}]
spec["paths"]["/v1/kkt/receipt"]["post"]["responses"]["403"] = err("pos_id_mismatch: a till's own token posting another till's pos_id")
spec["paths"]["/v1/kkt/receipt/{receipt_id}"]["get"]["security"] = [{"adminToken": []}, {"readToken": []}, {"posToken": []}, {}]
spec["paths"]["/v1/kkt/pos-token"] = {"get": {"summary": "The shared POS token for the tills' set-up, whether intake needs one, and the tills with their own token",
  "security": ADMIN, "responses": {"200": ok({"type": "object", "properties": {
    "required": {"type": "boolean"}, "shared": {"type": "string", "nullable": True},
    "tills": {"type": "array", "items": {"type": "string"}}}})}}}
out = pathlib.Path(__file__).resolve().parents[2] / "core" / "openapi.json"
out.write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {out}")
