"""
A training run and its reconstruction report (real fMRI)
========================================================

``neurodecode train experiment=digits69`` as a Python call: the 69-digit fMRI set's 90 training trials are mapped
onto 32 PCA components of the images (``aligner=auto`` chooses between ridge and a learned mapper by inner
cross-validation on the training trials), the checkpoint is saved, and ``neurodecode reconstruct`` decodes the 10
held-out trials: linear reconstructions, retrieval among the held-out stimuli, per-trial scores and an HTML report.
"""

# %%
import json
from pathlib import Path
from tempfile import mkdtemp

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

import neurodecode as nd
from neurodecode.loaders.public import shared_data
from neurodecode.pipeline import reconstruct, run

work = Path(mkdtemp())
cfg = nd.compose(["experiment=digits69", f"data.path={shared_data() / 'fmri_digits69' / 'digit69_28x28.mat'}"])
metrics = run(cfg, work / "run")                         # → checkpoint/, heldout_epochs.h5, metrics.json
print(pd.DataFrame(metrics["scores"])[["kind", "metric", "value", "chance", "ci_low", "ci_high"]].round(3))

# %%
# Decode the held-out trials with the checkpoint, as ``neurodecode reconstruct CHECKPOINT EPOCHS --out DIR`` does.
result = reconstruct(work / "run" / "checkpoint", [work / "run" / "heldout_epochs.h5"], work / "recon")
print("report:", result["report"].name, "—", result["n_trials"], "trials")
trials = pd.read_csv(work / "recon" / "trial_scores.csv")
print(trials.round(3))

# %%
# Each held-out stimulus (top) beside its linear reconstruction (bottom), as the report shows them.
held_out = nd.load(work / "run" / "heldout_epochs.h5")
pixels = held_out.stimuli.set_index("stimulus")["pixels"]
meta = json.loads((work / "recon" / "linear" / "metadata.json").read_text())
fig, axes = plt.subplots(2, len(meta["trials"]), figsize=(10, 2.3))
for k, trial in enumerate(meta["trials"]):
    stimulus = held_out.table["stimulus"].iloc[int(trial["trial"])]
    axes[0, k].imshow(np.asarray(pixels.loc[stimulus], dtype=float).reshape(28, 28), cmap="gray")
    axes[1, k].imshow(Image.open(work / "recon" / "linear" / trial["files"][0]), cmap="gray")
    axes[1, k].set_title(f"r={trials.loc[k, 'pixcorr']:.2f}", fontsize=7)
for ax in axes.ravel():
    ax.set_axis_off()
fig.tight_layout()

# %%
# The report's scores figure: every metric with its interval and chance level.
fig, ax = plt.subplots(figsize=(8, 4))
ax.imshow(Image.open(work / "recon" / "scores.png"))
ax.set_axis_off()
