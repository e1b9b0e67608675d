"""Evidence for the shared encoders on real EEG and on a synthetic multi-subject set.

1. **Masked-autoencoder pretraining on real EEG** (Muse N170 subjects 1 and 2 and Muse P300 subject 1: TP9, AF7, AF8,
   TP10 at 256 Hz, 1-30 Hz, -0.1..0.8 s): the held-out masked-reconstruction error (same seeded masks) before
   training (epoch 0) and after.
2. **Faces vs houses, Muse N170 subject 1, 5-fold** (stratified, seed 42): linear probe (frozen pooled latents →
   logistic regression) of the pretrained encoder, and fine-tuning of it, beside OAS covariance + tangent space +
   logistic regression.
3. **adapt() on a synthetic multi-subject set** with a planted shared latent (see
   :func:`neurodecode.models.subjects.planted_subjects`): a new subject adapted with 10 % of its trials, against a
   model trained with all of them.

Usage::

    python benchmarks/eval_encoders.py [--epochs 30] [--config mae_eeg] [--device cpu] [--skip-finetune]
"""

from __future__ import annotations

import os
import time

import numpy as np

NAME = "eval_encoders"
STEPS = [{"step": "montage", "name": "standard_1005"}, {"step": "notch", "freqs": [50.0]},
         {"step": "filter", "l_freq": 1.0, "h_freq": 30.0}]


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.public import muse

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--config", default="mae_eeg")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-finetune", action="store_true")
    args = p.parse_args()

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from neurodecode import build, evaluate
    from neurodecode.core.epochs import concatenate
    from neurodecode.encoders import EncoderFeatures, FineTunedEncoder, pretrain
    from neurodecode.encoders.riemann import Covariances, TangentSpace

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    s1 = muse(args.data, "N170", "1", steps=STEPS, scale=1e5)             # units of 10 µV: inputs of order one
    pool = [s1, muse(args.data, "N170", "2", steps=STEPS, scale=1e5), muse(args.data, "P300", "1", steps=STEPS,
                                                                         scale=1e5)]
    unlabeled = concatenate([ep.replace(table=ep.table.assign(label=None)) for ep in pool])
    print(f"pretraining set: {len(unlabeled)} epochs × {unlabeled.n_channels} channels × {unlabeled.n_times} samples "
          f"at {unlabeled.sfreq} Hz (loaded in {time.perf_counter() - t0:.0f} s)")
    results: dict = {}

    # 1. MAE pretraining -----------------------------------------------------------------------------------------
    model = build("encoder", args.config)
    n_params = sum(p.numel() for p in model.parameters())
    t0 = time.perf_counter()
    res = pretrain(unlabeled, model, trainer={"max_epochs": args.epochs, "batch_size": args.batch_size, "lr": 1e-3,
                                              "warmup_steps": 20, "device": args.device, "progress": False},
                   val_fraction=0.1, seed=args.seed)
    results["pretraining"] = {"error_before": res.val_error_before, "error_after": res.val_error_after}
    print(f"MAE ({args.config}, {n_params / 1e6:.2f} M parameters), {args.epochs} epochs in "
          f"{time.perf_counter() - t0:.0f} s: held-out masked-reconstruction error {res.val_error_before:.3f} (epoch 0)"
          f" → {res.val_error_after:.3f} ({res.val_error_after / res.val_error_before:.0%} of epoch 0); "
          f"train loss by epoch: {[round(h['train_loss'], 3) for h in res.history[:: max(1, args.epochs // 6)]]}")

    # 2. N170 faces vs houses ------------------------------------------------------------------------------------
    y = s1.table["label"].to_numpy()
    pipes = {}
    pipes["OAS covariance + tangent space + LR"] = make_pipeline(Covariances("oas"), TangentSpace(),
                                                                 LogisticRegression(max_iter=1000))
    from pyriemann.estimation import XdawnCovariances

    pipes["xDAWN ERP covariance + tangent space + LR"] = make_pipeline(
        XdawnCovariances(nfilter=2, estimator="oas"), TangentSpace(), LogisticRegression(max_iter=1000))
    pipes["samples (64 Hz) + LR"] = make_pipeline(FunctionTransformer(_downsampled), StandardScaler(),
                                                  LogisticRegression(max_iter=2000, C=0.01))
    for pool in ("mean", "channels"):
        pipes[f"MAE linear probe, pool={pool} (frozen) + LR"] = make_pipeline(
            EncoderFeatures.for_epochs(res.model, s1, pool=pool), StandardScaler(),
            LogisticRegression(max_iter=2000, C=0.01))
    torch.manual_seed(args.seed)
    untrained = build("encoder", args.config)
    pipes["untrained encoder, pool=channels (control)"] = make_pipeline(
        EncoderFeatures.for_epochs(untrained, s1, pool="channels"), StandardScaler(),
        LogisticRegression(max_iter=2000, C=0.01))
    if not args.skip_finetune:
        pipes["MAE fine-tuned, pool=channels (10 epochs)"] = FineTunedEncoder(
            res.model, s1.channels, s1.sfreq, pool="channels", trainer={"max_epochs": 10, "batch_size": 32,
                                                                         "lr": 3e-4}, device=args.device,
            seed=args.seed)
    rows = {}
    for name, pipe in pipes.items():               # the library's folds: 5-fold stratified, seed 42
        sc = evaluate(s1, pipe, n_splits=5, seed=42).scores
        rows[name] = sc.loc[sc["metric"] == "accuracy", "value"].to_numpy()
    print(f"Muse N170 subject 1, faces vs houses ({len(y)} epochs; {dict(zip(*np.unique(y, return_counts=True)))}), "
          "5-fold accuracy:")
    for name, v in rows.items():
        print(f"  {name:50s} {v.mean():.3f} ± {v.std():.3f}")
    results["n170_accuracy"] = {name: v.tolist() for name, v in rows.items()}

    # 3. adapt() on planted subjects -----------------------------------------------------------------------------
    from neurodecode.alignment.adaptation import adaptation_benchmark

    for method in ("ridge", "reset"):
        r = adaptation_benchmark(method=method, seed=args.seed)
        results[f"adapt_{method}"] = r
        print(f"adapt(method={method!r}) with {r['fraction']:.0%} of the new subject's trials: test R² "
              f"{r['adapted']:.3f} vs {r['full']:.3f} trained on all of them ({r['adapted'] / r['full']:.1%}); "
              f"from scratch on the same 10 %: {r['scratch']:.3f}; ridge from scratch (the plain baseline): "
              f"{r['ridge_scratch']:.3f}")

    print(f"wrote {write_results(args, NAME, results)}")


def _downsampled(a: np.ndarray) -> np.ndarray:
    """Every 4th sample (64 Hz), flattened: the raw-samples control."""
    return a[:, :, ::4].reshape(len(a), -1)


if __name__ == "__main__":
    main()
