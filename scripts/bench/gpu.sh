#!/usr/bin/env bash
# The recurrent benchmark on a GPU, in one table: gatecast on wgpu with the fused GPU op and with
# the step-by-step loop, and PyTorch on CUDA (cuDNN) when torch sees the GPU (else CPU), same
# shapes, same run; then the ratios (×PyTorch, and step loop / fused op).
#   bash scripts/bench/gpu.sh                  # shapes b,c; about 5-10 minutes with the first build
#   SHAPES=a CELLS=lstm bash scripts/bench/gpu.sh   # a smoke test on Mesa's software Vulkan
# Environment:
#   SHAPES (default b,c), CELLS (default rnn,gru,lstm), REPS (default 3)
#   PHASES=c            also prints where the fused op's time goes in an LSTM step at that shape
#   ROWS_SWEEP="2 4 8"  also times the fused op alone (shape c, LSTM) at each batch-rows-per-cube
#                       setting (GATECAST_GPU_ROWS), to check the op's own choice
#   GATECAST_BENCH_BIN  a bench binary built elsewhere, for a GPU machine without network (no
#                       crates to fetch): build it where cargo can, strip it, carry it over:
#       cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu \
#         --bench recurrent --no-run     # prints the binary's path
#   GATECAST_VULKAN_DEBS a folder of .deb packages with the Vulkan loader (libvulkan1), unpacked
#                       into / first, for machines whose NVIDIA driver has no loader installed
#   PyTorch: a python with torch, tried in order: $GATECAST_TORCH_PYTHON, python3, the virtualenv
#   $GATECAST_TORCH_VENV (default ~/.venvs/torch, created with pip where there is network).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gatecast-target}"
OUT="${OUT:-$(mktemp -d)}"
SHAPES="${SHAPES:-b,c}"
CELLS="${CELLS:-rnn,gru,lstm}"
REPS="${REPS:-3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"

if [ -n "${GATECAST_VULKAN_DEBS:-}" ]; then
  for f in "$GATECAST_VULKAN_DEBS"/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# NVIDIA's container runtime mounts its Vulkan ICD outside the loader's search path.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES="$icd"
  fi
done

PY=""
for p in "${GATECAST_TORCH_PYTHON:-}" python3 "${GATECAST_TORCH_VENV:-$HOME/.venvs/torch}/bin/python"; do
  if [ -n "$p" ] && "$p" -c "import torch" 2>/dev/null; then PY="$p"; break; fi
done
if [ -z "$PY" ]; then
  VENV="${GATECAST_TORCH_VENV:-$HOME/.venvs/torch}"
  if python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch; then PY="$VENV/bin/python"; fi
fi
touch "$OUT/pytorch.jsonl"
if [ -n "$PY" ]; then
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cudnn', torch.backends.cudnn.version())"
  "$PY" scripts/bench/pytorch_rnn.py --shapes "$SHAPES" --cells "$CELLS" --reps "$REPS" --device auto > "$OUT/pytorch.jsonl" || true
else
  echo "no torch: the table has no PyTorch rows"
fi

export GATECAST_BENCH_SHAPES="$SHAPES" GATECAST_BENCH_CELLS="$CELLS" GATECAST_BENCH_REPS="$REPS" \
  GATECAST_BENCH_BACKENDS=wgpu GATECAST_BENCH_BURN_NN="${GATECAST_BENCH_BURN_NN:-0}" \
  GATECAST_BENCH_WARMUPS="${GATECAST_BENCH_WARMUPS:-3}" \
  GATECAST_PYTORCH_JSON="$OUT/pytorch.jsonl"
bench() {
  if [ -n "${GATECAST_BENCH_BIN:-}" ]; then
    "$GATECAST_BENCH_BIN" --bench
  else
    cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu --bench recurrent
  fi
}
bench
if [ -n "${PHASES:-}" ]; then
  echo "== where a training step goes (shape $PHASES, LSTM; each phase waits for the device)"
  GATECAST_GPU_PHASES=1 GATECAST_BENCH_SHAPES=$PHASES GATECAST_BENCH_CELLS=lstm GATECAST_BENCH_LOOP=0 \
    GATECAST_BENCH_REPS=1 GATECAST_BENCH_WARMUPS=2 GATECAST_PYTORCH_JSON=/dev/null bench 2>&1 \
    | grep "^gpu op" | tail -8
fi
for rows in ${ROWS_SWEEP:-}; do
  echo "== fused op alone, GATECAST_GPU_ROWS=$rows (shape c, LSTM)"
  GATECAST_GPU_ROWS=$rows GATECAST_BENCH_SHAPES=c GATECAST_BENCH_CELLS=lstm GATECAST_BENCH_LOOP=0 \
    GATECAST_PYTORCH_JSON=/dev/null bench | grep -E "^\| c .*gatecast \(wgpu\)" || true
done
