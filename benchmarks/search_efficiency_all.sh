#!/usr/bin/env bash
# The whole search-efficiency protocol of docs/benchmarks.md, resumable end to end (rerun the same command after an
# interruption; finished steps are skipped):
#   1. inputs (benchmarks/search_efficiency_prep.sh: supernet, latency dataset, predictor);
#   2. subset-size choice on seed 0 at the 25th-percentile budget (not reported) ->
#      <workdir>/fast_chosen.yaml = fast.yaml with the chosen valid_subset;
#   3. HAT vs ours with 30 iterations, seeds 1 and 2 (sides alternated), at the median budget.
#
#   nice -n 10 bash benchmarks/search_efficiency_all.sh [WORKDIR] [MULTI30K_RAW_DIR] [THREADS] [EXTRA ARGS...]
#
# EXTRA ARGS go to step 3, e.g. `--runs ours:2,ours:1` in one process and `--runs hat:1,hat:2` in another (one per
# core; the record collects every finished run).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/search_eff}
RAW=${2:-../shared/data/multi30k}
T=${3:-1}
PY=${PYTHON:-python}
bash benchmarks/search_efficiency_prep.sh "$W" "$RAW" "$T"
q() {  # latency quantile of the dataset, as hat-quickstart picks its budgets
  "$PY" -c "import sys; from hat.latency.records import read_latency_csv as r
l = sorted(x.latency_ms for x in r(sys.argv[1])); print(round(l[int(round(float(sys.argv[2]) * (len(l) - 1)))], 2))" \
    "$W/latency_cpu.csv" "$1"
}
common=(--supernet "$W/supernet/checkpoint_best.pt" --data "$W/data-bin" --predictor "$W/predictor_cpu.pt"
        --threads "$T" --seeds 1,2)
if [ ! -f "$W/fast_chosen.yaml" ]; then
  "$PY" benchmarks/search_efficiency.py "${common[@]}" --latency "$(q 0.25)ms" --seed 0 \
    --choose-subset 50,100,150,200,300,500
  "$PY" - "$W/fast_chosen.yaml" <<'PYEOF'
import json, sys
from dataclasses import asdict
from hat.config import dump_yaml
from hat.search import load_settings
chosen = json.load(open("benchmarks/results/search_efficiency_subset_choice.json"))["summary"]["chosen"]
s = asdict(load_settings("fast"))
if chosen is not None:
    s["valid_subset"] = chosen
dump_yaml(s, sys.argv[1])
print(f"valid_subset: {s['valid_subset']} (chosen: {chosen})")
PYEOF
fi
"$PY" benchmarks/search_efficiency.py "${common[@]}" --latency "$(q 0.5)ms" --fast-config "$W/fast_chosen.yaml" \
  --work-dir "$W/runs" "${@:4}"
