-- POST the example week to /v1/predict (body file given by BODY, default examples/week.json).
local f = io.open(os.getenv("BODY") or "examples/week.json")
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = "/v1/predict"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
errors = 0
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end
