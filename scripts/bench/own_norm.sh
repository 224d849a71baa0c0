#!/usr/bin/env bash
# The normalisation table for a user's own file (docs/benchmarks.md, "Which normalisation for an
# own file"): the five files, each trained with every normalisation (`--norm`), seed 42, every
# other setting the own-file default. Prints file, normalisation, validation loss of the kept
# epoch, test MAE and seconds.
#
#   bash scripts/bench/own_norm.sh [NORMS...]      # default: none last-value revin auto
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/gatecast-target}"
bin="${GATECAST:-$CARGO_TARGET_DIR/release/gatecast}"
out="${OUT:-/tmp/gatecast-own-norm}"
norms=("$@")
[ ${#norms[@]} -eq 0 ] && norms=(none last-value revin auto)
python3 scripts/bench/own_files.py "$out/data" >/dev/null
mkdir -p "$out/runs"
files=(
  "monthly|$out/data/monthly.csv|--target sales"
  "quarterly|$out/data/quarterly.csv|--target gdp"
  "yearly|$out/data/yearly.csv|--target spots --time-column year"
  "retail|datasets/online_retail_daily.csv|--target revenue --gaps interpolate"
  "co2|datasets/mauna_loa_co2_weekly.csv|--target co2 --time-column date --time-format %Y%m%d --resample MS --aggregate mean"
)
printf '%-10s %-11s %12s %12s %8s\n' file norm valid_loss test_mae seconds
for f in "${files[@]}"; do
  IFS='|' read -r name path flags <<<"$f"
  for norm in "${norms[@]}"; do
    dir="$out/runs/$name-$norm"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$bin" train --data "$path" $flags --norm "$norm" --seed 42 --quiet --out "$dir" >"$dir.log" 2>&1 \
      || { echo "$name $norm: failed, see $dir.log"; continue; }
    end=$(date +%s.%N)
    python3 - "$dir" "$name" "$norm" "$start" "$end" <<'PY'
import csv, sys
d, name, norm, start, end = sys.argv[1:]
epochs = list(csv.DictReader(open(f"{d}/metrics.csv")))
valid = min(float(r["valid_loss"]) for r in epochs)
mae = float(next(csv.DictReader(open(f"{d}/test_metrics.csv")))["mae"])
print(f"{name:<10} {norm:<11} {valid:12.5f} {mae:12.3f} {float(end) - float(start):8.1f}")
PY
  done
done
