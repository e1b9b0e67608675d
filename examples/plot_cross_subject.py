"""
Across subjects: leave one subject out, with and without re-centring
====================================================================

Four EEGMMIDB subjects (imagined left vs right fist, 9 sensorimotor channels to keep this quick; the benchmark uses
all 64 and 10 subjects). A classifier trained on three subjects is tested on the fourth. ``Recenter`` re-centres
each subject's covariances at the identity with that subject's own unlabeled epochs — the held-out subject's
included — which removes much of what differs between heads and sessions (Zanini et al. 2018).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from neurodecode.encoders import Covariances, Recenter, TangentSpace
from neurodecode.evaluation import evaluate
from neurodecode.loaders.public import eegmmidb, shared_data

subjects = ["S001", "S002", "S003", "S007"]
epochs = eegmmidb(shared_data(), subjects, tmin=0.5, tmax=4.0 - 1 / 160)
epochs = epochs.pick_channels(["FC3", "FCz", "FC4", "C3", "Cz", "C4", "CP3", "CPz", "CP4"])

plain = make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression(max_iter=1000))
centred = make_pipeline(Covariances("oas"), Recenter(), TangentSpace(), LogisticRegression(max_iter=1000))
result = evaluate(epochs, centred, "cross_subject", baseline=plain, baseline_name="TS+LR", name="re-centred TS+LR")
print(result.summary().round(3))
print(result.comparison[["metric", "difference", "ci_low", "ci_high", "p_value", "unit"]].round(3))

# %%
# Accuracy on each held-out subject, both pipelines, with chance.
acc = result.scores[result.scores["metric"] == "accuracy"].set_index("test")["value"]
base = result.baseline.scores[result.baseline.scores["metric"] == "accuracy"].set_index("test")["value"]
x = np.arange(len(acc))
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(x - 0.2, base.loc[acc.index], 0.4, label="TS+LR", color="tab:grey")
ax.bar(x + 0.2, acc, 0.4, label="re-centred", color="tab:blue")
ax.axhline(0.5, color="tab:red", ls="--", lw=1, label="chance")
ax.set(xticks=x, xticklabels=acc.index, ylabel="accuracy", ylim=(0, 1), title="held-out subject")
ax.legend(fontsize=8)
fig.tight_layout()
