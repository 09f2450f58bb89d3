#!/bin/bash
set -euo pipefail
python3 -c "print(sum(int(x) for x in open('numbers.txt')))" > answer.txt
wc -l < numbers.txt | tr -d ' ' > count.txt
cat answer.txt
