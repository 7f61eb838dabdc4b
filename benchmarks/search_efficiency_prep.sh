#!/usr/bin/env bash
# Inputs for benchmarks/search_efficiency.py: the first four stages of `hat-quickstart --preset tiny` (joint BPE 4k,
# SuperTransformer 1,000 updates of <= 2,048 tokens, 60-config CPU latency dataset, default predictor), run one by
# one so that the benchmark does not need the whole quickstart. Every step resumes; rerun the same command after an
# interruption.
#
#   bash benchmarks/search_efficiency_prep.sh WORKDIR [MULTI30K_RAW_DIR] [THREADS]
#
# Same settings as hat/cli/quickstart.py PRESETS["tiny"] (keep them in step).
set -euo pipefail
W=${1:?workdir}
RAW=${2:-../shared/data/multi30k}
T=${3:-1}
mkdir -p "$W"
if [ ! -f "$W/data-bin/preprocess.json" ]; then
  hat-preprocess --src de --tgt en --trainpref "$RAW/train" --validpref "$RAW/val" --testpref "$RAW/test_2016_flickr" \
    --destdir "$W/data-bin" --bpe-vocab 4000 --threads "$T" -q
fi
resume=(); [ -f "$W/supernet/checkpoint_last.pt" ] && resume=(--resume)
if [ ! -f "$W/supernet/.done" ]; then
  hat-train --config multi30k_de_en --data "$W/data-bin" --save-dir "$W/supernet" --max-update 1000 --threads "$T" \
    --set max_tokens=2048 --set valid_subset_max_batches=0 --no-progress "${resume[@]}"
  touch "$W/supernet/.done"
fi
V=$(wc -l < "$W/data-bin/dict.en.txt"); V=$((V + 4))  # + fairseq's 4 special symbols
hat-profile --space multi30k_tiny --device cpu --samples 60 --out "$W/latency_cpu.csv" --resume --widen --repeats 5 \
  --vocab-size "$V" --threads 1
[ -f "$W/predictor_cpu.pt" ] || hat-predictor fit --data "$W/latency_cpu.csv" --device cpu --space multi30k_tiny \
  --out "$W/predictor_cpu.pt"
echo "prep done: $W"
