-- wrk script for tern's bench (bench/run.sh): POST one JSON body.
--
--   wrk ... -s post.lua URL -- BODY_FILE
--
-- BODY_FILE is read once per wrk thread, at init, and sent as the body of
-- every request with Content-Type: application/json (wrk.format adds
-- Content-Length).  Headers given with -H are part of each request too.  One
-- request per write (no pipelining).  done() is pipeline.lua's, so the run
-- ends with the same machine-readable BENCH line.

-- pipeline.lua sits next to this file; it defines done() (and init/request,
-- which are replaced below).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "pipeline.lua")

local req

function init(args)
   local path = args[1]
   if not path then
      error("post.lua: usage: wrk ... -s post.lua URL -- BODY_FILE")
   end
   local f = assert(io.open(path, "rb"))
   local body = f:read("*a")
   f:close()
   wrk.headers["Content-Type"] = "application/json"
   req = wrk.format("POST", nil, nil, body)
end

function request()
   return req
end
