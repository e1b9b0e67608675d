"""β-VAE representations of real EEG: Muse N170 (faces vs houses), subjects 1 and 2.

For each subject, 5-fold stratified cross-validation (seed 42):

* **denoising** — a β-VAE is trained on the training trials; each test trial's reconstruction and the raw trial
  are correlated (channels × times) with the training trials' average ERP of the trial's class; reported: the mean
  correlation of raw trials and of reconstructions;
* **linear probe** — the β-VAE's latent mean → standardisation → logistic regression, beside the plain recipes on
  the same folds: xDAWN ERP covariances + tangent space + LR (pyRiemann's ``XdawnCovariances(nfilter=2)``, the
  issue's reference 0.669) and OAS covariance + tangent space + LR.

    python scripts/eval_beta_vae.py [--data ../shared/data] [--epochs 30] [--beta 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STEPS = [{"step": "filter", "l_freq": 1.0, "h_freq": 30.0}]


def n170(root: Path, subject: str):
    """All N170 runs of one Muse subject (−0.1 to 0.8 s, 1–30 Hz, 100 µV rejection), in units of 10 µV."""
    from neurodecode.core.epochs import concatenate
    from neurodecode.loaders.meeg import load_epochs

    files = sorted((Path(root) / "muse_eeg" / "N170" / f"subject{subject}").glob("*/*.csv"))
    if not files:
        raise SystemExit(f"{root}/muse_eeg/N170: no CSV runs for subject {subject}")
    parts = [load_epochs(f, tmin=-0.1, tmax=0.8, labels={"1": "house", "2": "face"},
                         csv={"exclude": ["Right AUX"], "sfreq": 256.0}, steps=STEPS, reject={"eeg": 100e-6},
                         subject=f"N170-{subject}", session="1", run=str(k))[0] for k, f in enumerate(files)]
    ep = concatenate(parts)
    return ep.replace(data=ep.data * 1e5)


def _vae(max_epochs: int, beta: float, seed: int = 0):
    from neurodecode.encoders.deep import BetaVAEFeatures

    return BetaVAEFeatures(latent_dim=16, beta=beta, trainer={"max_epochs": max_epochs}, seed=seed)


def denoising(X: np.ndarray, y: np.ndarray, *, n_splits: int = 5, folds: int | None = None, max_epochs: int = 30,
              beta: float = 4.0) -> dict[str, float]:
    """Mean correlation with the training trials' class ERP of raw test trials and of their reconstructions."""
    from sklearn.model_selection import StratifiedKFold

    raw, rec = [], []
    splits = list(StratifiedKFold(n_splits, shuffle=True, random_state=42).split(X, y))[:folds]
    for tr, te in splits:
        out = _vae(max_epochs, beta).fit(X[tr]).reconstruct(X[te])
        for c in np.unique(y):
            erp = X[tr][y[tr] == c].mean(0).ravel()
            for i in np.flatnonzero(y[te] == c):
                raw.append(np.corrcoef(X[te][i].ravel(), erp)[0, 1])
                rec.append(np.corrcoef(out[i].ravel(), erp)[0, 1])
    return {"raw": float(np.mean(raw)), "reconstructed": float(np.mean(rec)), "n_trials": len(raw)}


def probes(X: np.ndarray, y: np.ndarray, max_epochs: int, beta: float) -> dict[str, np.ndarray]:
    from pyriemann.estimation import XdawnCovariances
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neurodecode.encoders.riemann import Covariances, TangentSpace

    cv = StratifiedKFold(5, shuffle=True, random_state=42)
    pipes = {"β-VAE latent (16-d) + LR": make_pipeline(_vae(max_epochs, beta), StandardScaler(),
                                                        LogisticRegression(max_iter=2000, C=0.1)),
             "xDAWN covariances + TS + LR": make_pipeline(XdawnCovariances(nfilter=2, estimator="oas"),
                                                          TangentSpace(), LogisticRegression(max_iter=1000)),
             "OAS covariance + TS + LR": make_pipeline(Covariances("oas"), TangentSpace(),
                                                       LogisticRegression(max_iter=1000))}
    return {k: cross_val_score(p, X, y, cv=cv) for k, p in pipes.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--beta", type=float, default=4.0)
    args = p.parse_args()
    for subject in ("1", "2"):
        t0 = time.perf_counter()
        ep = n170(args.data, subject)
        X, y = ep.data.astype(np.float64), ep.table["label"].to_numpy()
        d = denoising(X, y, max_epochs=args.epochs, beta=args.beta)
        print(f"N170 subject {subject} ({len(y)} epochs × {X.shape[1]} channels × {X.shape[2]} samples), β = "
              f"{args.beta}, {args.epochs} epochs: correlation with the class ERP of the training trials — raw test "
              f"trials {d['raw']:.3f}, β-VAE reconstructions {d['reconstructed']:.3f}")
        for name, v in probes(X, y, args.epochs, args.beta).items():
            print(f"  {name:30s} {v.mean():.3f} ± {v.std():.3f}")
        print(f"  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
