#!/usr/bin/env bash
# The recurrent-layer benchmark against PyTorch, in one run on this machine:
#   bash scripts/bench/run.sh [SHAPES]      (default a,b; c is the large one, ~minutes)
# Installs torch into a virtualenv ($GATECAST_TORCH_VENV, default ~/.venvs/torch; the PyPI wheel
# is ~3.5 GB with its CUDA libraries and runs on CPU), times PyTorch with as many threads as this
# machine has cores (THREADS=n to change), then runs the Rust bench with the same thread count and
# prints one table. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHAPES="${1:-a,b}"
OUT="${OUT:-$(mktemp -d)}"
# shellcheck source=scripts/bench/common.sh
source scripts/bench/common.sh
# PYTORCH_FLAGS=--flush-denormal times PyTorch with denormals flushed, as gatecast's kernels run.
# shellcheck disable=SC2086
# GATECAST_BENCH_REPS sets the repetitions of both sides.
"$VENV/bin/python" scripts/bench/pytorch_rnn.py --threads "$THREADS" --shapes "$SHAPES" \
  --reps "${GATECAST_BENCH_REPS:-5}" ${PYTORCH_FLAGS:-} > "$OUT/pytorch.jsonl"
RAYON_NUM_THREADS="$THREADS" GATECAST_BENCH_SHAPES="$SHAPES" GATECAST_PYTORCH_JSON="$OUT/pytorch.jsonl" \
  cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu --bench recurrent
