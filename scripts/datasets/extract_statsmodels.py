#!/usr/bin/env python3
"""Reproduce datasets/mauna_loa_co2_weekly.csv from the statsmodels 0.14.4 wheel (PyPI).

    python3 scripts/datasets/extract_statsmodels.py            # downloads the wheel with pip
    python3 scripts/datasets/extract_statsmodels.py WHEEL.whl  # or uses one you have

Standard library only (a wheel is a zip). Any platform's wheel of 0.14.4 holds the same file.

Writes datasets/mauna_loa_co2_weekly.csv: statsmodels/datasets/co2/co2.csv copied byte for byte
(weekly CO2 at Mauna Loa, March 1958 to December 2001, dates as YYYYMMDD, missing weeks as
empty cells), and checks its sha256.
"""
import hashlib
import pathlib
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "datasets" / "mauna_loa_co2_weekly.csv"
MEMBER = "statsmodels/datasets/co2/co2.csv"
SHA256 = "16695fa2786e53414e5a6b54767a3fdf5de99cfbc68617f69d1362d92776a92f"


def wheel_path(argv):
    if len(argv) > 1:
        return pathlib.Path(argv[1])
    tmp = pathlib.Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "pip", "download", "statsmodels==0.14.4", "--no-deps",
                    "--only-binary=:all:", "-d", str(tmp)], check=True)
    return next(tmp.glob("statsmodels-0.14.4-*.whl"))


def main():
    with zipfile.ZipFile(wheel_path(sys.argv)) as wheel:
        data = wheel.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"{MEMBER}: sha256 {digest}, expected {SHA256}")
    OUT.write_bytes(data)
    print(f"{OUT.relative_to(ROOT)}: {len(data)} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
