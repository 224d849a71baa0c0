"""Epochs of a segment-recurrent forecaster (SegRNN, Lin et al. 2023) in PyTorch, on the same
data, windows and settings as `gatecast benchmark ett --mode M --validate`, to time beside
gatecast's epochs (scripts/bench/segrnn_vs_pytorch.sh pairs them).

The model is gatecast's `SegRnn` written with torch.nn: last-value subtraction, each look-back
segment embedded by Linear + ReLU, a GRU over the segments, every output segment decoded by one
GRU step from the final state with a position ‖ channel embedding as input (as a plain GRU step
over the windows × segments rows), dropout, Linear to the segment. Training as the config has
it: Adam, the MAE loss, global-norm clipping, batches in a shuffled order; after each epoch one
pass over the validation windows (batches of 256, no gradients), as gatecast's epoch includes.
Prints one JSON line per epoch: seconds (training + validation), training and validation loss.

  python scripts/bench/pytorch_segrnn.py --data datasets/ETTh1.csv --horizon 720 --threads 2

Needs torch (the bench virtualenv, scripts/bench/common.sh); not part of CI.
"""

import argparse
import json
import time

import numpy as np
import torch
from torch import nn


class SegRnn(nn.Module):
    def __init__(self, lookback, horizon, channels, segment, hidden, dropout):
        super().__init__()
        self.n, self.m = lookback // segment, -(-horizon // segment)
        self.c, self.w, self.d, self.h = channels, segment, hidden, horizon
        self.embed = nn.Linear(segment, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.position = nn.Parameter(torch.randn(self.m, hidden // 2))
        self.channel = nn.Parameter(torch.randn(channels, hidden // 2))
        self.dropout = nn.Dropout(dropout)
        self.predict = nn.Linear(hidden, segment)

    def forward(self, x):  # [b, lookback, c] -> [b, horizon, c]
        b = x.shape[0]
        last = x[:, -1:, :]
        seg = (x - last).permute(0, 2, 1).reshape(b * self.c, self.n, self.w)
        _, state = self.gru(torch.relu(self.embed(seg)))  # [1, b*c, d]
        queries = torch.cat(
            [
                self.position.unsqueeze(0).expand(self.c, -1, -1),
                self.channel.unsqueeze(1).expand(-1, self.m, -1),
            ],
            dim=-1,
        )  # [c, m, d]
        queries = queries.unsqueeze(0).expand(b, -1, -1, -1).reshape(-1, 1, self.d)
        h0 = state.reshape(b * self.c, 1, self.d).expand(-1, self.m, -1).reshape(1, -1, self.d)
        _, out = self.gru(queries, h0)  # [1, b*c*m, d]
        y = self.predict(self.dropout(out.reshape(-1, self.d)))
        y = y.reshape(b, self.c, self.m * self.w)[:, :, : self.h]
        return y.permute(0, 2, 1) + last


def windows(z, starts, lookback, horizon):
    idx = starts[:, None] + np.arange(lookback + horizon)[None, :]
    w = torch.from_numpy(z[idx])  # [n, lookback + horizon, c]
    return w[:, :lookback], w[:, lookback:]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="datasets/ETTh1.csv")
    p.add_argument("--lookback", type=int, default=720)
    p.add_argument("--horizon", type=int, default=720)
    p.add_argument("--segment", type=int, default=72)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    values = np.loadtxt(a.data, delimiter=",", skiprows=1, usecols=range(1, 8), dtype=np.float64)
    # ETTh's split: train rows [0, 8640), validation [8640 - L, 11520); z-score from train rows.
    mean, std = values[:8640].mean(0), values[:8640].std(0)
    z = ((values - mean) / std).astype(np.float32)
    L, H = a.lookback, a.horizon
    x_train, y_train = windows(z, np.arange(0, 8640 - L - H + 1), L, H)
    x_valid, y_valid = windows(z, np.arange(8640 - L, 11520 - L - H + 1), L, H)
    model = SegRnn(L, H, z.shape[1], a.segment, a.hidden, a.dropout)
    optim = torch.optim.Adam(model.parameters(), lr=a.lr)
    for epoch in range(1, a.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train))
        total, count = 0.0, 0
        for i in range(0, len(order), a.batch):
            batch = order[i : i + a.batch]
            loss = (model(x_train[batch]) - y_train[batch]).abs().mean()
            optim.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            optim.step()
            total += loss.item() * len(batch)
            count += len(batch)
        model.eval()
        valid, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(x_valid), 256):
                pred = model(x_valid[i : i + 256])
                valid += (pred - y_valid[i : i + 256]).abs().mean().item() * len(pred)
                n += len(pred)
        seconds = time.perf_counter() - start
        print(json.dumps({"epoch": epoch, "seconds": round(seconds, 3), "train_loss": total / count,
                          "valid_loss": valid / n, "threads": a.threads, "horizon": H}))


if __name__ == "__main__":
    main()
