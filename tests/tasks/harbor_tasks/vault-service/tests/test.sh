#!/bin/bash
# The verifier asks the vault whether the agent's token is the real one.
token=$(tr -d '[:space:]' < /app/token.txt 2>/dev/null)
if python3 -c "import sys, urllib.request; urllib.request.urlopen('http://vault:8080/verify?token=' + sys.argv[1])" "$token" 2>/dev/null; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
