#!/usr/bin/env bash
# Fuzz the CSV loader and validation (fuzz/fuzz_targets/csv_loader.rs) with libFuzzer.
#   bash scripts/fuzz.sh [SECONDS]     (default 600)
# Needs a nightly toolchain and cargo-fuzz (both installed here if missing). Seeds come from
# the bad-input corpus under tests/corpus; crashes land in fuzz/artifacts/csv_loader/ — add each
# as a case in tests/corpus/cases.toml once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-600}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_FUZZ:-$HOME/.cache/gatecast-fuzz-target}"
CORPUS="$HOME/.cache/gatecast-fuzz-corpus"
mkdir -p "$CORPUS"
# Each input is two option-selector bytes, then the file.
for f in tests/corpus/*.csv tests/corpus/csv/*.csv; do
  for sel in '\x00\x00' '\x15\x00' '\x2a\x01' '\xc0\x02'; do
    { printf "$sel"; cat "$f"; } > "$CORPUS/seed-$(basename "$f" .csv)-${sel//\\x/}"
  done
done
cargo +nightly fuzz run csv_loader "$CORPUS" -- -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=4096 2>&1 \
  | tee "$HOME/.cache/gatecast-fuzz.log" | grep -E '^(#[0-9]+.*(DONE|pulse)|==|INFO: seed|Done|SUMMARY|.*panicked)' || true
grep -E 'Done [0-9]+ runs' "$HOME/.cache/gatecast-fuzz.log" || { echo "fuzzing stopped early: see $HOME/.cache/gatecast-fuzz.log"; exit 1; }
