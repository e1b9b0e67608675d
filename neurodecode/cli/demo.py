"""``neurodecode demo``: the built-in end-to-end example, offline, a few minutes on 2 CPU cores.

A **simulated** fMRI subject (:func:`neurodecode.loaders.simulate.simulated_subject`: scikit-learn's real handwritten digits
through a pRF encoding model with correlated noise) → ``neurodecode train experiment=demo`` (z-scored voxels →
``aligner=auto``, ridge or the learned mapper by inner cross-validation, onto 32 PCA components of the images; a
tiny unCLIP generator and a tiny ClipCap captioner trained on the training stimuli) → ``neurodecode reconstruct`` on
the 50 held-out trials → ``report.html``. The report and the printed summary say that the subject is simulated and
give every score beside its chance level and its plain baseline.

May import: every stage.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neurodecode.core.logs import logger

__all__ = ["run_demo"]


def run_demo(out_dir: str | os.PathLike = "neurodecode_demo", overrides: Sequence[str] = (),
             progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Train on the simulated subject and reconstruct its held-out trials; returns the reconstruction summary
    (``report``, ``scores``, ``seconds``, ``train_seconds``)."""
    from neurodecode.core.configs import compose
    from neurodecode.evaluation.scoring import format_scores
    from neurodecode.pipeline.decoding import reconstruct
    from neurodecode.pipeline.fitting import run

    t0 = time.perf_counter()
    out = Path(out_dir)
    cfg = compose(["experiment=demo", *overrides])
    metrics = run(cfg, out / "train", overwrite=overwrite)
    res = reconstruct(out / "train" / "checkpoint", [out / "train" / "heldout_epochs.h5"], out / "reconstruction",
                      progress=progress, title="neurodecode demo — simulated subject, held-out trials",
                      overwrite=overwrite)
    res["train_seconds"] = metrics["seconds"]
    res["seconds"] = time.perf_counter() - t0
    logger.info("SIMULATED subject (scikit-learn digits through a pRF encoding model + noise) — held-out trials:\n"
                + "\n".join(format_scores(res["scores"], indent="  ")))
    logger.info(f"report: {res['report']} ({res['seconds']:.0f} s in all, training {metrics['seconds']:.0f} s)")
    return res
