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
THREADS="${THREADS:-$(nproc)}"
VENV="${GATECAST_TORCH_VENV:-$HOME/.venvs/torch}"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gatecast-target}"
OUT="${OUT:-$(mktemp -d)}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, $(date -u +%F)"
# PYTORCH_FLAGS=--flush-denormal times PyTorch with denormals flushed, as gatecast's kernels run.
# shellcheck disable=SC2086
# GATECAST_BENCH_REPS sets the repetitions of both sides.
"$VENV/bin/python" scripts/bench/pytorch_rnn.py --threads "$THREADS" --shapes "$SHAPES" \
  --reps "${GATECAST_BENCH_REPS:-5}" ${PYTORCH_FLAGS:-} > "$OUT/pytorch.jsonl"
RAYON_NUM_THREADS="$THREADS" GATECAST_BENCH_SHAPES="$SHAPES" GATECAST_PYTORCH_JSON="$OUT/pytorch.jsonl" \
  cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu --bench recurrent
