-- wrk script for tests/bench/versus.py: every request a new sale with its own Idempotency-Key,
-- in the original adapter's body shape (quantity, total, vat_rate 10), which both adapters take.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
end

local body = '{"pos_id":"POS-BENCH","type":"sale","items":[{"name":"Хлеб","price":45.50,"quantity":2,"total":91.00,"vat_rate":10},{"name":"Молоко","price":89.90,"quantity":1,"total":89.90,"vat_rate":10}],"payments":[{"type":"card","amount":180.90}]}'

request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("vs-%d-%d-%d", os.time(), thread_id, counter)
  return wrk.format("POST", "/v1/kkt/receipt", headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
