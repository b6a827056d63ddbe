-- One timestep per request, spread round-robin over the session ids in SESSIONS (a file, one
-- id a line), each thread starting at its own offset.
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "bench/out/sessions.txt") do ids[#ids + 1] = line end
local row = '{"x": {"date": "2015-02-22", "temp_max": 11.7, "temp_min": 3.3, "precipitation": 0.0, "wind": 4.2}}'
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
  local id = ids[(counter % #ids) + 1]
  return wrk.format("POST", "/v1/sessions/" .. id .. "/step", {["Content-Type"] = "application/json"}, row)
end
