"""
Motor imagery: covariances, tangent space and MDM on real EEG
=============================================================

Imagined left- vs right-fist movements of PhysioNet's EEG Motor Movement/Imagery set (subjects 1 and 2, runs 4, 8
and 12: 45 trials each, 64 channels, 160 Hz), band-passed 7–30 Hz and cut 1–2 s after the cue. The tangent-space
recipe (OAS covariances → tangent space → logistic regression) is evaluated within session with 5 stratified folds,
beside the plain minimum-distance-to-mean baseline (MDM) on the same folds; the paired test is trial-level.
"""

# %%
# Load two subjects into one epoch set: data ``(n_epochs, n_channels, n_times)`` and a per-epoch table.
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from neurodecode.encoders import MDM, Covariances, make_recipe
from neurodecode.evaluation import evaluate, plot_confusion_matrix, plot_roc_curve
from neurodecode.loaders.public import eegmmidb, shared_data

epochs = eegmmidb(shared_data(), subjects=["S001", "S002"])
print(epochs)
print(epochs.table[["subject", "run", "label"]].value_counts().unstack())

# %%
# Evaluate the recipe beside MDM on the same folds. ``summary()`` gives the mean over folds with a Student-t
# interval; ``comparison`` the pipeline minus the baseline, paired over the same test trials.
pipe = make_pipeline(make_recipe("tangent_space", estimator="oas"), LogisticRegression(max_iter=1000))
baseline = make_pipeline(Covariances("oas"), MDM())
result = evaluate(epochs, pipe, "within_session", baseline=baseline, baseline_name="MDM", name="TS+LR")
print(result.summary().round(3))
print(result.comparison.round(3))

# %%
# Scores per fold (dots), means with 95 % intervals, and chance: the majority class's share of the test trials.
result.plot()

# %%
# The confusion matrix of all test trials (each trial is predicted once, by the fold that held it out).
plot_confusion_matrix(result.trials["label"], result.trials["prediction"], title="TS+LR, within session")

# %%
# A ROC curve needs scores, not classes: scikit-learn's ``cross_val_predict`` on subject 1 alone.
s1 = epochs.query("subject == 'S001'")
y = s1.table["label"].to_numpy()
scores = cross_val_predict(pipe, s1, y, cv=StratifiedKFold(5, shuffle=True, random_state=42),
                           method="decision_function")
plot_roc_curve(y, scores, positive="right", name="TS+LR, S001")
