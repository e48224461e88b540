-- wrk script for tern's TFB bench (bench/run.sh), modelled on TFB's
-- toolset/wrk/pipeline.lua.
--
--   wrk ... -s pipeline.lua URL -- DEPTH
--
-- DEPTH requests (default 1) are concatenated into one write, the way TFB
-- loads /plaintext (DEPTH 16); wrk counts every response.  Headers given with
-- -H are part of each request.  done() prints one machine-readable line:
--   BENCH requests=N duration_us=N rps=X p50_us=N p99_us=N max_us=N
--         connect=N read=N write=N timeout=N non2xx=N
-- (latency is per write, i.e. per batch of DEPTH requests, as in TFB).

local depth = 1
local batch

function init(args)
   depth = tonumber(args[1]) or 1
   local reqs = {}
   for i = 1, depth do
      reqs[i] = wrk.format()
   end
   batch = table.concat(reqs)
end

function request()
   return batch
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
