#!/usr/bin/env python3
"""Screen variants of ETTh1 experiment files on the validation split, several runs at a time.

Each candidate is a base experiment file with some keys replaced, plus `gatecast benchmark`
flags; every run scores the validation windows (`--validate`), never the test split. Runs go
`--workers` at a time until `--deadline` seconds have passed; what has not finished by then is
stopped and reported as cut. Each result is appended to `OUT/results.csv` as it arrives, so a
run that is itself cut short still leaves what finished.

Candidates file, one per line (`#` starts a comment):

    NAME HORIZON BASE.toml [section.key=value ...] [-- benchmark flags ...]

e.g. `h96_b64 96 examples/configs/ett_segrnn.toml train.batch_size=64` or
`h96_seg48 96 examples/configs/ett_segrnn.toml -- --segment 48`. A key missing from the base is
added at the top of its section; values are TOML (quote TOML strings for the shell: `train.optimizer='"adamw"'`).

    python3 scripts/bench/ett_sweep.py --bin target/release/gatecast --data datasets/ETTh1.csv \
        --candidates cands.txt --out /tmp/sweep --workers 8 --deadline 500 --device wgpu

Screening on one backend (wgpu, say) ranks candidates; a choice is then confirmed with the
backend it will be reported on, since backends round differently.
"""

import argparse
import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

LINE = re.compile(
    r"^H=(\d+): (\d+) validation windows, MSE ([0-9.]+) MAE ([0-9.]+) .*?, (\d+) epochs, (\d+) s"
)


def parse_candidates(path):
    out = []
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = shlex.split(line)
        if len(words) < 3:
            sys.exit(f"{path}:{n}: expected NAME HORIZON BASE.toml [...], got: {raw}")
        name, horizon, base = words[:3]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            sys.exit(f"{path}:{n}: name '{name}' may hold letters, digits, '_', '.', '-' only")
        if not horizon.isdigit():
            sys.exit(f"{path}:{n}: horizon '{horizon}' is not a whole number")
        rest = words[3:]
        flags = []
        if "--" in rest:
            i = rest.index("--")
            rest, flags = rest[:i], rest[i + 1 :]
        edits = []
        for kv in rest:
            m = re.fullmatch(r"([a-z_]+)\.([a-z_]+)=(.+)", kv)
            if not m:
                sys.exit(f"{path}:{n}: '{kv}' is not section.key=value")
            edits.append(m.groups())
        out.append((name, int(horizon), Path(base), edits, flags))
    names = [c[0] for c in out]
    dup = {x for x in names if names.count(x) > 1}
    if dup:
        sys.exit(f"{path}: names used twice: {', '.join(sorted(dup))}")
    return out


def edit_config(text, edits, where):
    lines = text.splitlines()
    for section, key, value in edits:
        header = f"[{section}]"
        try:
            start = lines.index(header)
        except ValueError:
            sys.exit(f"{where}: the base has no {header} section")
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines)
        )
        pat = re.compile(rf"^{key}\s*=")
        hit = [i for i in range(start + 1, end) if pat.match(lines[i])]
        if hit:
            lines[hit[0]] = f"{key} = {value}"
        else:
            lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--candidates", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=540.0, help="seconds from the start")
    ap.add_argument("--device", default="flex")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--mode", default="M")
    args = ap.parse_args()

    t0 = time.monotonic()
    out = Path(args.out)
    for d in ("configs", "logs", "runs"):
        (out / d).mkdir(parents=True, exist_ok=True)
    cands = parse_candidates(args.candidates)
    jobs = []
    for name, h, base, edits, flags in cands:
        cfg = out / "configs" / f"{name}.toml"
        cfg.write_text(edit_config(base.read_text(), edits, f"{args.candidates}: {name}"))
        cmd = [
            args.bin, "benchmark", "ett", "--mode", args.mode, "--data", args.data,
            "--config", str(cfg), "--horizons", str(h), "--validate",
            "--device", args.device, "--out", str(out / "runs" / name),
        ] + ([] if "--seed" in flags else ["--seed", str(args.seed)]) + flags
        jobs.append((name, h, cmd, " ".join(f"{s}.{k}={v}" for s, k, v in edits), " ".join(flags)))

    results = out / "results.csv"
    fields = ["name", "horizon", "mse", "mae", "epochs", "seconds", "status", "edits", "flags"]
    with open(results, "w", newline="") as f:
        csv.writer(f).writerow(fields)

    def record(row):
        with open(results, "a", newline="") as f:
            csv.writer(f).writerow(row)
        print(",".join(str(x) for x in row), flush=True)

    queue = list(jobs)
    running = {}
    while queue or running:
        while queue and len(running) < args.workers and time.monotonic() - t0 < args.deadline:
            name, h, cmd, edits, flags = queue.pop(0)
            log = open(out / "logs" / f"{name}.log", "w")
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            running[p] = (name, h, edits, flags, log, time.monotonic())
        if time.monotonic() - t0 >= args.deadline:
            for p, (name, h, edits, flags, log, _) in list(running.items()):
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                log.close()
                record([name, h, "", "", "", "", "cut", edits, flags])
            running.clear()
            for name, h, _, edits, flags in queue:
                record([name, h, "", "", "", "", "not started", edits, flags])
            queue.clear()
            break
        for p in [p for p in running if p.poll() is not None]:
            name, h, edits, flags, log, started = running.pop(p)
            log.close()
            text = (out / "logs" / f"{name}.log").read_text(errors="replace")
            m = next(filter(None, map(LINE.match, text.splitlines())), None)
            if p.returncode == 0 and m:
                _, _, mse, mae, epochs, secs = m.groups()
                record([name, h, mse, mae, epochs, secs, "ok", edits, flags])
            else:
                record([name, h, "", "", "", f"{time.monotonic() - started:.0f}",
                        f"failed ({p.returncode})", edits, flags])
        time.sleep(0.5)

    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        tar.add(out / "logs", arcname="logs")
        tar.add(out / "configs", arcname="configs")
        for metrics in sorted((out / "runs").glob("*/*/metrics.csv")):
            tar.add(metrics, arcname=f"metrics/{metrics.parent.parent.name}.csv")
    print(f"done in {time.monotonic() - t0:.0f} s: {results}")


if __name__ == "__main__":
    main()
