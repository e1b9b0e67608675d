"""GLMsingle-style single-trial options of ``trial_responses`` on the real Haxby 2001 OpenFMRI layout.

Subject 1's 12 runs (one axial slice, 530 masked voxels, TR 2.5 s, 8 category blocks of 22.5 s per run) → one beta
per block by LSA with the canonical HRF, with a per-voxel HRF from a library, with fractional ridge, and with both.
Each is scored by leave-one-run-out category decoding of the 96 block betas (logistic regression on z-scored
voxels; chance 0.125) and by the split-half reliability of the category patterns (odd vs even runs: the mean
correlation of a category's two patterns minus that of different categories). Also times our vectorised
``frac_ridge`` against the ``fracridge`` package (when installed) on one run's design and all voxels.

    python benchmarks/eval_glmsingle.py [--data ../shared/data] [--out results/eval_glmsingle]
"""

from __future__ import annotations

import time

import numpy as np

NAME = "eval_glmsingle"


def scores(ep) -> dict[str, float]:
    """Leave-one-run-out 8-way accuracy (the library's ``cross_session`` scheme over runs) and split-half
    reliability of the category patterns."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neurodecode import evaluate
    from neurodecode.encoders.voxels import VoxelFeatures

    clf = make_pipeline(VoxelFeatures(standardize=False), StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    by_run = ep.replace(table=ep.table.assign(session=ep.table["run"].astype(str)))       # a run = a held-out unit
    sc = evaluate(by_run, clf, "cross_session").scores
    X, y, runs = ep.data[:, :, 0], ep.table["label"].to_numpy(), ep.table["run"].astype(int).to_numpy()
    cats = sorted(set(y))
    halves = [np.stack([X[(y == c) & (runs % 2 == h)].mean(0) for c in cats]) for h in (0, 1)]
    R = np.corrcoef(halves[0], halves[1])[: len(cats), len(cats):]
    return {"accuracy": float(sc.loc[sc["metric"] == "accuracy", "value"].mean()),
            "reliability": float(np.diag(R).mean() - R[~np.eye(len(cats), dtype=bool)].mean())}


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.glm import frac_ridge, trial_responses
    from neurodecode.loaders.public import haxby_runs

    args = benchmark_parser(__doc__.splitlines()[0], NAME).parse_args()
    runs, mask = haxby_runs(args.data)
    fractions = list(np.linspace(0.05, 1.0, 20))
    options = {"LSA, canonical HRF (glover)": {},
               "LSA, HRF library (delays 4-9 s)": {"hrf_library": [4, 5, 6, 7, 8, 9]},
               "LSA + fracridge": {"fracridge": fractions},
               "LSA, HRF library + fracridge": {"hrf_library": [4, 5, 6, 7, 8, 9], "fracridge": fractions}}
    print(f"Haxby 2001 subject 1, OpenFMRI layout: {len(runs)} runs × 8 blocks, one slice (530 voxels); "
          "leave-one-run-out 8-way accuracy (chance 0.125) and split-half category-pattern reliability")
    results = {}
    for name, kw in options.items():
        t0 = time.perf_counter()
        ep = trial_responses(runs, mask, method="lsa", **kw)
        sc = scores(ep)
        extra = ""
        if "fracridge" in kw:
            extra = f"; median fraction {np.median(ep.provenance[-1]['fraction_chosen']):.2f}"
        print(f"  {name:34s} accuracy {sc['accuracy']:.3f}  reliability {sc['reliability']:.3f}  "
              f"({time.perf_counter() - t0:.1f} s{extra})")
        results[name] = sc
    rng = np.random.default_rng(args.seed)
    X, Y = rng.normal(size=(121, 8)), rng.normal(size=(121, 20000))
    t0 = time.perf_counter()
    frac_ridge(X, Y, fractions)
    ours = time.perf_counter() - t0
    results["frac_ridge_seconds"] = ours
    try:
        from fracridge import fracridge
    except ImportError:
        print(f"frac_ridge on 121 volumes × 8 regressors × 20,000 voxels, 20 fractions: {ours:.3f} s "
              "(pip install fracridge to compare with the package)")
    else:
        t0 = time.perf_counter()
        fracridge(X, Y, fractions, jit=False)
        theirs = results["fracridge_package_seconds"] = time.perf_counter() - t0
        print(f"frac_ridge on 121 volumes × 8 regressors × 20,000 voxels, 20 fractions: {ours:.3f} s vs the "
              f"fracridge package {theirs:.3f} s (jit=False): {theirs / ours:.1f}× faster")
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
