"""
ERPs: xDAWN covariances on consumer EEG (N170, faces vs houses)
===============================================================

A Muse headset (4 channels, 256 Hz) recorded while subject 1 of the N170 set saw faces and houses. Evoked
responses are decoded with xDAWN: spatial filters that enhance each class's average response, whose prototypes are
stacked with each trial before the covariance (pyRiemann's ``XdawnCovariances``), then tangent space + logistic
regression. The plain tangent-space recipe, which sees only each trial's own covariance, is the baseline — on ERPs
it sits near chance, which is why the ERP paradigm defaults to xDAWN.
"""

# %%
import mne

from neurodecode.evaluation import evaluate
from neurodecode.evaluation.classification import recipe_classifier
from neurodecode.loaders.public import muse, shared_data

mne.set_log_level("warning")
epochs = muse(shared_data(), "N170", subject="1", scale=1e5)      # units of 10 µV: inputs of order one
print(epochs, epochs.table["label"].value_counts().to_dict())

# %%
xdawn = recipe_classifier("xdawn_tangent_space")
plain = recipe_classifier("tangent_space")
result = evaluate(epochs, xdawn, "within_session", baseline=plain, baseline_name="tangent space", name="xDAWN")
print(result.summary().round(3))
print(result.comparison[["metric", "difference", "ci_low", "ci_high", "p_value", "unit"]].round(3))
result.plot()

# %%
# The grand-average responses the filters are built from (MNE), faces against houses on each channel.
import neurodecode as nd  # noqa: E402

evokeds = {c: nd.to_mne(epochs[(epochs.table["label"] == c).to_numpy()]).average() for c in ("face", "house")}
mne.viz.plot_compare_evokeds(evokeds, picks="eeg", combine="mean", show=False, title="Muse N170, mean of 4 channels")
