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
        "name": {"type": "string", "minLength": 1, "maxLength": 255}, "price": money,
        "quantity": {"oneOf": [{"type": "number"}, {"type": "string"}], "description": "> 0, at most 3 decimals; alias qty"},
        "qty": {"oneOf": [{"type": "number"}, {"type": "string"}], "description": "alias of quantity"},
        "total": money, "vat_rate": {"oneOf": [{"type": "integer", "enum": [0, 5, 7, 10, 20, 22]}, {"type": "string", "enum": ["none"]}]}}},
      "Payment": {"type": "object", "required": ["type", "amount"], "properties": {
        "type": {"type": "string", "enum": ["cash", "card", "other"]}, "amount": money}},
      "ReceiptRequest": {"type": "object", "required": ["pos_id", "type", "items", "payments"], "properties": {
        "pos_id": {"type": "string", "minLength": 1, "maxLength": 64}, "type": {"type": "string", "enum": ["sale", "refund", "correction"]},
        "items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": ref("Item")},
        "payments": {"type": "array", "minItems": 1, "maxItems": 20, "items": ref("Payment")}}},
      "FiscalDoc": {"type": "object", "properties": {
        "fiscal_doc_number": {"type": "integer"}, "fiscal_sign": {"type": "string"}, "fiscal_datetime": {"type": "string", "format": "date-time"},
        "fn_number": {"type": "string"}, "kkt_number": {"type": "string"}, "shift_number": {"type": "integer"},
        "receipt_number": {"type": "integer"}, "total": {"type": "number"}, "qr_code_data": {"type": "string"}}},
      "ReceiptAnswer": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["printed", "buffered"]}, "receipt_id": {"type": "string", "format": "uuid"},
        "sync_status": {"type": "string"}, "fiscal_doc": ref("FiscalDoc"), "message": {"type": "string"}}},
      "Receipt": {"type": "object", "properties": {
        "receipt_id": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "syncing", "synced", "failed"]},
        "retry_count": {"type": "integer"}, "last_error": {"type": "string", "nullable": True},
        "created_at": {"type": "string"}, "next_attempt_at": {"type": "string", "nullable": True}, "synced_at": {"type": "string", "nullable": True},
        "fiscal_doc": ref("FiscalDoc"), "ofd_response": {"type": "object", "nullable": True}, "dlq": {"type": "object", "nullable": True},
        "request": {"type": "object"}, "events": {"type": "array", "items": ref("Event")}}},
      "Event": {"type": "object", "properties": {"id": {"type": "integer"}, "receipt_id": {"type": "string", "nullable": True},
        "event_type": {"type": "string"}, "created_at": {"type": "string"}, "details": {"type": "object"}}},
      "BufferStatus": {"type": "object", "properties": {k: {"type": t} for k, t in [
        ("total_capacity", "integer"), ("current_queued", "integer"), ("percent_full", "number"), ("network_status", "string"),
        ("total_receipts", "integer"), ("pending", "integer"), ("synced", "integer"), ("failed", "integer"), ("dlq_size", "integer"),
        ("syncing", "integer"), ("fiscalizing", "integer"), ("refused", "integer"), ("retrying", "integer"), ("oldest_pending_at", "string"), ("oldest_pending_age_seconds", "integer"),
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
        "400": err("Missing/invalid Idempotency-Key or malformed JSON"), "409": err("idempotency_request_in_progress"),
        "413": err("Body over 1 MiB"), "415": err("Not application/json"),
        "422": err("validation_error (details name each field), idempotency_key_reused, or kkt_refused (the register refused the receipt: device_error {code, message}; stored, replayed, never sent again)"),
        "503": err("buffer_full (with Retry-After) or storage_unavailable")}}},
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
    "/v1/kkt/dlq/retry": {"post": {"summary": "Return every DLQ entry to pending, attempts reset", "security": ADMIN,
      "responses": {"200": ok({"type": "object"}), "401": err("Admin token missing or wrong")}}},
    "/v1/kkt/dlq/{receipt_id}/retry": {"post": {"summary": "Return one DLQ entry to pending, attempts reset", "security": ADMIN,
      "parameters": [{"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}],
      "responses": {"200": ok({"type": "object"}), "401": err("Admin token missing or wrong"), "404": err("Not in the DLQ")}}},
    "/v1/kkt/worker/status": {"get": {"summary": "The sync worker's state", "responses": {"200": ok({"type": "object"})}}},
    "/v1/health": {"get": {"summary": "healthy | degraded | unhealthy with components",
      "responses": {"200": ok({"type": "object"}, "Healthy or degraded"), "503": ok({"type": "object"}, "Unhealthy")}}},
    "/metrics": {"get": {"summary": "Prometheus text", "responses": {"200": {"description": "text/plain; version=0.0.4"}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
  },
}
out = pathlib.Path(__file__).resolve().parents[2] / "core" / "openapi.json"
out.write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {out}")
