"""GluonTS DeepAR on the bundled retail panel, with the folds of `gatecast backtest`: the peer's
row beside gatecast's (issue #18). CPU, PyTorch; not part of CI.

    ~/.venvs/torch/bin/pip install "gluonts[torch]"          # the bench virtualenv, once
    ~/.venvs/torch/bin/python scripts/bench/gluonts_deepar.py --epochs 6 --threads 2 --row peer.csv
    gatecast backtest --config examples/configs/retail_panel.toml --folds 3 --peer peer.csv

Folds as `gatecast backtest --folds 3` (stride = horizon): fold k forecasts the `horizon` days
from origin_k = rows - horizon - (folds - 1 - k) * stride of each series; the model trains once
on every series' rows before the first origin. Same look-back (context_length), horizon,
network (2-layer LSTM, 40 units), batch size, learning rate and epochs, an epoch being as many
batches as gatecast's (training windows / batch). Metrics from GluonTS's own Evaluator at the
11 levels gatecast reports. Prints one markdown table and a JSON line with the wall times.

A file of one series (no --id-column) is read as `gatecast backtest --data F --target T
--likelihood L` reads it: missing days inserted and filled by linear interpolation (gatecast's
`data.gaps = "interpolate"` for a panel of one series), e.g.

    ~/.venvs/torch/bin/python scripts/bench/gluonts_deepar.py --data datasets/online_retail_daily.csv \
        --id-column "" --target orders --likelihood negative_binomial --folds 8 --horizon 14 \
        --lookback 56 --hidden 64 --layers 1 --lr 3e-3 --epochs 20 --batches 50
"""

import argparse
import json
import tempfile
import time

import numpy as np
import pandas as pd
import torch

LEVELS = [0.025, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.975]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="datasets/online_retail_panel.csv")
    p.add_argument("--id-column", default="stock_code", help='"" for a file of one series')
    p.add_argument("--target", default="units")
    p.add_argument(
        "--likelihood",
        default="student_t",
        choices=["student_t", "negative_binomial", "gaussian"],
    )
    p.add_argument("--batches", type=int, help="batches per epoch (default: gatecast's pass over its windows)")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--horizon", type=int, default=28)
    p.add_argument("--lookback", type=int, default=56)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=40)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--stride", type=int, default=2, help="gatecast's window.stride: sets the batches per epoch")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--row",
        help="also write the mean row as CSV here, for `gatecast backtest --peer FILE`",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    start = time.perf_counter()
    from gluonts.dataset.common import ListDataset
    from gluonts.evaluation import Evaluator
    from gluonts.torch.model.deepar import DeepAREstimator

    from gluonts.torch.distributions import (
        NegativeBinomialOutput,
        NormalOutput,
        StudentTOutput,
    )

    if args.id_column:
        df = pd.read_csv(args.data, dtype={args.id_column: str}, parse_dates=["date"])
        df = df.sort_values([args.id_column, "date"], kind="stable")
        series = [
            (sid, g["date"].iloc[0], g[args.target].to_numpy(dtype=np.float32))
            for sid, g in df.groupby(args.id_column, sort=False)
        ]
    else:
        df = pd.read_csv(args.data, parse_dates=["date"]).set_index("date").sort_index()
        daily = df[args.target].asfreq("D").interpolate(method="linear")
        # Interpolated counts can be halves; gatecast's negative binomial reads them through
        # lgamma, and torch's refuses them unless told not to check.
        torch.distributions.Distribution.set_default_validate_args(False)
        series = [(args.target, daily.index[0], daily.to_numpy(dtype=np.float32))]
    h, l, k = args.horizon, args.lookback, args.folds
    origin = lambda rows, f: rows - h - (k - 1 - f) * h  # noqa: E731
    train = ListDataset(
        [
            {"start": t0, "target": y[: origin(len(y), 0)], "item_id": sid}
            for sid, t0, y in series
        ],
        freq="D",
    )
    # gatecast's epoch: every `stride`-th window whose targets end before validation.
    windows = sum(
        len(range(l, origin(len(y), 0) - h - h + 1, args.stride)) for _, _, y in series
    )
    batches = args.batches or max(1, windows // args.batch_size)
    distr = {
        "student_t": StudentTOutput,
        "negative_binomial": NegativeBinomialOutput,
        "gaussian": NormalOutput,
    }[args.likelihood]()
    estimator = DeepAREstimator(
        freq="D",
        prediction_length=h,
        context_length=l,
        num_layers=args.layers,
        hidden_size=args.hidden,
        lr=args.lr,
        batch_size=args.batch_size,
        num_batches_per_epoch=batches,
        distr_output=distr,
        trainer_kwargs={
            "max_epochs": args.epochs,
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "default_root_dir": tempfile.mkdtemp(prefix="gluonts-deepar-"),
        },
    )
    trained_at = time.perf_counter()
    predictor = estimator.train(train)
    train_seconds = time.perf_counter() - trained_at
    params = sum(p.numel() for p in predictor.prediction_net.parameters())

    evaluator = Evaluator(quantiles=LEVELS, num_workers=None)
    rows = []
    for f in range(k):
        ds = ListDataset(
            [
                {"start": t0, "target": y[: origin(len(y), f)], "item_id": sid}
                for sid, t0, y in series
            ],
            freq="D",
        )
        forecasts = list(predictor.predict(ds, num_samples=args.samples))
        actuals = [
            pd.DataFrame(
                y[: origin(len(y), f) + h],
                index=pd.period_range(t0, periods=origin(len(y), f) + h, freq="D"),
            )
            for _, t0, y in series
        ]
        agg, _ = evaluator(actuals, forecasts)
        cov80 = agg["Coverage[0.9]"] - agg["Coverage[0.1]"]
        cov95 = agg["Coverage[0.975]"] - agg["Coverage[0.025]"]
        rows.append(
            {
                "fold": f + 1,
                "mean_wQuantileLoss": agg["mean_wQuantileLoss"],
                "coverage80": cov80,
                "coverage95": cov95,
                "MASE": agg["MASE"],
            }
        )
    total = time.perf_counter() - start
    print(f"GluonTS DeepAR: {params} parameters, {args.epochs} epochs of {batches} batches")
    print("| fold | mean wQL | 80% coverage | 95% coverage | MASE |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['fold']} | {r['mean_wQuantileLoss']:.4f} | {r['coverage80']:.3f} | {r['coverage95']:.3f} | {r['MASE']:.3f} |"
        )
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key != "fold"}
    print(
        f"| mean | {mean['mean_wQuantileLoss']:.4f} | {mean['coverage80']:.3f} | {mean['coverage95']:.3f} | {mean['MASE']:.3f} |"
    )
    if args.row:
        with open(args.row, "w") as f:
            f.write("name,mean_wql,coverage80,coverage95,mase,seconds\n")
            f.write(
                f"GluonTS DeepAR,{mean['mean_wQuantileLoss']},{mean['coverage80']},"
                f"{mean['coverage95']},{mean['MASE']},{total}\n"
            )
    print(
        json.dumps(
            {
                "who": "gluonts-deepar",
                "params": params,
                "epochs": args.epochs,
                "batches_per_epoch": batches,
                "train_seconds": train_seconds,
                "total_seconds": total,
                "folds": rows,
                "mean": mean,
            }
        )
    )


if __name__ == "__main__":
    main()
