#!/bin/bash
# Two checks, each worth half the reward (a non-binary reward in reward.json).
expected_sum=$(cat /tests/expected_sum.txt)
passed=0
[ "$(tr -d '[:space:]' < /app/answer.txt 2>/dev/null)" = "$expected_sum" ] && passed=$((passed + 1))
[ "$(tr -d '[:space:]' < /app/count.txt 2>/dev/null)" = "$(wc -l < /app/numbers.txt | tr -d ' ')" ] && passed=$((passed + 1))
python3 -c "import json; print(json.dumps({'reward': $passed / 2, 'checks_passed': $passed}))" > /logs/verifier/reward.json
