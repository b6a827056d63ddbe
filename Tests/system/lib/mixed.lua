-- Predict and step requests in turn: every other request POSTs the week in BODY to
-- /v1/predict, the rest are bench/load/step.lua's steps over the ids in SESSIONS. Used by
-- Tests/system/reload.py (run from the repository's root), which reloads models underneath and
-- wants no request to fail.
dofile("bench/load/step.lua")
local step = request
local f = io.open(os.getenv("BODY"))
local week = f:read("*a")
f:close()
local headers = {["Content-Type"] = "application/json"}
local turn = 0
function request()
  turn = turn + 1
  if turn % 2 == 0 then return wrk.format("POST", "/v1/predict", headers, week) end
  return step()
end
