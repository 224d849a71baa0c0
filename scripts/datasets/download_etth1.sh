#!/usr/bin/env bash
# Downloads ETTh1.csv (Zhou et al., "Informer", AAAI 2021; CC BY-ND 4.0) from the authors'
# repository to datasets/ETTh1.csv, where `gatecast benchmark ett` looks by default. The file is
# not committed here (its licence forbids derivatives and it is not from a package registry);
# .gitignore keeps it out.
set -euo pipefail
cd "$(dirname "$0")/../.."
URL="https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv"
curl -fsSL "$URL" -o datasets/ETTh1.csv.tmp
head -1 datasets/ETTh1.csv.tmp | grep -q '^date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT' \
  || { echo "unexpected header in $URL"; rm -f datasets/ETTh1.csv.tmp; exit 1; }
mv datasets/ETTh1.csv.tmp datasets/ETTh1.csv
echo "datasets/ETTh1.csv: $(($(wc -l < datasets/ETTh1.csv) - 1)) rows"
