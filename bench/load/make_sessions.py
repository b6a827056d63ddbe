#!/usr/bin/env python3
"""Creates sessions on a running lstm-serve and writes their ids, one a line, for step.lua.

  python3 bench/load/make_sessions.py BASE_URL OUT_FILE [COUNT=1000]
"""
import http.client
import json
import sys
import urllib.parse

u = urllib.parse.urlparse(sys.argv[1])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
c = http.client.HTTPConnection(u.hostname, u.port)
with open(sys.argv[2], "w") as f:
    for _ in range(count):
        c.request("POST", "/v1/sessions", body=b"")
        f.write(json.loads(c.getresponse().read())["session_id"] + "\n")
