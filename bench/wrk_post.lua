-- wrk script for bench/run.py: POSTs one fixed JSON body on every request and
-- reports the run as one JSON line.
--
--   BENCH_BODY_FILE=body.json wrk -t1 -c16 -d10s -s bench/wrk_post.lua URL
--
-- The body is read once at load time (this top level runs in every wrk
-- thread), so requests are built once and not per call.

local body_path = os.getenv("BENCH_BODY_FILE")
assert(body_path, "set BENCH_BODY_FILE to the file holding the request body")
local file = assert(io.open(body_path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
-- The binary tensor extension: the JSON part's length, the rest raw bytes.
local header_length = os.getenv("BENCH_HEADER_LENGTH")
if header_length then
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = header_length
end
-- BENCH_HEADERS: a flat JSON object of further headers, e.g.
-- {"Authorization":"Bearer KEY"} (strings without escapes).
local extra = os.getenv("BENCH_HEADERS") or "{}"
for name, value in extra:gmatch('"([^"]+)"%s*:%s*"([^"]*)"') do
  wrk.headers[name] = value
end

-- The line bench/loadgen.py looks for. Latencies are in microseconds.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
