#!/usr/bin/env bash
# HAT recipe for wmt14_en_fr (space wmt14_space0). See pipeline.sh for the steps and flags; e.g. `scripts/recipes/wmt14_en_fr.sh --dry-run`.
TASK=wmt14_en_fr SPACE=wmt14_space0 PREPARE=prepare_wmt14_en_fr.sh DEVICE=${DEVICE:-rpi4} LATENCIES=${LATENCIES:-5000ms,6000ms,7000ms} SRC=en TGT=fr
source "$(dirname "${BASH_SOURCE[0]}")/pipeline.sh" "$@"
