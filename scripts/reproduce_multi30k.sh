#!/usr/bin/env bash
# Multi30k de->en reproduction of HAT's claim (docs/results.md): quickstart pipeline, then baselines scaled by depth
# and width trained the same way, BLEU and measured latency for all, table + BLEU-vs-latency plot.
#   scripts/reproduce_multi30k.sh [--data-dir ../shared/data/multi30k] [--workdir runs/quickstart] [--preset tiny] [--dry-run]
set -euo pipefail
DATA_DIR=../shared/data/multi30k WORKDIR=runs/quickstart PRESET=tiny DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA_DIR="$2"; shift ;;
    --workdir) WORKDIR="$2"; shift ;;
    --preset) PRESET="$2"; shift ;;
    --dry-run) DRY_RUN=1 ;;
    *) echo "$(basename "$0"): error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
run() { echo "+ $*"; if [ "$DRY_RUN" = 0 ]; then "$@"; fi; }
run hat-quickstart --data-dir "$DATA_DIR" --workdir "$WORKDIR" --preset "$PRESET"
run python "$(dirname "$0")/reproduce_multi30k.py" --workdir "$WORKDIR"
