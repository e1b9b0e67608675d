"""
fMRI → images: linear reconstructions of seen digits
====================================================

The 69-digit set (van Gerven et al.): 3,092 voxels of early visual cortex while a subject saw handwritten 6s and
9s; 90 trials to train on, 10 held out (the file's own split). A ridge mapping from voxels to the 28 × 28 pixels
(:class:`~neurodecode.alignment.RidgeAlignment`, its regularisation chosen by leave-one-out on the training trials)
reconstructs the held-out digits; two-way identification asks whether each reconstruction correlates more with its
own stimulus than with another one.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from neurodecode.alignment import RidgeAlignment
from neurodecode.evaluation import two_way_identification
from neurodecode.loaders.public import digits69, shared_data

X, images, train = digits69(shared_data() / "fmri_digits69" / "digit69_28x28.mat")
Y = images.reshape(len(images), -1)
ridge = RidgeAlignment().fit(X[train], Y[train])
recon = ridge.predict(X[~train])
pixcorr = [np.corrcoef(r, t)[0, 1] for r, t in zip(recon, Y[~train])]
print(f"held-out PixCorr {np.mean(pixcorr):.3f}; two-way identification "
      f"{two_way_identification(recon, Y[~train]):.3f} (chance 0.5)")

# %%
# Stimuli (top) and their reconstructions from brain activity (bottom).
fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for k in range(10):
    axes[0, k].imshow(images[~train][k], cmap="gray")
    axes[1, k].imshow(recon[k].reshape(28, 28), cmap="gray")
    axes[1, k].set_title(f"r={pixcorr[k]:.2f}", fontsize=7)
for ax in axes.ravel():
    ax.set_axis_off()
fig.suptitle("seen (top) and reconstructed from fMRI (bottom)", fontsize=9)
fig.tight_layout()
