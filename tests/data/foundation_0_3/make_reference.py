"""How this folder was written: by neurodecode 0.3's own LaBraM and CBraMod (commit 2229c54, before they became
braindecode's), for tests/encoders/test_published.py's parity tests.

* ``labram/`` and ``cbramod/``: tiny random models saved by ``neurodecode.encoders.save_model`` (0.3 key layout);
  ``reference.npz``: an input (2 epochs × Fp1, Cz, O2 × 400 samples at 200 Hz, volts) and each model's tokens.
* ``accuracy.json``: fine-tuning accuracy of ``conf/encoder/tiny_labram`` / ``tiny_cbramod`` on EEGMMIDB S001
  imagery (45 trials, the example's 5 stratified folds, seed 42), one mean per model seed 0-9
  (:func:`fine_tune_accuracy`).

    python tests/data/foundation_0_3/make_reference.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
TRAINER = {"max_epochs": 5, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.01}
CHANNELS = ["Fp1", "Cz", "O2"]


def fine_tune_accuracy(name: str, seed: int, epochs) -> float:
    """Mean 5-fold accuracy of ``conf/encoder/<name>`` (built after ``torch.manual_seed(seed)``), fine-tuned end to
    end by FineTunedEncoder (TRAINER, seed) on ``epochs``."""
    from neurodecode import build, evaluate
    from neurodecode.encoders.pretraining import FineTunedEncoder

    torch.manual_seed(seed)
    model = build("encoder", name)
    pipe = FineTunedEncoder(model, epochs.channels, epochs.sfreq, trainer=TRAINER, seed=seed)
    scores = evaluate(epochs, pipe, n_splits=5, seed=42).scores
    return float(scores.loc[scores["metric"] == "accuracy", "value"].mean())


def main() -> None:
    from neurodecode import Channels
    from neurodecode.encoders.models.cbramod import CBraMod
    from neurodecode.encoders.models.labram import LaBraM
    from neurodecode.encoders.models.tokenizers import input_spec
    from neurodecode.encoders.pretraining import save_model
    from neurodecode.loaders.public import eegmmidb

    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=HERE.parents[3] / "shared" / "data")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = (20e-6 * rng.standard_normal((2, 3, 400))).astype(np.float32)
    channels = Channels(CHANNELS, "eeg", [[0.0, 0.08, 0.03], [0.0, 0.0, 0.09], [0.03, -0.08, 0.03]], "head")
    out = {"x": x}
    for name, cls, kw in (("labram", LaBraM, dict(patch_size=100, out_chans=4, depth=2, heads=4, mlp_ratio=2.0)),
                          ("cbramod", CBraMod, dict(conv_channels=5, n_layer=2, nhead=4, dim_feedforward=32,
                                                    dropout=0.0))):
        torch.manual_seed(0)
        model = cls(**kw).eval()
        with torch.no_grad():                     # random biases and norms too, so every tensor matters
            for p_ in model.parameters():
                p_.add_(0.05 * torch.randn_like(p_))
        spec = input_spec(channels, 200.0, model.channel_types)
        with torch.no_grad():
            out[name] = model.tokens(torch.as_tensor(x), spec).numpy()
        save_model(HERE / name, model, overwrite=True)
    np.savez(HERE / "reference.npz", **out)
    ep = eegmmidb(args.data)
    acc = {name: [round(fine_tune_accuracy(name, s, ep), 6) for s in range(10)]
           for name in ("tiny_labram", "tiny_cbramod")}
    (HERE / "accuracy.json").write_text(json.dumps({"trainer": TRAINER, "seeds": list(range(10)), "accuracy": acc},
                                                   indent=1))
    print(json.dumps(acc))


if __name__ == "__main__":
    main()
