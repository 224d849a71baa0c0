#!/usr/bin/env bash
# A SegRNN epoch, gatecast against PyTorch, back to back for several rounds (the machine's speed
# drifts between minutes): one epoch of examples/configs/ett_segrnn.toml's model on ETTh1 (M,
# validation split) with `gatecast benchmark ett --validate --epochs 1`, then the same model,
# data and settings in PyTorch (scripts/bench/pytorch_segrnn.py), each in a fresh process, on
# the same threads. Prints every round's seconds and the median gatecast / PyTorch ratio (below 1:
# gatecast is faster). Epochs include the validation pass in both.
#   bash scripts/bench/segrnn_vs_pytorch.sh [HORIZON]   # default 720; ROUNDS=3,
#                                                       # DATA=datasets/ETTh1.csv, THREADS=nproc
# Another model: CONFIG=FILE and PYARGS="--segment 24 --hidden 512 ..." with the same settings.
# Needs ETTh1 (scripts/datasets/download_etth1.sh) and torch as run.sh installs it; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
H="${1:-720}"
ROUNDS="${ROUNDS:-3}"
DATA="${DATA:-datasets/ETTh1.csv}"
CONFIG="${CONFIG:-examples/configs/ett_segrnn.toml}"
PYARGS="${PYARGS:-}"
# shellcheck source=scripts/bench/common.sh
source scripts/bench/common.sh
cargo build --release --bin gatecast --quiet
BIN="$CARGO_TARGET_DIR/release/gatecast"
OUT="$(mktemp -d)"
echo "$CONFIG, mode M, H$H, one epoch per run, $ROUNDS rounds of (gatecast, PyTorch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
echo "| round | gatecast s | PyTorch s | gatecast / PyTorch |"
echo "|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  dir="$OUT/gatecast-$round"
  RAYON_NUM_THREADS="$THREADS" "$BIN" benchmark ett --mode M --data "$DATA" --config "$CONFIG" \
    --horizons "$H" --validate --epochs 1 --out "$dir" > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  ours=$(tail -n +2 "$dir"/*/metrics.csv | head -1 | cut -d, -f10)
  theirs=$("$VENV/bin/python" scripts/bench/pytorch_segrnn.py --data "$DATA" --horizon "$H" \
    --threads "$THREADS" $PYARGS | "$VENV/bin/python" -c 'import json, sys; print(json.loads(sys.stdin.readline())["seconds"])')
  echo "$round $ours $theirs" >> "$OUT/rounds.txt"
  echo "| $round | $ours | $theirs | $(python3 -c "print(f'{$ours / $theirs:.2f}')") |"
done
python3 - "$OUT/rounds.txt" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(f"\nmedian gatecast / PyTorch: {statistics.median(r[1] / r[2] for r in rows):.2f}")
PY
rm -rf "$OUT"
