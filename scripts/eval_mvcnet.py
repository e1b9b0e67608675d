"""MVCNet on real motor imagery, beside the plain Riemannian recipes on the same folds.

The built-in example's epochs (PhysioNet EEGMMIDB subject 1, runs 4/8/12, imagined left vs right fist, 64 channels,
7-30 Hz, 1-2 s after the cue: 45 trials) and its 5-fold stratified CV (seed 42):

* OAS + tangent space + logistic regression (the example's plain reference, 0.733);
* augmented covariance (order and lag by Takens' criteria) + tangent space + LR (the example's ACM recipe, 0.778);
* MVCNet (``conf/encoder/mvcnet``: CNN + Transformer branches, time/frequency/spatial views, cross-view and
  cross-model contrast, ``--epochs`` of AdamW), and the same network trained on the classification loss only
  (``lambda_cv = lambda_cm = 0``) to show what the contrastive terms add;
* MVCNet's training-set accuracy, which says whether it fits what it cannot generalise.

About 3 minutes on 2 CPU cores.

    python scripts/eval_mvcnet.py [--epochs 60]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=60)
    args = p.parse_args()
    import sys

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline

    from neurodecode import build
    from neurodecode.encoders.features import make_recipe

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from eval_foundation import load_example

    t0 = time.perf_counter()
    ep = load_example()
    X, y = ep.data.astype(np.float64), ep.table["label"].to_numpy()
    folds = list(StratifiedKFold(5, shuffle=True, random_state=42).split(X, y))
    pipelines = {
        "OAS + tangent space + LR (plain)": lambda: make_pipeline(make_recipe("tangent_space", estimator="oas"),
                                                                  LogisticRegression()),
        "augmented cov. + TS + LR (ACM)": lambda: make_pipeline(make_recipe(
            "augmented_tangent_space", estimator="oas", order="auto", lag="auto"), LogisticRegression()),
        "MVCNet": lambda: build("encoder", "mvcnet", [f"trainer.max_epochs={args.epochs}"]),
        "MVCNet, classification loss only": lambda: build("encoder", "mvcnet", [
            f"trainer.max_epochs={args.epochs}", "lambda_cv=0", "lambda_cm=0"]),
    }
    rows = {}
    for name, make in pipelines.items():
        test, train = [], []
        for tr, te in folds:
            model = make().fit(X[tr], y[tr])
            test.append(float((model.predict(X[te]) == y[te]).mean()))
            train.append(float((model.predict(X[tr]) == y[tr]).mean()))
        rows[name] = (test, train)
    print(f"EEGMMIDB S001 imagery: {len(y)} trials × {X.shape[1]} channels × {X.shape[2]} samples, 5-fold stratified "
          f"CV (seed 42); {time.perf_counter() - t0:.0f} s")
    for name, (test, train) in rows.items():
        print(f"  {name:34s} {np.mean(test):.3f} ± {np.std(test):.3f}  (training folds {np.mean(train):.3f})  "
              f"folds {np.round(test, 3).tolist()}")
    print("  chance 0.511 (the larger class)")


if __name__ == "__main__":
    main()
