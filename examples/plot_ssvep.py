"""
SSVEP: a filter bank with tangent space, beside MOABB's CCA
===========================================================

Subject 3 of the SSVEP exoskeleton set (Kalunga et al. 2016; MOABB's ``Kalunga2016``): 8 occipital channels at
256 Hz, 2 sessions × 32 trials of rest or a 13, 17 or 21 Hz flicker, 2–5 s after the cue. The recipe stacks each
channel band-passed around each stimulation frequency and its second harmonic (48 "channels"), then sample
covariances → tangent space → logistic regression; MOABB's CCA (on the three flicker classes: it needs a frequency
per class) is the classical baseline.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from neurodecode.encoders import SSVEPClassifier
from neurodecode.evaluation import evaluate, plot_confusion_matrix
from neurodecode.evaluation.classification import recipe_classifier
from neurodecode.loaders.public import shared_data, ssvep_exo

epochs = ssvep_exo(shared_data(), subjects=[3])
print(epochs)

# %%
# The filter bank as applied: each requested band beside the pass band the filter actually has (its −3 dB points).
bank = next(step for step in epochs.processing if step["step"] == "filter_bank")
fig, ax = plt.subplots(figsize=(6, 2.6))
for k, f in enumerate(bank["filters"]):
    ax.plot(f["passband"], [k, k], color="tab:blue", lw=6, alpha=0.4, label="actual pass band" if k == 0 else None)
    ax.plot(f["band"], [k, k], color="k", lw=2, label="requested" if k == 0 else None)
ax.set(xlabel="frequency (Hz)", yticks=[], title="filter bank: requested vs actual bands")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Within subject (5 folds over both sessions) and across sessions (train on one, test on the other).
ts = evaluate(epochs, recipe_classifier("tangent_space", ["estimator=scm"]), "within_subject", name="TS+LR")
xs = evaluate(epochs, recipe_classifier("tangent_space", ["estimator=scm"]), "cross_session", name="TS+LR")
print(ts.summary().round(3))
print(xs.summary().round(3))

# %%
# MOABB's CCA on the flicker trials, from a plain 10–45 Hz band-pass.
raw = ssvep_exo(shared_data(), subjects=[3], steps=[{"step": "filter", "l_freq": 10.0, "h_freq": 45.0}])
flicker = raw[(raw.table["label"] != "rest").to_numpy()]
cca = evaluate(flicker, SSVEPClassifier("CCA", {"n_harmonics": 3}), "within_subject", name="CCA")
print(cca.summary().round(3))

# %%
# Where the recipe errs: the confusion matrix of its within-subject test trials.
plot_confusion_matrix(ts.trials["label"], ts.trials["prediction"], classes=["rest", "13", "17", "21"])
print("accuracy per class:", ts.trials.assign(ok=ts.trials["label"] == ts.trials["prediction"])
      .groupby("label")["ok"].mean().round(2).to_dict(), "; chance", np.round(1 / 4, 2))
