"""PyTorch's side of crates/model/benches/recurrent.rs: the same shapes, the same training step
(recurrent layers over the sequence, Linear head on the last hidden state, MSE, backward, Adam
step) and inference (forward + head, inference mode), median milliseconds. One JSON object per
line on stdout, plus the 1024^3 f32 matmul rate. CPU only; thread count from --threads.

    python scripts/bench/pytorch_rnn.py --threads 2 --shapes a,b --reps 5
"""

import argparse
import json
import statistics
import time

import torch

SHAPES = {
    "a": dict(b=64, t=96, h=64, layers=1),
    "b": dict(b=64, t=96, h=128, layers=2),
    "c": dict(b=256, t=336, h=256, layers=2),
    "c168": dict(b=256, t=168, h=256, layers=2),
    "c84": dict(b=256, t=84, h=256, layers=2),
}
F = 7


def timed(reps, fn):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return statistics.median(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shapes", default="a,b")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--device", default="cpu", help="cpu, cuda, or auto (cuda when available)")
    p.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True), as gatecast's kernels flush denormals",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    flushed = args.flush_denormal and torch.set_flush_denormal(True)
    torch.manual_seed(0)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def timed_sync(reps, fn):
        return timed(reps, lambda: (fn(), sync()))

    n = 1024
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    ms = timed_sync(5, lambda: torch.mm(a, b))
    print(json.dumps({"matmul_gflops": 2 * n**3 / (ms * 1e-3) / 1e9}), flush=True)

    for shape in args.shapes.split(","):
        s = SHAPES[shape.strip()]
        reps = min(args.reps, 3) if shape.startswith("c") else args.reps
        for cell, cls in [("rnn", torch.nn.RNN), ("gru", torch.nn.GRU), ("lstm", torch.nn.LSTM)]:
            if cell not in args.cells.split(","):
                continue
            rnn = cls(F, s["h"], num_layers=s["layers"], batch_first=True).to(dev)
            head = torch.nn.Linear(s["h"], 1).to(dev)
            params = list(rnn.parameters()) + list(head.parameters())
            opt = torch.optim.Adam(params, lr=1e-3)
            x = torch.randn(s["b"], s["t"], F, device=dev)
            y = torch.randn(s["b"], 1, device=dev)

            def train():
                opt.zero_grad(set_to_none=True)
                out, _ = rnn(x)
                loss = torch.nn.functional.mse_loss(head(out[:, -1]), y)
                loss.backward()
                opt.step()

            def infer():
                with torch.inference_mode():
                    out, _ = rnn(x)
                    head(out[:, -1])

            row = {
                "shape": shape,
                "cell": cell,
                "threads": (
                    f"{args.threads} threads" + (", flush denormal" if flushed else "")
                    if dev == "cpu"
                    else dev
                ),
                "version": torch.__version__.split("+")[0],
                "train_ms": timed_sync(reps, train),
                "infer_ms": timed_sync(reps, infer),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
