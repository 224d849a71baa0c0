#!/usr/bin/env bash
# Is a change faster for a whole model? Two builds of the `gatecast` binary (before and after),
# alternated for several rounds, each round training one epoch of the same benchmark
# configuration in a fresh process (validation split, so the test rows stay unread). Prints each
# run's epoch seconds and losses (the same function gives the same losses to about 6 digits),
# and the median new/old ratio (below 1: the new build is faster).
#   bash scripts/bench/epoch_ab.sh OLD_BIN NEW_BIN [CONFIG] [HORIZON]
#     # defaults: examples/configs/ett_segrnn.toml, 720; ROUNDS=3, DATA=datasets/ETTh1.csv, MODE=M
# Build with `cargo build --release --bin gatecast` and copy target/release/gatecast before
# changing the code. Needs ETTh1 (scripts/datasets/download_etth1.sh); not part of CI.
set -euo pipefail
OLD="$1"
NEW="$2"
CONFIG="${3:-examples/configs/ett_segrnn.toml}"
H="${4:-720}"
ROUNDS="${ROUNDS:-3}"
DATA="${DATA:-datasets/ETTh1.csv}"
MODE="${MODE:-M}"
OUT="$(mktemp -d)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "$CONFIG, mode $MODE, H$H, one epoch per run, $ROUNDS rounds of (old, new)"
echo "| round | build | epoch s | train loss | valid loss |"
echo "|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for which in old new; do
    bin="$OLD"
    [ "$which" = new ] && bin="$NEW"
    dir="$OUT/$which-$round"
    "$bin" benchmark ett --mode "$MODE" --data "$DATA" --config "$CONFIG" --horizons "$H" \
      --validate --epochs 1 --out "$dir" > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
    row=$(tail -n +2 "$dir"/*/metrics.csv | head -1)
    IFS=, read -r _ train valid _ _ _ _ _ _ seconds <<< "$row"
    echo "| $round | $which | $seconds | $train | $valid |" | tee -a "$OUT/rows.md"
  done
done
python3 - "$OUT/rows.md" <<'PY'
import statistics, sys
rows = [[c.strip() for c in l.strip().strip('|').split('|')] for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r[0], {})[r[1]] = float(r[2])
ratios = [v["new"] / v["old"] for v in by.values() if "new" in v and "old" in v]
print(f"\nnew / old epoch time, per round: {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")
PY
rm -rf "$OUT"
