-- One request per call, rotating over many users' tokens; counts every status code.
-- wrk -s bench/lua/rotate.lua <url> -- <tokens file> <METHOD> <path> [json body]
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  table.insert(threads, thread)
end

function init(args)
  local tokens = {}
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  local method, path, body = args[2], args[3], args[4]
  prepared = {}
  for i, token in ipairs(tokens) do
    local headers = { ["Authorization"] = "Bearer " .. token }
    if body then headers["Content-Type"] = "application/json" end
    prepared[i] = wrk.format(method, path, headers, body)
  end
  -- Threads start at different tokens so they do not walk in step.
  index = (thread_id or 1) * 7919 % #prepared
  statuses = {}
end

function request()
  index = index % #prepared + 1
  return prepared[index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  for status, count in pairs(totals) do
    io.write(string.format("BENCH status %d %d\n", status, count))
  end
  local e = summary.errors
  io.write(string.format("BENCH summary %d %d %d %d %d %d %d\n", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("BENCH latency %d %d %d\n", latency:percentile(50),
    latency:percentile(99), latency.max))
end
