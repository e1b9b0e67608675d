"""Benchmark neurodecode's batched Riemannian estimators against pyRiemann on the same data, in the same run.

Default problem (as in the design notes): 1000 epochs × 64 channels × 500 samples, two classes. For each step it
prints the best of ``--repeats`` wall-clock times, the speed-up (pyRiemann time / neurodecode time; > 1 means
neurodecode is faster) and the largest relative difference of the results.

Usage::

    python scripts/bench_riemann.py [--n-epochs 1000] [--n-channels 64] [--n-times 500] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def best_time(fn, repeats: int):
    out, best = None, float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-epochs", type=int, default=1000)
    p.add_argument("--n-channels", type=int, default=64)
    p.add_argument("--n-times", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None, help="torch device for neurodecode (default cpu)")
    args = p.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)

    import pyriemann
    import torch
    from pyriemann.classification import MDM as PyMDM
    from pyriemann.estimation import Covariances as PyCov
    from pyriemann.tangentspace import TangentSpace as PyTS

    import neurodecode
    from neurodecode.encoders.riemann import Covariances, MDM, TangentSpace

    rng = np.random.default_rng(0)
    mix = rng.normal(size=(args.n_channels, args.n_channels)) + 2 * np.eye(args.n_channels)
    X = mix @ rng.normal(size=(args.n_epochs, args.n_channels, args.n_times))
    y = np.arange(args.n_epochs) % 2
    X[y == 1, 0] *= 1.5
    print(f"neurodecode {neurodecode.__version__} vs pyRiemann {pyriemann.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads, device {args.device or 'cpu'}): {args.n_epochs} × "
          f"{args.n_channels} × {args.n_times}, best of {args.repeats}")
    print(f"{'step':32s}{'pyRiemann s':>13s}{'neurodecode s':>15s}{'speed-up':>10s}{'max rel diff':>14s}")

    def row(name, ref_fn, our_fn):
        t_ref, ref = best_time(ref_fn, args.repeats)
        t_our, our = best_time(our_fn, args.repeats)
        print(f"{name:32s}{t_ref:13.3f}{t_our:15.3f}{t_ref / t_our:10.2f}{rel(our, ref):14.1e}")
        return ref

    for est in ("scm", "lwf", "oas"):
        C = row(f"covariances {est}", lambda est=est: PyCov(est).fit_transform(X),
                lambda est=est: Covariances(est, device=args.device).fit_transform(X))
    row("TangentSpace fit_transform", lambda: PyTS().fit_transform(C),
        lambda: TangentSpace(device=args.device).fit_transform(C))
    row("MDM fit + predict_proba", lambda: PyMDM().fit(C, y).predict_proba(C),
        lambda: MDM(device=args.device).fit(C, y).predict_proba(C))


if __name__ == "__main__":
    main()
