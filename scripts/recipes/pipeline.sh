#!/usr/bin/env bash
# The whole HAT pipeline for one paper task. Sourced by the per-task wrappers in this folder, which set:
#   TASK (configs/tasks/<TASK>.yaml), SPACE (configs/spaces/<SPACE>.yaml), PREPARE (data script), DEVICE,
#   LATENCIES (budgets, comma separated), SRC, TGT.
# Usage: scripts/recipes/<task>.sh [--dry-run] [--workdir DIR] [--gpus N] [--device NAME] [--latency 200ms,...]
# These runs need GPUs and the real WMT/IWSLT data; they are not run in CI (their --dry-run is tested).
set -euo pipefail

DRY_RUN=0
WORKDIR="runs/${TASK}"
GPUS="${GPUS:-8}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --workdir) WORKDIR="$2"; shift ;;
    --gpus) GPUS="$2"; shift ;;
    --device) DEVICE="$2"; shift ;;
    --latency) LATENCIES="$2"; shift ;;
    -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "$(basename "$0"): error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${WORKDIR}/data-bin"

run() {
  # Print every command; execute unless --dry-run.
  echo "+ $*"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# 1. Data: download + preprocess (joint BPE, fairseq binarized layout).
run bash "${HERE}/../${PREPARE}" --dest "${DATA}"
# 2. SuperTransformer training with the paper's settings, data parallel over GPUs.
run torchrun --standalone --nproc_per_node "${GPUS}" -m hat.cli.train \
  --config "configs/tasks/${TASK}.yaml" --data "${DATA}" --save-dir "${WORKDIR}/supertransformer"
# 3. Latency dataset of 2,000 sampled SubTransformers on the target device (HAT: slightly wider space).
run hat-profile --space "${SPACE}" --device "${DEVICE}" --samples 2000 --widen \
  --out "${WORKDIR}/latency_${DEVICE}.csv" --resume
# 4. Latency predictor.
run hat-predictor fit --data "${WORKDIR}/latency_${DEVICE}.csv" --device "${DEVICE}" --space "${SPACE}" \
  --out "${WORKDIR}/predictor_${DEVICE}.pt"
# 5. Evolutionary search under each latency budget (one run, Pareto mode).
run hat-search --supernet "${WORKDIR}/supertransformer/checkpoint_best.pt" --device "${DEVICE}" \
  --latency "${LATENCIES}" --predictor "${WORKDIR}/predictor_${DEVICE}.pt" --data "${DATA}" \
  --out "${WORKDIR}/search_${DEVICE}"
# 6-8. Retrain each searched SubTransformer from scratch, average the last checkpoints, translate the test set, score.
IFS=',' read -ra BUDGETS <<< "${LATENCIES}"
for b in "${BUDGETS[@]}"; do
  ms="${b%ms}"
  sub="${WORKDIR}/search_${DEVICE}/subnet_${ms}ms.yaml"
  out="${WORKDIR}/subtransformer_${DEVICE}_${ms}ms"
  run torchrun --standalone --nproc_per_node "${GPUS}" -m hat.cli.train \
    --config "configs/tasks/${TASK}.yaml" --data "${DATA}" --subnet "${sub}" --save-dir "${out}"
  run hat-average-checkpoints --inputs "${out}" --num-epoch-checkpoints 10 --output "${out}/checkpoint_avg.pt"
  run hat-translate --checkpoint "${out}/checkpoint_avg.pt" --data "${DATA}" --subset test --beam 4 --lenpen 0.6 \
    --output "${out}/test.hyp" --reference-output "${out}/test.ref"
  run hat-score --hyp "${out}/test.hyp" --ref "${out}/test.ref" --tokenized
  # 9. Deployment artifacts.
  run hat-export --checkpoint "${out}/checkpoint_avg.pt" --format onnx --out "${out}/onnx"
done
