"""LaBraM and CBraMod architectures on real EEG, beside the plain Riemannian recipe on the same folds.

The built-in example's epochs (PhysioNet EEGMMIDB subject 1, runs 4/8/12, imagined left vs right fist, 64 channels,
7-30 Hz, 1-2 s after the cue: 45 trials) and its 5-fold stratified CV (seed 42). Per fold:

* **OAS + tangent space + logistic regression** (the plain reference, 0.733 in the example);
* **tiny LaBraM** and **tiny CBraMod** (``conf/encoder/tiny_labram`` / ``tiny_cbramod``: the published architectures
  at small sizes, random initialisation — their released weights cannot be downloaded here), each fine-tuned end
  to end with :class:`~neurodecode.encoders.FineTunedEncoder` (``--epochs``, AdamW, seed 0) and as a linear probe
  (frozen pooled tokens → logistic regression).

With real checkpoints, pass ``--labram labram-base.pth`` / ``--cbramod pretrained_weights.pth`` to use the published
models (base sizes) instead. About 1-2 minutes on 2 CPU cores for the tiny variants.

    python scripts/eval_foundation.py [--epochs 40] [--labram PATH] [--cbramod PATH]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def load_example():
    from neurodecode.cli.example import epochs_from_run, load_config, locate_runs
    from neurodecode.core.epochs import concatenate

    cfg = load_config()
    return concatenate([epochs_from_run(p, r, cfg) for r, p in locate_runs(cfg).items()])


def encoders(args):
    from neurodecode import build
    from neurodecode.encoders.models.cbramod import CBraMod
    from neurodecode.encoders.models.labram import LaBraM

    out = {}
    out["LaBraM"] = (LaBraM.from_published(args.labram) if args.labram else build("encoder", "tiny_labram"))
    out["CBraMod"] = (CBraMod.from_published(args.cbramod) if args.cbramod else build("encoder", "tiny_cbramod"))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--labram", default=None, help="a published LaBraM checkpoint (base sizes)")
    p.add_argument("--cbramod", default=None, help="the published CBraMod weights")
    args = p.parse_args()
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neurodecode.encoders.features import make_recipe
    from neurodecode.encoders.pretraining import EncoderFeatures, FineTunedEncoder

    t0 = time.perf_counter()
    ep = load_example()
    X, y = ep.data.astype(np.float32), ep.table["label"].to_numpy()
    folds = list(StratifiedKFold(5, shuffle=True, random_state=42).split(X, y))
    trainer = {"max_epochs": args.epochs, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.01, "seed": 0,
               "progress": False}
    scores: dict[str, list[float]] = {}

    def record(name, fit_predict):
        accs = []
        for train, test in folds:
            torch.manual_seed(0)
            accs.append(float((fit_predict(train, test) == y[test]).mean()))
        scores[name] = accs

    tangent = lambda: make_pipeline(make_recipe("tangent_space", estimator="oas"), LogisticRegression())  # noqa: E731
    record("OAS + tangent space + LR (plain)", lambda tr, te: tangent().fit(X[tr], y[tr]).predict(X[te]))
    for name, model in encoders(args).items():
        record(f"{name} fine-tuned", lambda tr, te, m=model: FineTunedEncoder(
            m, ep.channels, ep.sfreq, trainer=trainer).fit(X[tr], y[tr]).predict(X[te]))
        feats = EncoderFeatures(model, ep.channels, ep.sfreq).fit().transform(X)
        record(f"{name} linear probe (frozen)", lambda tr, te, F=feats: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(F[tr], y[tr]).predict(F[te]))
    print(f"EEGMMIDB S001 imagery: {len(y)} trials × {X.shape[1]} channels × {X.shape[2]} samples at {ep.sfreq:g} Hz; "
          f"5-fold stratified CV (seed 42); {'published' if args.labram or args.cbramod else 'tiny, random-init'} "
          f"foundation architectures; {time.perf_counter() - t0:.0f} s")
    for name, accs in scores.items():
        print(f"  {name:36s} {np.mean(accs):.3f} ± {np.std(accs):.3f}   folds {np.round(accs, 3).tolist()}")
    print("  chance 0.511 (the larger class)")


if __name__ == "__main__":
    main()
