-- wrk script for bench/quickstart/run.sh: the quickstart users API under a
-- read-mostly mix.
--
--   wrk ... -s mix.lua URL -- NUSERS TAG
--
-- Every 5th request of a wrk thread is POST /users with a new user (20 %),
-- the others GET /users/:id with an id drawn uniformly from 1..NUSERS (80 %;
-- run.sh seeds those rows, so they exist).  The mix is counted per thread,
-- so it is exact over the run, whatever the number of connections.
--
-- Emails never repeat: "u.TAG.T.N@bench.example", where TAG is unique per wrk
-- run (run.sh passes target, database, round and a nonce), T is the wrk
-- thread's number (given to each thread in setup(), which runs once per
-- thread in wrk's main Lua state) and N the thread's request counter.  So
-- two threads, or two runs against the same database, never send the same
-- email and no POST gets 409 (any would show up as non-2xx).
--
-- Headers given with -H are part of every request.  One request per write
-- (no pipelining).  done() prints the machine-readable line of
-- bench/wrk/pipeline.lua:
--   BENCH requests=N duration_us=N rps=X p50_us=N p99_us=N max_us=N
--         connect=N read=N write=N timeout=N non2xx=N

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("tid", threads)
end

local nusers, tag
local gets = {}  -- prebuilt GET /users/:id requests, one per id
local post_headers
local n = 0

function init(args)
   nusers = tonumber(args[1])
   tag = args[2]
   if not nusers or nusers < 1 or not tag or not tag:match("^[%w-]+$") then
      error("mix.lua: usage: wrk ... -s mix.lua URL -- NUSERS TAG (TAG: letters, digits, -)")
   end
   tid = tid or 1
   for id = 1, nusers do
      gets[id] = wrk.format("GET", "/users/" .. id)
   end
   post_headers = {}
   for k, v in pairs(wrk.headers) do post_headers[k] = v end
   post_headers["Content-Type"] = "application/json"
   -- A different sequence of ids per thread and per run.
   local seed = tid * 1000003
   for i = 1, #tag do seed = (seed * 31 + tag:byte(i)) % 2147483647 end
   math.randomseed(seed)
end

function request()
   n = n + 1
   if n % 5 == 0 then
      local body = string.format('{"name":"Bench User %d","email":"u.%s.%d.%d@bench.example"}',
                                 n, tag, tid, n)
      return wrk.format("POST", "/users", post_headers, body)
   end
   return gets[math.random(nusers)]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%d p99_us=%d max_us=%d " ..
      "connect=%d read=%d write=%d timeout=%d non2xx=%d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.timeout, e.status))
end
