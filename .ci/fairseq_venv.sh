#!/usr/bin/env bash
# Build the separate venv with real fairseq (fairseq-fixed 0.12.3.1) that tests/interop/test_real_fairseq.py calls
# through HAT_FAIRSEQ_PYTHON. fairseq pins hydra/omegaconf and its own numpy range, so it does not share our venv.
#
#   bash .ci/fairseq_venv.sh [VENV_DIR]     (default .ci/fairseq-venv; prints the venv's python on the last line)
#
# Why not a plain `pip install fairseq-fixed`: it is an sdist whose build isolation downloads the newest torch (a CUDA
# build, ~3 GB) just to compile, and it requires torchaudio, whose newest release pins another torch. So: our torch pin
# first, the build tools, fairseq without build isolation and without deps, then its runtime deps except torchaudio
# (only fairseq's speech examples import it). Exits non-zero, with pip's error, when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${1:-.ci/fairseq-venv}
TORCH_PIN=${HAT_TORCH_PIN:-torch==2.13.0}
rm -rf "$V"
python3 -m venv "$V"
P="$V/bin/python"
"$P" -m pip install -q --upgrade pip
"$P" -m pip install -q "$TORCH_PIN"
"$P" -m pip install -q -c <(echo "$TORCH_PIN") setuptools wheel cython "numpy>=1.21.3"
"$P" -m pip install -q -c <(echo "$TORCH_PIN") --no-build-isolation --no-deps fairseq-fixed==0.12.3.1
"$P" -m pip install -q -c <(echo "$TORCH_PIN") cffi hydra-core==1.3.2 omegaconf==2.3.0 regex "sacrebleu>=1.4.12" tqdm \
  bitarray scikit-learn packaging
"$P" -m pip check || true  # reports the deliberately missing torchaudio; informational
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$P" -c "import fairseq, fairseq.checkpoint_utils, fairseq.tasks.translation, torch; \
print('fairseq', fairseq.__version__, 'torch', torch.__version__)"
echo "$(cd "$(dirname "$P")" && pwd)/python"
