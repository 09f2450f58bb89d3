#!/bin/bash
set -euo pipefail
python3 - <<'PY'
import json, urllib.request
req = urllib.request.Request("http://vault:8080/login", method="POST",
    data=json.dumps({"user": "reader", "password": open("/app/password.txt").read().strip()}).encode())
token = json.load(urllib.request.urlopen(req))["token"]
open("/app/token.txt", "w").write(token + "\n")
print(token)
PY
