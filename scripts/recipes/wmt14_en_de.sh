#!/usr/bin/env bash
# HAT recipe for wmt14_en_de (space wmt14_space0). See pipeline.sh for the steps and flags; e.g. `scripts/recipes/wmt14_en_de.sh --dry-run`.
TASK=wmt14_en_de SPACE=wmt14_space0 PREPARE=prepare_wmt14_en_de.sh DEVICE=${DEVICE:-rpi4} LATENCIES=${LATENCIES:-6000ms,7000ms,9000ms} SRC=en TGT=de
source "$(dirname "${BASH_SOURCE[0]}")/pipeline.sh" "$@"
