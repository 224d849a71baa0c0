#!/usr/bin/env python3
"""Writes the three synthetic own files of the normalisation benchmark (docs/benchmarks.md,
"Which normalisation for an own file"): a trending monthly series with a yearly season, a
quarterly series with compound growth, and a stationary yearly series with an 11-year cycle.

Deterministic (Python's own random module, fixed seeds, no numpy), so the table can be re-run:

    python3 scripts/bench/own_files.py OUTDIR
"""
import math
import random
import sys
from pathlib import Path


def monthly(path: Path) -> None:
    # 240 months, 2000-01 to 2019-12: a level rising from 100 to about 600, a yearly season
    # whose size grows with the level (multiplicative), and 4% noise.
    rng = random.Random(1)
    with path.open("w") as f:
        f.write("month,sales\n")
        for i in range(240):
            y, m = 2000 + i // 12, i % 12 + 1
            level = 100.0 * math.exp(math.log(6.0) * i / 239)
            season = 1.0 + 0.25 * math.sin(2 * math.pi * (m - 3) / 12)
            value = level * season * (1.0 + rng.gauss(0.0, 0.04))
            f.write(f"{y}-{m:02d},{value:.2f}\n")


def quarterly(path: Path) -> None:
    # 160 quarters, 1960Q1 to 1999Q4: 0.7% growth a quarter, a small fourth-quarter peak, and
    # a random walk in the growth rate (business cycles).
    rng = random.Random(2)
    value, growth = 1000.0, 0.007
    with path.open("w") as f:
        f.write("quarter,gdp\n")
        for i in range(160):
            q = i % 4 + 1
            growth += rng.gauss(0.0, 0.002)
            growth = min(max(growth, -0.01), 0.02)
            value *= 1.0 + growth
            seasonal = 1.0 + (0.02 if q == 4 else -0.0067)
            f.write(f"{1960 + i // 4}Q{q},{value * seasonal * (1 + rng.gauss(0, 0.005)):.1f}\n")


def yearly(path: Path) -> None:
    # 309 years, 1700 to 2008: a stationary cycle of about 11 years whose amplitude wanders, no
    # trend, floored at 0 like a count of sunspots.
    rng = random.Random(3)
    amp = 60.0
    with path.open("w") as f:
        f.write("year,spots\n")
        for i in range(309):
            amp = min(max(amp + rng.gauss(0.0, 6.0), 25.0), 95.0)
            value = 50.0 + amp * math.sin(2 * math.pi * i / 11.0) + rng.gauss(0.0, 8.0)
            f.write(f"{1700 + i},{max(value, 0.0):.1f}\n")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    monthly(out / "monthly.csv")
    quarterly(out / "quarterly.csv")
    yearly(out / "yearly.csv")


if __name__ == "__main__":
    main()
