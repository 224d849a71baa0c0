#!/usr/bin/env bash
# The recurrent benchmark on a machine with an NVIDIA GPU, shape c (B256 T336 H256, 2 layers),
# in one table: gatecast and burn-nn on wgpu, PyTorch on CUDA when torch sees the GPU (else CPU).
#   bash scripts/bench/gpu.sh          # about 5-10 minutes, most of it the first build
# Needs a Vulkan driver for wgpu (NVIDIA's, or `apt-get install mesa-vulkan-drivers`).
# Environment:
#   SHAPES=a,b          other shapes (default c; a,b also run on Mesa's software Vulkan, slowly)
#   GATECAST_BENCH_BIN  a bench binary built elsewhere, for a GPU machine without network (no
#                       crates to fetch): build it where cargo can, and carry it over:
#       cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu \
#         --bench recurrent --no-run     # prints the binary's path; `strip` it (85 -> 59 MiB)
#   PyTorch's rows need torch importable from $GATECAST_TORCH_VENV (default ~/.venvs/torch);
#   without network and without torch there, the table has gatecast and burn-nn only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gatecast-target}"
OUT="${OUT:-$(mktemp -d)}"
SHAPES="${SHAPES:-c}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi"
VENV="${GATECAST_TORCH_VENV:-$HOME/.venvs/torch}"
touch "$OUT/pytorch.jsonl"
if "$VENV/bin/python" -c "import torch" 2>/dev/null || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch; }; then
  "$VENV/bin/python" scripts/bench/pytorch_rnn.py --shapes "$SHAPES" --reps 3 --device auto > "$OUT/pytorch.jsonl" || true
else
  echo "no torch: the table has no PyTorch rows"
fi
export GATECAST_BENCH_SHAPES="$SHAPES" GATECAST_BENCH_REPS="${GATECAST_BENCH_REPS:-3}" \
  GATECAST_BENCH_BACKENDS=wgpu GATECAST_PYTORCH_JSON="$OUT/pytorch.jsonl"
if [ -n "${GATECAST_BENCH_BIN:-}" ]; then
  "$GATECAST_BENCH_BIN" --bench
else
  cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu --bench recurrent
fi
