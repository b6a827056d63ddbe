-- POST BODY to PATH (default /v2/models/temperature/infer); HEADER_LENGTH, when set, is sent
-- as Inference-Header-Content-Length (the binary tensor data extension).
local f = io.open(os.getenv("BODY"), "rb")
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("URLPATH") or "/v2/models/temperature/infer"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("HEADER_LENGTH") and "application/octet-stream" or "application/json"
if os.getenv("HEADER_LENGTH") then wrk.headers["Inference-Header-Content-Length"] = os.getenv("HEADER_LENGTH") end
errors = 0
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end
