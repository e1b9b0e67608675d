"""
fMRI: connectomes of category blocks beside their mean activity
===============================================================

The same Haxby slice as parcels: 16 k-means parcels of the mask, one 22.5 s window per category block (96 windows,
8 categories). Each window gets a connectome (:class:`~neurodecode.encoders.connectivity.Connectivity`, equal to
nilearn's ``ConnectivityMeasure`` with the same estimator), classified leaving one run out, beside the plain
baseline: the window's mean activity per parcel. On block designs, what decodes is the activity, not the coupling.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neurodecode.encoders.connectivity import Connectivity
from neurodecode.loaders.fmri import read_volumes
from neurodecode.loaders.public import shared_data
from neurodecode.loaders.rois import kmeans_parcels, pool_rois, sliding_windows

folder = shared_data() / "haxby2001_slice" / "tutorial_slice"
labels, runs = np.loadtxt(folder / "attributes_literal.txt", dtype=str).T
volumes = read_volumes(folder / "bold.nii.gz", folder / "mask.nii.gz", labels=labels, runs=runs, subject="1")
blocks = sliding_windows(pool_rois(volumes, kmeans_parcels(folder / "mask.nii.gz", 16)), window=22.5, stride=22.5)
y, groups = blocks.table["label"].to_numpy(), blocks.table["run"].to_numpy()
print(blocks)


def score(*steps, X=blocks.data):
    pipe = make_pipeline(*steps, StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return cross_val_score(pipe, X, y, groups=groups, cv=LeaveOneGroupOut())


# %%
results = {kind: score(Connectivity(kind)) for kind in ("correlation", "partial correlation", "tangent")}
results["mean activity (baseline)"] = score(X=blocks.data.mean(-1))
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(list(results), [r.mean() for r in results.values()], xerr=[r.std() for r in results.values()],
        color=["tab:blue"] * 3 + ["tab:grey"])
ax.axvline(1 / 8, color="tab:red", ls="--", lw=1, label="chance")
ax.set(xlabel="accuracy, leave one run out (mean ± sd over runs)", xlim=(0, 1))
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# One block's partial-correlation connectome.
matrix = Connectivity("partial correlation", vectorize=False).fit(blocks.data).transform(blocks.data[:1])[0]
fig, ax = plt.subplots(figsize=(3.6, 3.2))
im = ax.imshow(matrix - np.diag(np.diag(matrix)), cmap="RdBu_r", vmin=-1, vmax=1)
ax.set(title=f"partial correlation, block 1 ({y[0]})", xlabel="parcel", ylabel="parcel")
fig.colorbar(im, ax=ax, shrink=0.8)
fig.tight_layout()
