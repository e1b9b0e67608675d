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

    python scripts/eval_encoders.py [--epochs 30] [--config mae_eeg] [--device cpu] [--skip-finetune]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(os.environ.get("NEURODECODE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
STEPS = [{"step": "montage", "name": "standard_1005"}, {"step": "notch", "freqs": [50.0]},
         {"step": "filter", "l_freq": 1.0, "h_freq": 30.0}]


def load_muse(root: Path, paradigm: str, subject: str, labels: dict[str, str]):
    """All runs of one Muse subject as one EpochSet (µV-scale rejection at 100 µV, as the data README)."""
    from neurodecode.core.epochs import concatenate
    from neurodecode.loaders.meeg import load_epochs

    files = sorted((root / "muse_eeg" / paradigm / f"subject{subject}").glob("*/*.csv"))
    if not files:
        raise SystemExit(f"{root / 'muse_eeg' / paradigm}: no CSV runs for subject {subject}")
    parts = [load_epochs(f, tmin=-0.1, tmax=0.8, labels=labels, csv={"exclude": ["Right AUX"], "sfreq": 256.0},
                         steps=STEPS, reject={"eeg": 100e-6}, subject=f"{paradigm}-{subject}", session="1",
                         run=str(k))[0] for k, f in enumerate(files)]
    return concatenate(parts)


def scale(ep, factor: float = 1e5):
    """Volts → units of 10 µV, so that the inputs are of order one."""
    return ep.replace(data=ep.data * factor)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--config", default="mae_eeg")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-finetune", action="store_true")
    args = p.parse_args()

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from neurodecode import build
    from neurodecode.encoders import EncoderFeatures, FineTunedEncoder, pretrain
    from neurodecode.core.epochs import concatenate
    from neurodecode.encoders.riemann import Covariances, TangentSpace

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    n170 = {"1": "house", "2": "face"}
    t0 = time.perf_counter()
    s1 = scale(load_muse(args.data, "N170", "1", n170))
    pool = [s1, scale(load_muse(args.data, "N170", "2", n170)),
            scale(load_muse(args.data, "P300", "1", {"1": "nontarget", "2": "target"}))]
    unlabeled = concatenate([ep.replace(table=ep.table.assign(label=None)) for ep in pool])
    print(f"pretraining set: {len(unlabeled)} epochs × {unlabeled.n_channels} channels × {unlabeled.n_times} samples "
          f"at {unlabeled.sfreq} Hz (loaded in {time.perf_counter() - t0:.0f} s)")

    # 1. MAE pretraining -----------------------------------------------------------------------------------------
    model = build("encoder", args.config)
    n_params = sum(p.numel() for p in model.parameters())
    t0 = time.perf_counter()
    res = pretrain(unlabeled, model, trainer={"max_epochs": args.epochs, "batch_size": args.batch_size, "lr": 1e-3,
                                              "warmup_steps": 20, "device": args.device, "progress": False},
                   val_fraction=0.1, seed=0)
    print(f"MAE ({args.config}, {n_params / 1e6:.2f} M parameters), {args.epochs} epochs in "
          f"{time.perf_counter() - t0:.0f} s: held-out masked-reconstruction error {res.val_error_before:.3f} (epoch 0)"
          f" → {res.val_error_after:.3f} ({res.val_error_after / res.val_error_before:.0%} of epoch 0); "
          f"train loss by epoch: {[round(h['train_loss'], 3) for h in res.history[:: max(1, args.epochs // 6)]]}")

    # 2. N170 faces vs houses ------------------------------------------------------------------------------------
    X, y = s1.data.astype(np.float64), s1.table["label"].to_numpy()
    cv = StratifiedKFold(5, shuffle=True, random_state=42)
    rows = {}
    ts = make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression(max_iter=1000))
    rows["OAS covariance + tangent space + LR"] = cross_val_score(ts, X, y, cv=cv)
    from pyriemann.estimation import XdawnCovariances

    erp_ts = make_pipeline(XdawnCovariances(nfilter=2, estimator="oas"), TangentSpace(),
                           LogisticRegression(max_iter=1000))
    rows["xDAWN ERP covariance + tangent space + LR"] = cross_val_score(erp_ts, X, y, cv=cv)
    raw = make_pipeline(FunctionTransformer(lambda a: a[:, :, ::4].reshape(len(a), -1)), StandardScaler(),
                        LogisticRegression(max_iter=2000, C=0.01))
    rows["samples (64 Hz) + LR"] = cross_val_score(raw, X, y, cv=cv)
    for pool in ("mean", "channels"):
        probe = make_pipeline(EncoderFeatures.for_epochs(res.model, s1, pool=pool), StandardScaler(),
                              LogisticRegression(max_iter=2000, C=0.01))
        rows[f"MAE linear probe, pool={pool} (frozen) + LR"] = cross_val_score(probe, X, y, cv=cv)
    torch.manual_seed(0)
    untrained = build("encoder", args.config)
    random_probe = make_pipeline(EncoderFeatures.for_epochs(untrained, s1, pool="channels"), StandardScaler(),
                                 LogisticRegression(max_iter=2000, C=0.01))
    rows["untrained encoder, pool=channels (control)"] = cross_val_score(random_probe, X, y, cv=cv)
    if not args.skip_finetune:
        ft = FineTunedEncoder(res.model, s1.channels, s1.sfreq, pool="channels",
                              trainer={"max_epochs": 10, "batch_size": 32, "lr": 3e-4, "device": args.device})
        rows["MAE fine-tuned, pool=channels (10 epochs)"] = cross_val_score(ft, X, y, cv=cv)
    print(f"Muse N170 subject 1, faces vs houses ({len(y)} epochs; {dict(zip(*np.unique(y, return_counts=True)))}), "
          "5-fold accuracy:")
    for name, v in rows.items():
        print(f"  {name:50s} {v.mean():.3f} ± {v.std():.3f}")

    # 3. adapt() on planted subjects -----------------------------------------------------------------------------
    from neurodecode.alignment.adaptation import adaptation_benchmark

    for method in ("ridge", "reset"):
        r = adaptation_benchmark(method=method, seed=0)
        print(f"adapt(method={method!r}) with {r['fraction']:.0%} of the new subject's trials: test R² "
              f"{r['adapted']:.3f} vs {r['full']:.3f} trained on all of them ({r['adapted'] / r['full']:.1%}); "
              f"from scratch on the same 10 %: {r['scratch']:.3f}; ridge from scratch (the plain baseline): "
              f"{r['ridge_scratch']:.3f}")


if __name__ == "__main__":
    main()
