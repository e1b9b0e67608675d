"""Benchmark the masked autoencoder on CPU: training throughput, peak memory, inference latency, parameters.

Two model sizes (``tiny_mae`` and ``mae_eeg`` of ``conf/encoder``) are trained on synthetic EEG-like epochs
(64 channels × 1 s at 200 Hz by default) for a few optimiser steps; each measurement runs in a fresh process so
that the peak resident memory (``ru_maxrss``) belongs to it alone. The named reference measured in the same run is
the cost floor: a bare ``torch.nn.TransformerEncoder`` of the same width and depth on the same number of visible
tokens (no tokenisation, masking, channel embeddings or decoder); ``ratio`` = neurodecode time / floor time.

Usage::

    python benchmarks/bench_encoders.py [--n-channels 64] [--seconds 1.0] [--batch-size 32] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CONFIGS = ("tiny_mae", "mae_eeg")


def worker(name: str, kind: str, n_channels: int, seconds: float, batch_size: int, steps: int) -> dict:
    import resource

    import numpy as np
    import torch

    from neurodecode import Channels
    from neurodecode import build
    from neurodecode.encoders.models.tokenizers import input_spec

    torch.manual_seed(0)
    model = build("encoder", name)
    enc = model.encoder
    sfreq = enc.patch.sfreq
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(n_channels, 3))
    spec = input_spec(Channels([f"E{i}" for i in range(n_channels)], "eeg", pos=0.09 * pos /
                               np.linalg.norm(pos, axis=1, keepdims=True)), sfreq)
    x = torch.randn(batch_size, n_channels, int(sfreq * seconds))
    n_tokens = n_channels * int(seconds / enc.patch.patch_seconds)
    n_visible = n_tokens - round(model.mask_ratio * n_tokens)
    out = {"config": name, "kind": kind, "parameters": sum(p.numel() for p in model.parameters()),
           "tokens": n_tokens}
    if kind == "floor":
        d = enc.embed_dim
        net = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(
            d, enc.config["heads"], int(d * enc.config["mlp_ratio"]), 0.0, batch_first=True, norm_first=True),
            enc.config["depth"], enable_nested_tensor=False)
        opt = torch.optim.AdamW(net.parameters())
        tokens = torch.randn(batch_size, n_visible, d)

        def step() -> None:
            opt.zero_grad()
            net(tokens).pow(2).mean().backward()
            opt.step()
    else:
        opt = torch.optim.AdamW(model.parameters())

        def step() -> None:
            opt.zero_grad()
            model(x, spec).backward()
            opt.step()

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        step()
    out["train_epochs_per_s"] = steps * batch_size / (time.perf_counter() - t)
    if kind == "neurodecode":
        enc.eval()
        one = x[:1]
        with torch.no_grad():
            enc(one, spec)
            t = time.perf_counter()
            for _ in range(20):
                enc(one, spec)
        out["latency_ms"] = (time.perf_counter() - t) / 20 * 1000
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


NAME = "bench_encoders"


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--n-channels", type=int, default=64)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--worker", nargs=2, metavar=("CONFIG", "KIND"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.n_channels, args.seconds, args.batch_size, args.steps)))
        return
    import torch

    print(f"CPU threads: {torch.get_num_threads()}; epochs of {args.n_channels} channels × {args.seconds} s; "
          f"batch {args.batch_size}; {args.steps} optimiser steps after one warm-up")
    print(f"{'config':10s} {'params':>9s} {'tokens':>6s} {'train ep/s':>10s} {'floor ep/s':>10s} {'ratio':>6s} "
          f"{'peak MB':>8s} {'latency ms (batch 1)':>21s}")
    results = {}
    for name in CONFIGS:
        res = {}
        for kind in ("neurodecode", "floor"):
            cmd = [sys.executable, __file__, "--worker", name, kind, "--n-channels", str(args.n_channels),
                   "--seconds", str(args.seconds), "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
            res[kind] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        nd, fl = res["neurodecode"], res["floor"]
        print(f"{name:10s} {nd['parameters']:9d} {nd['tokens']:6d} {nd['train_epochs_per_s']:10.1f} "
              f"{fl['train_epochs_per_s']:10.1f} {fl['train_epochs_per_s'] / nd['train_epochs_per_s']:6.2f} "
              f"{nd['peak_rss_mb']:8.0f} {nd['latency_ms']:21.1f}")
        results[name] = res
    print("ratio = time per epoch of the neurodecode MAE / of the bare transformer on its visible tokens")
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
