#!/usr/bin/env bash
# The recurrent benchmark on a machine with an NVIDIA GPU, shape c (B256 T336 H256, 2 layers),
# in one table: gatecast and burn-nn on wgpu, PyTorch on CUDA when torch sees the GPU (else CPU).
#   bash scripts/bench/gpu.sh          # about 5-10 minutes, most of it the first build
# Needs a Vulkan driver for wgpu (NVIDIA's, or `apt-get install mesa-vulkan-drivers`).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gatecast-target}"
OUT="${OUT:-$(mktemp -d)}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi"
VENV="${GATECAST_TORCH_VENV:-$HOME/.venvs/torch}"
if "$VENV/bin/python" -c "import torch" 2>/dev/null || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch; }; then
  "$VENV/bin/python" scripts/bench/pytorch_rnn.py --shapes c --reps 3 --device auto > "$OUT/pytorch.jsonl" || true
fi
GATECAST_BENCH_SHAPES=c GATECAST_BENCH_REPS=3 GATECAST_BENCH_BACKENDS=wgpu \
  GATECAST_PYTORCH_JSON="$OUT/pytorch.jsonl" \
  cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu --bench recurrent
