-- wrk reporter for bench/run: writes one JSON object (requests/s, errors and latency
-- percentiles in microseconds) to the file named by WRK_JSON, because wrk's own text
-- summary has no p99.9 and is awkward to parse.

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean)
  local path = os.getenv("WRK_JSON")
  if path then
    local f = assert(io.open(path, "w"))
    f:write(out)
    f:close()
  else
    io.write(out)
  end
end
