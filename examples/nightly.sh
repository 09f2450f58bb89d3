#!/usr/bin/env bash
# Nightly regression check: run a pinned experiment, index it, compare with the previous
# night, write the report, and exit non-zero on a regression (a cell whose score drops
# significantly, that vanishes, errors more or hits limits more) or when the run failed.
#
# Cron example (03:00 UTC every night, from a checkout with ptebench installed):
#   0 3 * * *  cd /srv/ptebench && examples/nightly.sh examples/quickstart.yaml >> runs/nightly/cron.log 2>&1
#
# Environment:
#   NIGHTLY_DIR   where the nightly runs live (default runs/nightly); one folder per night
#   PTEBENCH      the ptebench command (default: ptebench, else python -m ptebench.cli)
#   ALPHA         significance level of the regression test (default 0.05, Holm-adjusted)
# Exit codes: 0 no regression, 1 a regression or a failed run (infrastructure errors, every
# episode errored: see `ptebench run --help`), 2 bad input, other: the run was interrupted.
set -euo pipefail

CONFIG="${1:-examples/quickstart.yaml}"
NIGHTLY_DIR="${NIGHTLY_DIR:-runs/nightly}"
ALPHA="${ALPHA:-0.05}"
if [[ -z "${PTEBENCH:-}" ]]; then
  if command -v ptebench >/dev/null 2>&1; then PTEBENCH="ptebench"; else PTEBENCH="python -m ptebench.cli"; fi
fi
read -r -a PTB <<<"$PTEBENCH"

mkdir -p "$NIGHTLY_DIR"
export PTEBENCH_HISTORY="$NIGHTLY_DIR/history.sqlite"
# the newest earlier night that finished writing its manifest
PREV=""
for d in $(ls -1d "$NIGHTLY_DIR"/*/ 2>/dev/null | sort); do
  [[ -f "$d/run.json" ]] && PREV="${d%/}"
done
TONIGHT="$NIGHTLY_DIR/$(date -u +%Y%m%dT%H%M%SZ)"

RUN_RC=0
"${PTB[@]}" run "$CONFIG" --out "$TONIGHT" --no-catalog || RUN_RC=$?
# a failed run (exit 1) still gets indexed, reported and compared; bad input or an
# interruption ends the night here
if [[ $RUN_RC -ne 0 && $RUN_RC -ne 1 ]]; then exit "$RUN_RC"; fi
"${PTB[@]}" history --index "$TONIGHT" --db "$PTEBENCH_HISTORY" >/dev/null
"${PTB[@]}" report "$TONIGHT" --out "$TONIGHT/report.html"

if [[ -z "$PREV" ]]; then
  echo "first night: nothing to compare with ($TONIGHT)"
  exit "$RUN_RC"
fi
# compare's exit code (1 on a regression) is the verdict, and a failed run fails the night too
"${PTB[@]}" compare "$PREV" "$TONIGHT" --alpha "$ALPHA" --fail-on-regression \
  --out "$TONIGHT/compare.md"
exit "$RUN_RC"
