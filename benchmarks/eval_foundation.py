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

    python benchmarks/eval_foundation.py [--epochs 40] [--labram PATH] [--cbramod PATH] [--data ../shared/data]
"""

from __future__ import annotations

import time

import numpy as np

NAME = "eval_foundation"


def encoders(args):
    from neurodecode import build
    from neurodecode.encoders.models.cbramod import CBraMod
    from neurodecode.encoders.models.labram import LaBraM

    out = {}
    out["LaBraM"] = (LaBraM.from_published(args.labram) if args.labram else build("encoder", "tiny_labram"))
    out["CBraMod"] = (CBraMod.from_published(args.cbramod) if args.cbramod else build("encoder", "tiny_cbramod"))
    return out


def main() -> None:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neurodecode import evaluate
    from neurodecode.encoders.features import make_recipe
    from neurodecode.encoders.pretraining import EncoderFeatures, FineTunedEncoder
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.public import eegmmidb

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--labram", default=None, help="a published LaBraM checkpoint (base sizes)")
    p.add_argument("--cbramod", default=None, help="the published CBraMod weights")
    args = p.parse_args()
    t0 = time.perf_counter()
    ep = eegmmidb(args.data)
    trainer = {"max_epochs": args.epochs, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.01}
    pipelines = {"OAS + tangent space + LR (plain)": make_pipeline(make_recipe("tangent_space", estimator="oas"),
                                                                   LogisticRegression())}
    for name, model in encoders(args).items():
        torch.manual_seed(args.seed)
        pipelines[f"{name} fine-tuned"] = FineTunedEncoder(model, ep.channels, ep.sfreq, trainer=trainer,
                                                           seed=args.seed)
        pipelines[f"{name} linear probe (frozen)"] = make_pipeline(
            EncoderFeatures(model, ep.channels, ep.sfreq), StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    results = {}
    for name, pipe in pipelines.items():      # the library's folds: 5-fold stratified, seed 42, as the example
        sc = evaluate(ep, pipe, n_splits=5, seed=42).scores
        results[name] = sc.loc[sc["metric"] == "accuracy", "value"].tolist()
    print(f"EEGMMIDB S001 imagery: {ep.n_epochs} trials × {ep.n_channels} channels × {ep.n_times} samples at "
          f"{ep.sfreq:g} Hz; 5-fold stratified CV (seed 42); "
          f"{'published' if args.labram or args.cbramod else 'tiny, random-init'} foundation architectures; "
          f"{time.perf_counter() - t0:.0f} s")
    for name, accs in results.items():
        print(f"  {name:36s} {np.mean(accs):.3f} ± {np.std(accs):.3f}   folds {np.round(accs, 3).tolist()}")
    print("  chance 0.511 (the larger class)")
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
