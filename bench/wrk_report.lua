-- wrk reporter: status counts, latency percentiles and the summed Server-Timing phases,
-- printed as one JSON line prefixed with "WRKJSON ". Optional environment:
--   WRK_METHOD, WRK_BODY, WRK_CONTENT_TYPE  the request to send (default GET, no body)
--   WRK_PATHS                               comma-separated paths, used round-robin
--   WRK_TARGETS                             host:port,host:port — spread threads over servers
local threads = {}
local addrs = nil

function setup(thread)
  local targets = os.getenv("WRK_TARGETS") or ""
  if targets ~= "" then
    if addrs == nil then
      addrs = {}
      for host, port in string.gmatch(targets, "([^,:]+):(%d+)") do
        for _, addr in ipairs(wrk.lookup(host, port)) do table.insert(addrs, addr) end
      end
    end
    thread.addr = addrs[(#threads % #addrs) + 1]
  end
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  codes = {}
  phase_sum = {}
  timed = 0
  local method = os.getenv("WRK_METHOD")
  if method and method ~= "" then wrk.method = method end
  local body = os.getenv("WRK_BODY")
  template = nil
  if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"
    if string.find(body, "{n}", 1, true) then template = body end
  end
  paths = {}
  local raw = os.getenv("WRK_PATHS") or ""
  for p in string.gmatch(raw, "[^,]+") do table.insert(paths, p) end
  counter = 0
end

function request()
  counter = counter + 1
  local path = nil
  if #paths > 0 then path = paths[(counter % #paths) + 1] end
  local body = nil
  if template then body = string.gsub(template, "{n}", (tid or 0) .. "x" .. counter) end
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  local st = headers["Server-Timing"] or headers["server-timing"]
  if st then
    timed = timed + 1
    for name, dur in string.gmatch(st, "([%w_%-]+);dur=([%d%.]+)") do
      phase_sum[name] = (phase_sum[name] or 0) + tonumber(dur)
    end
  end
end

function done(summary, latency, requests)
  local all_codes, all_phases, all_timed = {}, {}, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("codes")) do all_codes[code] = (all_codes[code] or 0) + n end
    for name, s in pairs(t:get("phase_sum")) do all_phases[name] = (all_phases[name] or 0) + s end
    all_timed = all_timed + t:get("timed")
  end
  local parts = {}
  for code, n in pairs(all_codes) do table.insert(parts, string.format('"%d":%d', code, n)) end
  local phase_parts = {}
  for name, s in pairs(all_phases) do
    table.insert(phase_parts, string.format('"%s":%.4f', name, all_timed > 0 and s / all_timed or 0))
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"codes":{%s},"server_timing_ms":{%s},"timed":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, table.concat(parts, ","), table.concat(phase_parts, ","), all_timed))
end
