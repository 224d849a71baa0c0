#!/usr/bin/env bash
# Is a change faster? Two builds of the recurrent bench (before and after), alternated one cell at
# a time for several rounds, each in a fresh process, so every round compares runs seconds
# apart on a machine whose speed drifts between minutes. Prints every round's new/old ratios and
# their medians (below 1: the new build is faster).
#   bash scripts/bench/ab.sh OLD_BIN NEW_BIN [SHAPE]   # default b; ROUNDS=5, CELLS=rnn,gru,lstm,
#                                                      # BACKEND=flex, GATECAST_BENCH_REPS=15
# Build a bench binary with
#   cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu \
#     --bench recurrent --no-run
# and copy the executable it names before changing the code. No PyTorch needed; not part of CI.
set -euo pipefail
OLD="$1"
NEW="$2"
SHAPE="${3:-b}"
ROUNDS="${ROUNDS:-5}"
CELLS="${CELLS:-rnn,gru,lstm}"
BACKEND="${BACKEND:-flex}"
REPS="${GATECAST_BENCH_REPS:-15}"
THREADS="${THREADS:-$(nproc)}"
OUT="$(mktemp -d)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, $(date -u +%F)"
echo "shape $SHAPE, $BACKEND, $ROUNDS rounds of (old, new) per cell, medians of $REPS repetitions each"
run() {
  RAYON_NUM_THREADS="$THREADS" GATECAST_BENCH_SHAPES="$SHAPE" GATECAST_BENCH_CELLS="$2" \
    GATECAST_BENCH_BACKENDS="$BACKEND" GATECAST_BENCH_BURN_NN=0 GATECAST_BENCH_LOOP=0 \
    GATECAST_BENCH_REPS="$REPS" "$1" --bench 2>/dev/null \
    | awk -F'|' -v b="gatecast ($BACKEND)" '{ gsub(/^ +| +$/, "", $4) } $4 == b { print $5, $9 }'
}
for round in $(seq "$ROUNDS"); do
  for cell in ${CELLS//,/ }; do
    # Alternate which build goes first, so neither always gets the warmer (or cooler) slot.
    if (( round % 2 )); then
      o=$(run "$OLD" "$cell"); n=$(run "$NEW" "$cell")
    else
      n=$(run "$NEW" "$cell"); o=$(run "$OLD" "$cell")
    fi
    echo "$round $cell $o $n" >> "$OUT/rounds.txt"
  done
done
python3 - "$OUT/rounds.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("| cell | training ms old → new | new/old per round | median | inference ms old → new | new/old per round | median |")
print("|---|---|---|---|---|---|---|")
for cell in dict.fromkeys(r[1] for r in rows):
    mine = [[float(x) for x in r[2:]] for r in rows if r[1] == cell]
    tr = [n / o for o, _, n, _ in mine]
    inf = [n / o for _, o, _, n in mine]
    rng = lambda i: f"{statistics.median(r[i] for r in mine):.1f}"
    fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)
    print(f"| {cell} | {rng(0)} → {rng(2)} | {fmt(tr)} | {statistics.median(tr):.2f} "
          f"| {rng(1)} → {rng(3)} | {fmt(inf)} | {statistics.median(inf):.2f} |")
PY
