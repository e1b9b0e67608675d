"""
Artefact rejection with the Riemannian potato
=============================================

An amplitude threshold catches a blink on one channel; the Riemannian potato (Barachant et al. 2013; pyRiemann's
``Potato``) catches any change of the spatial covariance — a loose electrode, a muscle burst, a movement. Here,
EEGMMIDB subject 1's 45 imagery epochs (7–30 Hz), with a 150 µV burst planted on two channels of three epochs:
:func:`neurodecode.encoders.potato_scores` gives each epoch's z-score against the potato fitted on the subject,
:func:`neurodecode.encoders.potato_rejection` keeps the clean epochs and records every rejection in the drop report.
"""

# %%
import matplotlib.pyplot as plt
import mne
import numpy as np

from neurodecode.encoders import potato_rejection, potato_scores
from neurodecode.loaders.public import eegmmidb, shared_data

mne.set_log_level("warning")
epochs = eegmmidb(shared_data(), ["S001"])                       # (45, 64, 161): 1-2 s after the cue
data = epochs.data.copy()
planted = [7, 21, 38]
for k in planted:                                                # a burst on FC5 and FC3 (the first two channels)
    data[k, :2, 40:120] += 150e-6 * np.sin(np.arange(80) / 2.0)
epochs = epochs.replace(data=data)

# %%
scores = potato_scores(epochs, threshold=3.0)
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.bar(np.arange(len(scores)), scores["z"], color=np.where(scores["clean"], "tab:blue", "tab:red"))
ax.axhline(3.0, color="k", ls="--", lw=1, label="threshold (z = 3)")
ax.set(xlabel="epoch", ylabel="potato z-score", title="EEGMMIDB S001, bursts planted in epochs 7, 21, 38")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The clean epochs, and why the others were dropped: the three planted bursts, and epoch 6, which nothing was planted
# in — the recording's own covariance departs from the others there (z ≈ 5); look at it before trusting either.
clean = potato_rejection(epochs, threshold=3.0)
print(clean.drop_report)
print(clean.drop_report.events.query("not kept")[["event", "label", "reason"]].to_string(index=False))
