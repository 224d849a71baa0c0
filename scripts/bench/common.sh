# Shared by run.sh and paired.sh (sourced, from the repository root): the thread count, torch in a
# virtualenv ($GATECAST_TORCH_VENV, default ~/.venvs/torch; the PyPI wheel is ~3.5 GB with its CUDA
# libraries and runs on CPU; installed on first use), the shared cargo target directory, and the
# line that names the machine.
THREADS="${THREADS:-$(nproc)}"
VENV="${GATECAST_TORCH_VENV:-$HOME/.venvs/torch}"
# numpy: pytorch_segrnn.py reads ETTh1 with it, and the torch wheel does not bring it.
if ! "$VENV/bin/python" -c "import torch, numpy" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch numpy
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gatecast-target}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, $(date -u +%F)"
