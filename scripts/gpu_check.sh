#!/usr/bin/env bash
# Does hat work on this machine's CUDA GPU(s)? One PASS/FAIL line per check, in a few minutes:
#   1. SuperTransformer updates with --amp bf16 and with --amp fp16 (hat-train --device cuda)
#   2. two-process torchrun with NCCL when two GPUs exist (one process otherwise)
#   3. hat-profile --device gpu on 5 SubTransformers (PyTorch eager, CUDA events)
#   4. hat-search scoring on CUDA (fitness = validation loss with inherited weights)
#   5. hat-translate --gpu (PyTorch on CUDA) of 20 test sentences
# Data: the project's Multi30k beside the checkout (or $HAT_MULTI30K_DIR). Without CUDA it says so and exits 0.
#   scripts/gpu_check.sh [--workdir DIR]      (exit 1 if any check failed)
set -uo pipefail
WORK="${TMPDIR:-/tmp}/hat_gpu_check"
while [ $# -gt 0 ]; do
  case "$1" in
    --workdir) WORK="$2"; shift ;;
    *) echo "$(basename "$0"): error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY="${PYTHON:-python}"
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null || echo 0)
if [ "$NGPU" = "0" ]; then
  echo "gpu_check: no CUDA device visible to torch ($("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)); nothing to check"
  exit 0
fi
mkdir -p "$WORK"
LOG="$WORK/log.txt"; : > "$LOG"
FAILED=0
check() {  # check NAME COMMAND...: one PASS/FAIL line, the command's output in $LOG
  local name="$1"; shift
  local t0=$(date +%s)
  if "$@" >> "$LOG" 2>&1; then echo "PASS $name ($(( $(date +%s) - t0 )) s)"
  else echo "FAIL $name ($(( $(date +%s) - t0 )) s; see $LOG)"; FAILED=1; fi
}
echo "gpu_check: $NGPU GPU(s): $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))'), work in $WORK"
DATA="$WORK/data-bin"
RAW="$("$PY" -c 'from hat.data.multi30k import local_multi30k; print(local_multi30k() or "")')"
[ -n "$RAW" ] || RAW="$("$PY" -c "from hat.data.multi30k import download_multi30k; print(download_multi30k('$WORK/raw'))")"
check "data (Multi30k, 2,000 pairs)" hat-preprocess --src de --tgt en --trainpref "$RAW/train" --validpref "$RAW/val" \
  --testpref "$RAW/test_2016_flickr" --destdir "$DATA" --bpe-vocab 1000 --max-train-lines 2000
TRAIN=(--config configs/tasks/multi30k_de_en.yaml --data "$DATA" --space multi30k_tiny --device cuda --max-update 20
       --no-progress --set max_tokens=1024 --set save_interval_updates=0)
check "SuperTransformer, 20 updates, --amp bf16" hat-train "${TRAIN[@]}" --amp bf16 --save-dir "$WORK/super_bf16"
check "SuperTransformer, 20 updates, --amp fp16" hat-train "${TRAIN[@]}" --amp fp16 --save-dir "$WORK/super_fp16"
NPROC=$(( NGPU >= 2 ? 2 : 1 ))
check "torchrun --nproc_per_node $NPROC (NCCL), 20 updates" torchrun --standalone --nproc_per_node "$NPROC" \
  -m hat.cli.train "${TRAIN[@]}" --save-dir "$WORK/super_ddp"
check "hat-profile --device gpu, 5 SubTransformers" hat-profile --space multi30k_tiny --device gpu --samples 5 \
  --out "$WORK/latency_gpu.csv"
printf 'population_size: 8\nparent_size: 2\nmutation_size: 3\ncrossover_size: 3\niterations: 2\nvalid_subset: 64\n' \
  > "$WORK/search.yaml"
check "hat-search scoring on CUDA" hat-search --supernet "$WORK/super_bf16/checkpoint_last.pt" --device cpu \
  --latency 1000ms --data "$DATA" --config "$WORK/search.yaml" --out "$WORK/search" --no-progress
check "hat-translate --gpu, 20 sentences" hat-translate --checkpoint "$WORK/super_bf16/checkpoint_last.pt" \
  --subnet "$WORK/search/subnet.yaml" --data "$DATA" --subset test --max-sentences 20 --gpu --output "$WORK/test.hyp"
exit $FAILED
