-- wrk script: durable key creation, POST /keys/{unique name}/create, a new name per request.
-- Environment: BENCH_TOKEN (an administrator token), BENCH_PREFIX (name prefix, unique per run),
-- BENCH_CREATE_BODY (the create request, e.g. {"kty":"oct","key_size":256}).
local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

local counter = 0
local headers = {}
local body
local prefix

function init(args)
   prefix = os.getenv("BENCH_PREFIX") or "bench"
   body = os.getenv("BENCH_CREATE_BODY") or '{"kty":"oct","key_size":256}'
   headers["Content-Type"] = "application/json"
   headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function request()
   counter = counter + 1
   local path = string.format("/keys/%s-%d-%d/create?api-version=7.5", prefix, tid, counter)
   return wrk.format("POST", path, headers, body)
end
