"""Benchmark neurodecode's batched Riemannian estimators against pyRiemann on the same data, in the same run.

For each problem size (default: 288×22×1000 as BCI IV 2a, 1000×64×500, 200×128×1000; two classes) and each step
(covariances scm/lwf/oas, TangentSpace fit_transform, MDM fit + predict_proba, FgMDM fit + predict_proba) it prints the best of ``--repeats``
wall-clock times of pyRiemann on numpy, pyRiemann on torch float64 tensors (its array-API backend, ``SCIPY_ARRAY_API=1``)
and neurodecode, both speed-ups (> 1: neurodecode is faster), the largest relative difference from pyRiemann on
numpy, and the **floor**: the eigendecompositions the method needs (one per matrix per mean iteration, plus the
class distances from eigenvalues only) × the time of one batched ``torch.linalg.eigh`` (``eigvalsh`` for the
distances) of that size in one call, with neurodecode's time divided by it (below 1: the eigendecompositions ran on
several cores). The iteration counts of neurodecode's Riemannian means are printed beside them.

The last two lines are the minimum speed-ups over lwf, oas, tangent space and MDM at 1000×64×500:
``speedup_vs_pyriemann_min`` (against numpy) and ``speedup_vs_pyriemann_torch_min``; FgMDM (no torch path in
pyRiemann) is printed in its own line, ``speedup_fgmdm``.

Usage::

    python benchmarks/bench_riemann.py [--sizes 288x22x1000 1000x64x500 200x128x1000] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import os
import time
import warnings

os.environ.setdefault("SCIPY_ARRAY_API", "1")   # pyRiemann's torch backend (array API) needs it before scipy loads

import numpy as np  # noqa: E402


def best_time(fn, repeats: int):
    out, best = None, float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def rel(a, b) -> float:
    a, b = (np.asarray(v.cpu() if hasattr(v, "cpu") else v, dtype=np.float64) for v in (a, b))
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def problem(n_epochs: int, n_channels: int, n_times: int):
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(n_channels, n_channels)) + 2 * np.eye(n_channels)
    X = mix @ rng.normal(size=(n_epochs, n_channels, n_times))
    y = np.arange(n_epochs) % 2
    X[y == 1, 0] *= 1.5
    return X, y


def _py_mdm_torch(C, y):
    """pyRiemann 0.12's MDM on torch input: fit keeps the class means as numpy, so predict would mix namespaces;
    they are handed back as tensors before predicting."""
    import torch
    from pyriemann.classification import MDM as PyMDM

    m = PyMDM().fit(C, y)
    m.covmeans_ = torch.as_tensor(m.covmeans_)
    return m.predict_proba(C)


def run_size(shape, repeats: int, device: str | None) -> dict[str, tuple[float, float]]:
    import torch
    from pyriemann.classification import MDM as PyMDM
    from pyriemann.classification import FgMDM as PyFgMDM
    from pyriemann.estimation import Covariances as PyCov
    from pyriemann.tangentspace import TangentSpace as PyTS

    from neurodecode.encoders import spd
    from neurodecode.encoders.riemann import Covariances, FgMDM, MDM, TangentSpace

    X, y = problem(*shape)
    Xt = torch.as_tensor(X)
    print(f"\n{shape[0]} epochs × {shape[1]} channels × {shape[2]} samples")
    print(f"{'step':28s}{'pyR np s':>10s}{'pyR torch s':>12s}{'nd s':>8s}{'× np':>7s}{'× torch':>8s}"
          f"{'rel diff':>10s}{'floor s':>9s}{'nd/floor':>9s}  iterations")
    ratios = {}

    def row(name, ref_fn, ref_torch_fn, our_fn, floor=None, iters=""):
        t_ref, ref = best_time(ref_fn, repeats)
        t_rt = best_time(ref_torch_fn, repeats)[0] if ref_torch_fn else float("nan")   # None: no torch path
        t_our, our = best_time(our_fn, repeats)
        fl = f"{floor:9.3f}{t_our / floor:9.2f}" if floor else f"{'-':>9s}{'-':>9s}"
        print(f"{name:28s}{t_ref:10.3f}{t_rt:12.3f}{t_our:8.3f}{t_ref / t_our:7.2f}{t_rt / t_our:8.2f}"
              f"{rel(our, ref):10.1e}{fl}  {iters}")
        ratios[name] = (t_ref / t_our, t_rt / t_our)
        return ref

    for est in ("scm", "lwf", "oas"):
        C = row(f"covariances {est}", lambda est=est: PyCov(est).fit_transform(X),
                lambda est=est: PyCov(est).fit_transform(Xt),
                lambda est=est: Covariances(est, device=device).fit_transform(X))
    Ct = torch.as_tensor(C)
    t_eigh, _ = best_time(lambda: torch.linalg.eigh(Ct), repeats)
    t_eigvals, _ = best_time(lambda: torch.linalg.eigvalsh(Ct), repeats)
    info = {}
    spd.mean_riemann(Ct, info=info)
    row("TangentSpace fit_transform", lambda: PyTS().fit_transform(C), lambda: PyTS().fit_transform(Ct),
        lambda: TangentSpace(device=device).fit_transform(C), floor=info["n_iter"] * t_eigh,
        iters=f"mean: {info['n_iter']}")
    per_class = []
    for c in np.unique(y):
        i = {}
        spd.mean_riemann(Ct[torch.as_tensor(y == c)], info=i)
        per_class.append((i["n_iter"], float(np.mean(y == c))))
    n_classes = len(per_class)
    floor = sum(n * share for n, share in per_class) * t_eigh + n_classes * t_eigvals
    row("MDM fit + predict_proba", lambda: PyMDM().fit(C, y).predict_proba(C), lambda: _py_mdm_torch(Ct, y),
        lambda: MDM(device=device).fit(C, y).predict_proba(C), floor=floor,
        iters="class means: " + ", ".join(str(n) for n, _ in per_class) + f"; {n_classes} eigvalsh passes")
    # FgMDM: pyRiemann's LDA (an SVD least squares on n(n+1)/2 features) has no torch path in pyRiemann 0.12
    row("FgMDM fit + predict_proba", lambda: PyFgMDM().fit(C, y).predict_proba(C), None,
        lambda: FgMDM(device=device).fit(C, y).predict_proba(C))
    print(f"one batched eigh of {len(C)} × {C.shape[1]} × {C.shape[1]}: {t_eigh:.3f} s (eigvalsh {t_eigvals:.3f} s)")
    return ratios


NAME = "bench_riemann"


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--sizes", nargs="+", default=["288x22x1000", "1000x64x500", "200x128x1000"],
                   help="EPOCHSxCHANNELSxTIMES problems")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None, help="torch device for neurodecode (default cpu)")
    args = p.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)

    import pyriemann
    import torch

    import neurodecode
    from neurodecode.encoders.spd import _usable_cores

    print(f"neurodecode {neurodecode.__version__} vs pyRiemann {pyriemann.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} torch threads, {_usable_cores()} usable cores, device {args.device or 'cpu'}), "
          f"best of {args.repeats}")
    results = {s: run_size(tuple(int(v) for v in s.split("x")), args.repeats, args.device) for s in args.sizes}
    main_size = "1000x64x500" if "1000x64x500" in results else args.sizes[0]
    steps = ("covariances lwf", "covariances oas", "TangentSpace fit_transform", "MDM fit + predict_proba")
    print(f"\nat {main_size}, over {', '.join(steps)}:")
    print(f"speedup_vs_pyriemann_min: {min(results[main_size][s][0] for s in steps):.2f}")
    print(f"speedup_vs_pyriemann_torch_min: {min(results[main_size][s][1] for s in steps):.2f}")
    print(f"speedup_fgmdm: {results[main_size]['FgMDM fit + predict_proba'][0]:.2f}")
    print(f"wrote {write_results(args, NAME, {s: {step: list(v) for step, v in r.items()} for s, r in results.items()})}")


if __name__ == "__main__":
    main()
