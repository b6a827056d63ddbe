"""Asks a running lstm-serve for the answers PyTorch gave in training (check.json) and prints
how far apart they are.
    python3 examples/byom/check.py HOST:PORT"""
import json
import os
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
check = json.load(open(os.path.join(HERE, "check.json")))
body = json.dumps({"windows": check["windows"]}).encode()
request = urllib.request.Request(f"http://{sys.argv[1]}/v1/models/forecaster/predict", data=body,
                                 headers={"Content-Type": "application/json"})
answers = json.load(urllib.request.urlopen(request))["predictions"]
served = [a["forecast"]["temp_max_tomorrow"] for a in answers]
worst = max(abs(s - p) for s, p in zip(served, check["pytorch"]))
for date, s, p in zip(check["dates"], served, check["pytorch"]):
    print(f"{date}: lstm-serve {s:.4f} °C, PyTorch {p:.4f} °C")
print(f"largest difference: {worst:.1e} °C")
sys.exit(0 if worst <= 1e-4 else 1)
