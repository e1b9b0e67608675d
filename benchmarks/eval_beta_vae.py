"""β-VAE representations of real EEG: Muse N170 (faces vs houses), subjects 1 and 2.

For each subject, 5-fold stratified cross-validation (seed 42):

* **denoising** — a β-VAE is trained on the training trials; each test trial's reconstruction and the raw trial
  are correlated (channels × times) with the training trials' average ERP of the trial's class; reported: the mean
  correlation of raw trials and of reconstructions;
* **linear probe** — the β-VAE's latent mean → standardisation → logistic regression, beside the plain recipes on
  the same folds: xDAWN ERP covariances + tangent space + LR (pyRiemann's ``XdawnCovariances(nfilter=2)``, the
  issue's reference 0.669) and OAS covariance + tangent space + LR.

    python benchmarks/eval_beta_vae.py [--data ../shared/data] [--epochs 30] [--beta 4] [--out results/eval_beta_vae]
"""

from __future__ import annotations

import time

import numpy as np

NAME = "eval_beta_vae"


def _vae(max_epochs: int, beta: float, seed: int = 0):
    from neurodecode.encoders.deep import BetaVAEFeatures

    return BetaVAEFeatures(latent_dim=16, beta=beta, trainer={"max_epochs": max_epochs}, seed=seed)


def denoising(ep, *, max_epochs: int, beta: float, seed: int) -> dict[str, float]:
    """Mean correlation with the training trials' class ERP (:func:`neurodecode.core.scores.erp_correlations`) of
    the raw test trials and of their β-VAE reconstructions, over the library's folds (5-fold stratified, seed 42)."""
    from sklearn.model_selection import StratifiedKFold

    from neurodecode.core.scores import erp_correlations

    X, y = ep.data.astype(np.float64), ep.table["label"].to_numpy()
    raw, rec = [], []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=42).split(X, y):
        out = _vae(max_epochs, beta, seed).fit(X[tr]).reconstruct(X[te])
        raw.append(erp_correlations(X[te], y[te], X[tr], y[tr]))
        rec.append(erp_correlations(out, y[te], X[tr], y[tr]))
    return {"raw": float(np.concatenate(raw).mean()), "reconstructed": float(np.concatenate(rec).mean()),
            "n_trials": int(sum(len(r) for r in raw))}


def probes(ep, max_epochs: int, beta: float, seed: int) -> dict[str, list[float]]:
    """Per-fold accuracy of the β-VAE latent probe beside xDAWN and OAS tangent space (the library's evaluate)."""
    from pyriemann.estimation import XdawnCovariances
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neurodecode import evaluate
    from neurodecode.encoders.riemann import Covariances, TangentSpace

    pipes = {"β-VAE latent (16-d) + LR": make_pipeline(_vae(max_epochs, beta, seed), StandardScaler(),
                                                        LogisticRegression(max_iter=2000, C=0.1)),
             "xDAWN covariances + TS + LR": make_pipeline(XdawnCovariances(nfilter=2, estimator="oas"),
                                                          TangentSpace(), LogisticRegression(max_iter=1000)),
             "OAS covariance + TS + LR": make_pipeline(Covariances("oas"), TangentSpace(),
                                                       LogisticRegression(max_iter=1000))}
    out = {}
    for name, pipe in pipes.items():
        sc = evaluate(ep, pipe, n_splits=5, seed=42).scores
        out[name] = sc.loc[sc["metric"] == "accuracy", "value"].tolist()
    return out


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.public import muse

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--beta", type=float, default=4.0)
    args = p.parse_args()
    results = {}
    for subject in ("1", "2"):
        t0 = time.perf_counter()
        ep = muse(args.data, "N170", subject, scale=1e5)          # in units of 10 µV
        d = denoising(ep, max_epochs=args.epochs, beta=args.beta, seed=args.seed)
        print(f"N170 subject {subject} ({ep.n_epochs} epochs × {ep.n_channels} channels × {ep.n_times} samples), "
              f"β = {args.beta}, {args.epochs} epochs: correlation with the class ERP of the training trials — raw "
              f"test trials {d['raw']:.3f}, β-VAE reconstructions {d['reconstructed']:.3f}")
        folds = probes(ep, args.epochs, args.beta, args.seed)
        for name, v in folds.items():
            print(f"  {name:30s} {np.mean(v):.3f} ± {np.std(v):.3f}")
        print(f"  ({time.perf_counter() - t0:.0f} s)")
        results[f"N170-{subject}"] = {"denoising": d, "accuracy": folds}
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
