"""
Encoding models: predicting voxels from the images seen
=======================================================

The other direction: stimulus → brain. A ridge encoding model
(:class:`~neurodecode.alignment.RidgeEncodingModel`, one regularisation per voxel chosen by cross-validation on the
training trials) predicts the 3,092 voxels of the 69-digit fMRI set from the 28 × 28 pixels seen. Each voxel is
scored by the correlation of its predicted and measured held-out responses; the null is the same model scored
against shuffled trials.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from neurodecode.alignment import RidgeEncodingModel
from neurodecode.loaders.public import digits69, shared_data

X, images, train = digits69(shared_data() / "fmri_digits69" / "digit69_28x28.mat")
pixels = images.reshape(len(images), -1)
model = RidgeEncodingModel().fit(pixels[train], X[train])
predicted = model.predict(pixels[~train])


def voxel_r(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))


r = voxel_r(predicted, X[~train])
null = voxel_r(predicted, X[~train][np.random.default_rng(0).permutation((~train).sum())])
print(f"held-out r: median {np.median(r):.3f}, {np.mean(r > np.quantile(null, 0.95)):.0%} of voxels above the "
      f"shuffled null's 95th percentile ({np.quantile(null, 0.95):.3f})")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
bins = np.linspace(-1, 1, 41)
ax.hist(null, bins, alpha=0.6, color="tab:grey", label="shuffled trials")
ax.hist(r, bins, alpha=0.6, color="tab:blue", label="held-out trials")
ax.set(xlabel="correlation of predicted and measured response", ylabel="voxels",
       title="ridge encoding model, 10 held-out digits")
ax.legend(fontsize=8)
fig.tight_layout()
