"""
Decoding over time with MNE's sliding estimator
===============================================

When does the imagined hand become decodable? MNE's :class:`mne.decoding.SlidingEstimator` fits one classifier per
time sample of the epochs (here the band power envelope of 64 channels, 7–30 Hz, of EEGMMIDB subject 1, from 0.5 s
before to 4 s after the cue). neurodecode's epochs go to MNE with :func:`neurodecode.to_mne`; the analysis is MNE's.
"""

# %%
import matplotlib.pyplot as plt
import mne
from mne.decoding import SlidingEstimator, cross_val_multiscore
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import neurodecode as nd
from neurodecode.loaders.public import eegmmidb, shared_data

mne.set_log_level("warning")
epochs = eegmmidb(shared_data(), ["S001", "S002"], tmin=-0.5, tmax=4.0)
mne_epochs = nd.to_mne(epochs).apply_hilbert(envelope=True).resample(40.0)   # the mu/beta band envelope
X, y = mne_epochs.get_data(copy=False), epochs.table["label"].to_numpy()

# %%
clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
sliding = SlidingEstimator(clf, scoring="roc_auc", n_jobs=1)
scores = cross_val_multiscore(sliding, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=42)).mean(0)

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(mne_epochs.times, scores, label="ROC AUC (5-fold mean)")
ax.axhline(0.5, color="tab:red", ls="--", lw=1, label="chance")
ax.axvline(0.0, color="k", lw=0.8)
ax.set(xlabel="time after the cue (s)", ylabel="ROC AUC", title="left vs right imagined fist, 2 subjects")
ax.legend(fontsize=8)
fig.tight_layout()
print(f"peak ROC AUC {scores.max():.3f} at {mne_epochs.times[scores.argmax()]:.2f} s")
