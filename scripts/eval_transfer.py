"""Cross-subject transfer on real EEG: every ``evaluate(..., transfer=...)`` option beside no alignment.

1. **EEGMMIDB subject 1, imagined vs executed fists** (runs 4/8/12 and 3/7/11, 7-30 Hz, 1-2 s after the cue, 45
   trials each) as two stand-in subjects, each tested after training on the other, with the ``tangent_space``
   recipe + logistic regression.
2. **Muse N170 subjects 1 and 2** (faces vs houses, 4 channels, 1-30 Hz, -0.1..0.8 s), leave one subject out with
   the ``xdawn_tangent_space`` recipe (xDAWN fitted on the training subject) and plain ``tangent_space``.

Usage::

    python scripts/eval_transfer.py [--data ../shared/data] [--n-calibration 10] [--muse-calibration 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path(os.environ.get("NEURODECODE_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
MI_STEPS = [{"step": "rename", "preset": "eegbci"}, {"step": "montage", "name": "standard_1005"},
            {"step": "filter", "l_freq": 7.0, "h_freq": 30.0}]


def eegmmidb(root: Path, runs: tuple[int, ...], subject: str):
    from neurodecode.core.epochs import concatenate
    from neurodecode.loaders.meeg import load_epochs

    return concatenate([load_epochs(root / "eegmmidb_S001" / f"S001R{r:02d}.edf", tmin=1.0, tmax=2.0,
                                    labels={"T1": "left", "T2": "right"}, steps=MI_STEPS, subject=subject,
                                    session="1", run=str(r))[0] for r in runs])


def table(collection, recipe: str, options: list[dict]) -> None:
    from neurodecode.evaluation import evaluate
    from neurodecode.evaluation.classification import recipe_classifier

    for kw in options:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # RPA's optimiser stopping at its iteration cap
            sc = evaluate(collection, recipe_classifier(recipe), "cross_subject", **kw).scores
        acc = sc[sc["metric"] == "accuracy"].set_index("subject")
        cells = "  ".join(f"{s}: {v:.3f} (n={int(acc.loc[s, 'n_test'])})" for s, v in acc["value"].items())
        name = kw.get("transfer") or "none"
        print(f"{recipe:22s} {name:12s} cal={kw.get('n_calibration', 0):<3d} {cells}  [{time.perf_counter() - t:.1f} s]",
              flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--n-calibration", type=int, default=10)
    p.add_argument("--muse-calibration", type=int, default=20)
    args = p.parse_args()
    from neurodecode import EpochCollection

    sys.path.insert(0, str(HERE))
    from eval_encoders import load_muse

    k = args.n_calibration
    mi = EpochCollection([eegmmidb(args.data, (4, 8, 12), "imagined"), eegmmidb(args.data, (3, 7, 11), "executed")])
    print("EEGMMIDB S001, imagined vs executed as two subjects (accuracy of the tested one):")
    table(mi, "tangent_space", [{}, {"transfer": "recenter"}, {"n_calibration": k},
                                {"transfer": "recenter", "n_calibration": k}, {"transfer": "rpa", "n_calibration": k},
                                {"transfer": "procrustes", "n_calibration": k}])
    m = args.muse_calibration
    labels = {"1": "house", "2": "face"}
    muse = EpochCollection([load_muse(args.data, "N170", s, labels) for s in ("1", "2")])
    print("Muse N170, leave one subject out:")
    for recipe in ("xdawn_tangent_space", "tangent_space"):
        table(muse, recipe, [{}, {"transfer": "recenter"}, {"transfer": "recenter", "n_calibration": m},
                             {"transfer": "rpa", "n_calibration": m}, {"transfer": "procrustes", "n_calibration": m}])


if __name__ == "__main__":
    main()
