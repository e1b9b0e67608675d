"""
CSP spatial patterns as topomaps
================================

Common spatial patterns (MNE's :class:`mne.decoding.CSP`) on subject 1's imagined left- vs right-fist trials of
EEGMMIDB, the classical motor-imagery baseline: CSP log-variances → linear discriminant analysis, scored by
neurodecode's ``evaluate`` beside tangent space + logistic regression on the same folds, then the CSP patterns
(the forward model of each spatial filter) drawn on the scalp with MNE.
"""

# %%
import mne
from mne.decoding import CSP, get_spatial_filter_from_estimator
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import neurodecode as nd
from neurodecode.encoders import make_recipe
from neurodecode.evaluation import evaluate
from neurodecode.loaders.public import eegmmidb, shared_data

mne.set_log_level("warning")
epochs = eegmmidb(shared_data(), subjects=["S001"])
mne_epochs = nd.to_mne(epochs)                      # an mne.Epochs with the montage's positions

# %%
# CSP + LDA beside TS + LR, 5-fold within session (CSP reads the arrays; neurodecode hands them on).
csp_lda = make_pipeline(CSP(n_components=8, log=True), LinearDiscriminantAnalysis())
ts_lr = make_pipeline(make_recipe("tangent_space", estimator="oas"), LogisticRegression(max_iter=1000))
result = evaluate(epochs, csp_lda, "within_session", baseline=ts_lr, baseline_name="TS+LR", name="CSP+LDA")
print(result.summary().round(3))
print(result.comparison.round(3))

# %%
# Fit CSP on all trials and draw its first four patterns: the scalp maps of the sources whose power differs most
# between the two imagined hands (sensorimotor cortex, C3/C4).
csp = CSP(n_components=4, log=True).fit(mne_epochs.get_data(copy=False), epochs.table["label"].to_numpy())
spatial = get_spatial_filter_from_estimator(csp, info=mne_epochs.info)
spatial.plot_patterns(components=[0, 1, 2, 3], show=False)
