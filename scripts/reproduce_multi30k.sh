#!/usr/bin/env bash
# Multi30k de->en reproduction of HAT's claim (docs/results.md): two SuperTransformers, search under 3 budgets, every
# model (searched, layer- and dimension-scaled baselines, corners) trained from scratch with seeds 0 1 2, SacreBLEU;
# latency measured afterwards (quiet machine), then the table and the BLEU-vs-latency plot.
# Hours of CPU: every stage resumes; run the same command again after an interruption.
#   scripts/reproduce_multi30k.sh [--data-dir ../shared/data/multi30k] [--workdir runs/repro] [--dry-run]
set -euo pipefail
DATA_DIR=../shared/data/multi30k WORKDIR=runs/repro DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA_DIR="$2"; shift ;;
    --workdir) WORKDIR="$2"; shift ;;
    --dry-run) DRY_RUN=1 ;;
    *) echo "$(basename "$0"): error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
run() { echo "+ $*"; if [ "$DRY_RUN" = 0 ]; then "$@"; fi; }
PY="$(dirname "$0")/reproduce_multi30k.py"
run python "$PY" --workdir "$WORKDIR" --data-dir "$DATA_DIR" --stage train
run python "$PY" --workdir "$WORKDIR" --stage measure
run python "$PY" --workdir "$WORKDIR" --stage report
