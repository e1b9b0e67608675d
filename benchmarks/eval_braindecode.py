"""braindecode's networks (EEGNet, ShallowFBCSPNet, ATCNet, EEGConformer) and the two brain modules beside the plain
Riemannian recipe, on the same folds of the 10 shared EEGMMIDB subjects.

Data: PhysioNet EEGMMIDB subjects S001-S010, imagery runs 4/8/12 (imagined left vs right fist, 45 trials each,
64 channels at 160 Hz), the motor-imagery preprocessing (7-30 Hz), ``--tmin``-``--tmax`` s after the cue. Scheme:
the library's ``evaluate`` within-session (5-fold stratified per subject, seed 42; ``--scheme cross_subject``: leave one
subject out), each network paired with
**OAS + tangent space + logistic regression** on the same folds.

Networks, through :class:`~neurodecode.encoders.deep.BraindecodeModel` (cross-entropy on channel-wise z-scored
epochs, AdamW, ``--epochs`` epochs, batch 32, lr 1e-3, seed ``--seed``): braindecode's EEGNet, ShallowFBCSPNet,
ATCNet, EEGConformer at their default sizes; and the brain module of Défossez et al. twice — braindecode's
``BrainModule`` (cc-by-nc-4.0, used here with ``noncommercial=True``; hidden 64, depth 6, no merger) and
neurodecode's own :class:`~neurodecode.encoders.deep.BrainModuleEncoder` (BSD-3; spatial attention over the sensor
positions, hidden 64, 3 blocks of 2 dilated convolutions), trained onto the one-hot class vectors (MSE) and read by
its largest output.

    python benchmarks/eval_braindecode.py [--epochs 40] [--tmin 0 --tmax 4] [--subjects 10]
        [--scheme within_session|cross_subject]
        [--models EEGNet ShallowFBCSPNet ATCNet EEGConformer BrainModule neurodecode-BrainModule]

The default window, 0-4 s (640 samples: the whole imagery period), is one ATCNet takes at its published kernel
sizes (it shrinks them below 616 samples). About 80 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

NAME = "eval_braindecode"
MODELS = ["EEGNet", "ShallowFBCSPNet", "ATCNet", "EEGConformer", "BrainModule", "neurodecode-BrainModule"]


class OneHotBrainModule(ClassifierMixin, BaseEstimator):
    """neurodecode's BrainModuleEncoder fitted onto one-hot class vectors (MSE), predicting the largest output."""

    reads_epochs = True

    def __init__(self, max_epochs: int = 40, seed: int = 0) -> None:
        self.max_epochs = max_epochs
        self.seed = seed

    def fit(self, X, y):
        from neurodecode.encoders.deep import BrainModuleEncoder

        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        target = np.eye(len(self.classes_), dtype=np.float32)[codes]
        self.encoder_ = BrainModuleEncoder(n_spatial=64, hidden=64, depth=3, out_channels=64, sfreq=float(X.sfreq),
                                           subject_layers=False, clip_weight=0.0, seed=self.seed,
                                           trainer={"max_epochs": self.max_epochs, "batch_size": 32, "lr": 1e-3})
        self.encoder_.fit(X, target)
        return self

    def predict(self, X):
        return self.classes_[self.encoder_.transform(X).argmax(1)]


def model(name: str, args):
    from neurodecode.encoders.deep import BraindecodeModel

    trainer = {"max_epochs": args.epochs, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.0}
    if name == "neurodecode-BrainModule":
        return OneHotBrainModule(args.epochs, args.seed)
    if name == "BrainModule":
        return BraindecodeModel("BrainModule", {"hidden_dim": 64, "depth": 6}, noncommercial=True, trainer=trainer,
                                seed=args.seed)
    return BraindecodeModel(name, trainer=trainer, seed=args.seed)


def main() -> None:
    from neurodecode import evaluate
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.evaluation.classification import recipe_classifier
    from neurodecode.loaders.public import eegmmidb

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--tmin", type=float, default=0.0)
    p.add_argument("--tmax", type=float, default=4.0)
    p.add_argument("--subjects", type=int, default=10, help="the first N of S001-S010")
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--scheme", default="within_session", choices=["within_session", "cross_subject"],
                   help="within-session 5-fold per subject, or leave one subject out (trained on 405 trials)")
    args = p.parse_args()
    subjects = [f"S{i:03d}" for i in range(1, args.subjects + 1)]
    epochs = eegmmidb(args.data, subjects, tmin=args.tmin, tmax=args.tmax - 1 / 160)
    print(f"EEGMMIDB {len(subjects)} subjects, imagery runs 4/8/12: {epochs.n_epochs} trials × {epochs.n_channels} "
          f"channels × {epochs.n_times} samples at {epochs.sfreq:g} Hz ({args.tmin}-{args.tmax} s); {args.scheme} "
          f"(seed 42); {args.epochs} epochs")
    results, baseline = {}, None
    for name in args.models:
        t0 = time.perf_counter()
        res = evaluate(epochs, model(name, args), args.scheme, n_splits=5, seed=42,
                       baseline=recipe_classifier("tangent_space", ["estimator=oas"]) if baseline is None else None,
                       name=name)
        if baseline is None:
            baseline = res.baseline
        acc = res.scores[res.scores["metric"] == "accuracy"]
        base = baseline.scores[baseline.scores["metric"] == "accuracy"]
        per_subject = acc.groupby("subject")["value"].mean()
        base_subject = base.groupby("subject")["value"].mean()
        diff = per_subject - base_subject
        results[name] = {"accuracy": float(acc["value"].mean()), "per_subject": per_subject.round(4).to_dict(),
                         "minus_baseline": float(diff.mean()), "subjects_better": int((diff > 0).sum()),
                         "seconds": round(time.perf_counter() - t0, 1)}
        print(f"  {name:26s} {acc['value'].mean():.3f}   TS+LR {base['value'].mean():.3f}   Δ {diff.mean():+.3f} "
              f"(better on {int((diff > 0).sum())}/{len(diff)} subjects)   {time.perf_counter() - t0:.0f} s",
              flush=True)
    results["OAS + tangent space + LR (plain)"] = {
        "accuracy": float(baseline.scores.loc[baseline.scores["metric"] == "accuracy", "value"].mean()),
        "per_subject": baseline.scores[baseline.scores["metric"] == "accuracy"].groupby("subject")["value"]
        .mean().round(4).to_dict()}
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
