-- wrk script for benches/compare.sh: POSTs one signed body.
-- BENCH_BODY_FILE is the body, BENCH_SIGNATURE its x-webhook-hmac-sha256 value.
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-webhook-hmac-sha256"] = os.getenv("BENCH_SIGNATURE")
