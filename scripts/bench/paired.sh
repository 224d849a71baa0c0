#!/usr/bin/env bash
# Ratios to PyTorch that hold up on a noisy machine: PyTorch and gatecast's fused layers timed back
# to back, one cell at a time, for several rounds; prints every round's ratios and their medians.
# (run.sh times all of PyTorch first and then all of gatecast, minutes apart; on a VM whose speed
# drifts by 10-30% between minutes, a single ratio there can be off by that much.)
#   bash scripts/bench/paired.sh [SHAPE]   # default b; ROUNDS=5, CELLS=rnn,gru,lstm, BACKEND=flex,
#                                          # GATECAST_BENCH_REPS=15 (shape c: 3), THREADS=nproc
# Needs torch as run.sh installs it; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHAPE="${1:-b}"
ROUNDS="${ROUNDS:-5}"
CELLS="${CELLS:-rnn,gru,lstm}"
BACKEND="${BACKEND:-flex}"
REPS="${GATECAST_BENCH_REPS:-15}"
OUT="$(mktemp -d)"
# shellcheck source=scripts/bench/common.sh
source scripts/bench/common.sh
BIN=$(cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu \
  --bench recurrent --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "bench binary not found"; exit 1; }
echo "shape $SHAPE, $BACKEND, $ROUNDS rounds of (PyTorch, gatecast) per cell, medians of $REPS repetitions each"
for round in $(seq "$ROUNDS"); do
  for cell in ${CELLS//,/ }; do
    # shellcheck disable=SC2086
    "$VENV/bin/python" scripts/bench/pytorch_rnn.py --threads "$THREADS" --shapes "$SHAPE" \
      --cells "$cell" --reps "$REPS" ${PYTORCH_FLAGS:-} > "$OUT/pytorch.jsonl"
    RAYON_NUM_THREADS="$THREADS" GATECAST_BENCH_SHAPES="$SHAPE" GATECAST_BENCH_CELLS="$cell" \
      GATECAST_BENCH_BACKENDS="$BACKEND" GATECAST_BENCH_BURN_NN=0 GATECAST_BENCH_LOOP=0 \
      GATECAST_BENCH_REPS="$REPS" GATECAST_PYTORCH_JSON="$OUT/pytorch.jsonl" "$BIN" --bench 2>/dev/null \
      | awk -F'|' -v r="$round" -v c="$cell" -v b="gatecast ($BACKEND)" \
          '{ gsub(/^ +| +$/, "", $4) } $4 == b { print r, c, $5, $6, $9, $10 }' >> "$OUT/rounds.txt"
  done
done
python3 - "$OUT/rounds.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("| cell | training ms | × PyTorch, per round | median | inference ms | × PyTorch, per round | median |")
print("|---|---|---|---|---|---|---|")
for cell in dict.fromkeys(r[1] for r in rows):
    mine = [r for r in rows if r[1] == cell]
    col = lambda i: [float(r[i]) for r in mine]
    fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)
    print(f"| {cell} | {min(col(2)):.1f}–{max(col(2)):.1f} | {fmt(col(3))} | {statistics.median(col(3)):.2f} "
          f"| {min(col(4)):.1f}–{max(col(4)):.1f} | {fmt(col(5))} | {statistics.median(col(5)):.2f} |")
PY
