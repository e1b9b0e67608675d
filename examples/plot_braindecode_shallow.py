"""
A deep network from braindecode's zoo beside tangent space
==========================================================

braindecode's ShallowFBCSPNet (Schirrmeister et al. 2017), trained from scratch with neurodecode's trainer on the
imagined left/right fist of EEGMMIDB subjects 1 and 2 (90 trials, 64 channels), scored with 5-fold within-session
evaluation beside tangent space + logistic regression on the same folds. With 72 training trials per fold, a
network rarely beats the Riemannian baseline — the comparison says whether it does here (the benchmark's
leave-one-subject-out figures on 10 subjects are in the Benchmarks page).
"""

# %%
import torch

from neurodecode.encoders import BraindecodeModel
from neurodecode.evaluation import evaluate
from neurodecode.evaluation.classification import recipe_classifier
from neurodecode.loaders.public import eegmmidb, shared_data

torch.set_num_threads(2)
epochs = eegmmidb(shared_data(), ["S001", "S002"])
net = BraindecodeModel("ShallowFBCSPNet", trainer={"max_epochs": 30, "batch_size": 32}, seed=0)
result = evaluate(epochs, net, "within_session", baseline=recipe_classifier("tangent_space"),
                  baseline_name="TS+LR", name="ShallowFBCSPNet")
print(result.summary().round(3))
print(result.comparison[["metric", "difference", "ci_low", "ci_high", "p_value", "unit"]].round(3))

# %%
# Scores per fold of the network (blue) and the baseline (grey), with intervals and chance.
result.plot()

# %%
# The training curve of one fit on all trials: the loss the trainer logged per epoch.
import matplotlib.pyplot as plt  # noqa: E402

net.fit(epochs, epochs.table["label"].to_numpy())
history = net.history_
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([h["epoch"] for h in history], [h["train_loss"] for h in history])
ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="ShallowFBCSPNet on 90 trials")
fig.tight_layout()
