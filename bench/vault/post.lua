-- wrk script: POST one fixed JSON body to the URL's path with the vault's bearer token.
-- Environment: BENCH_BODY (the JSON body), BENCH_TOKEN (an administrator token).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
