-- wrk script used by bench/issue_tickets.py.
--
--   wrk ... -s bench/wrk_counting.lua http://127.0.0.1:PORT/path -- GET
--   wrk ... -s bench/wrk_counting.lua http://127.0.0.1:PORT/path -- POST teller,cs,loans,cards
--
-- GET sends the plain request. POST sends {"service": "<code>"} bodies, rotating over the
-- given service codes (each wrk thread starts at a different offset, so the mix is even).
-- Every response is counted by status code, and done() prints one line
--   WRK_JSON {...}
-- with the totals, the error counters and latency percentiles (microseconds), which the
-- Python script parses. Nothing else in wrk's output is relied upon.

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  method = args[1] or "GET"
  bodies = {}
  if method == "POST" then
    local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
    for code in string.gmatch(args[2] or "teller", "[^,]+") do
      table.insert(bodies, wrk.format("POST", nil, headers, '{"service": "' .. code .. '"}'))
    end
  end
  next_body = (thread_index or 0) % math.max(#bodies, 1)
end

function request()
  if #bodies == 0 then
    return wrk.request()
  end
  next_body = next_body % #bodies + 1
  return bodies[next_body]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

local function json_object(tbl)
  local parts = {}
  for k, v in pairs(tbl) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses") or {}
    for k, v in pairs(counts) do
      total[k] = (total[k] or 0) + v
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, "statuses": %s, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, "p50": %d, "p90": %d, '
      .. '"p99": %d, "p999": %d}}\n',
    summary.duration, summary.requests, summary.bytes, json_object(total),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)
  ))
end
