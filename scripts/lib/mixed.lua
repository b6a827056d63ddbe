-- Predict and step requests in turn: every other request POSTs the week in BODY to
-- /v1/predict, the rest step the session ids in SESSIONS (a file, one id a line) round-robin.
-- Used by scripts/reload.py, which reloads models underneath and wants no request to fail.
local ids = {}
for line in io.lines(os.getenv("SESSIONS")) do ids[#ids + 1] = line end
local f = io.open(os.getenv("BODY"))
local week = f:read("*a")
f:close()
local row = '{"x": {"date": "2015-02-22", "temp_max": 11.7, "temp_min": 3.3, "precipitation": 0.0, "wind": 4.2}}'
local headers = {["Content-Type"] = "application/json"}
local counter = 0
local thread_id = 0
local next_thread = 0
function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end
function init(args)
  counter = thread_id * 97
end
function request()
  counter = counter + 1
  if counter % 2 == 0 then return wrk.format("POST", "/v1/predict", headers, week) end
  local id = ids[(counter % #ids) + 1]
  return wrk.format("POST", "/v1/sessions/" .. id .. "/step", headers, row)
end
