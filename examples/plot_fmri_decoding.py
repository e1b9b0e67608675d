"""
fMRI: decoding object categories volume by volume, weights on the brain
=======================================================================

One slice of Haxby et al. (2001), subject 1: 12 runs of 8 object categories in blocks, 1,452 volumes. Each volume
becomes one epoch ``(n_voxels, 1)`` inside the mask (per-run detrending and z-scoring), labelled with its block's
category. A linear SVM (scikit-learn) decodes faces against houses, leaving one run out; its weights go back to the
brain's voxel grid with :func:`neurodecode.loaders.fmri.to_nifti` and are drawn with nilearn — beside the decoder's
Haufe patterns (:func:`neurodecode.evaluation.linear_patterns`), which show where the signal is rather than how the
decoder weighs the voxels to cancel noise.
"""

# %%
import numpy as np
from nilearn import plotting
from nilearn.image import mean_img
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from neurodecode.loaders.fmri import read_volumes, to_nifti
from neurodecode.loaders.public import shared_data

folder = shared_data() / "haxby2001_slice" / "tutorial_slice"
labels, runs = np.loadtxt(folder / "attributes_literal.txt", dtype=str).T
volumes = read_volumes(folder / "bold.nii.gz", folder / "mask.nii.gz", labels=labels, runs=runs, subject="1")
faces_houses = volumes[volumes.table["label"].isin(["face", "house"]).to_numpy()]
print(faces_houses)

# %%
X = faces_houses.data[:, :, 0]
y = faces_houses.table["label"].to_numpy()
svm = make_pipeline(StandardScaler(), LinearSVC(C=0.01, max_iter=5000))
scores = cross_val_score(svm, X, y, groups=faces_houses.table["run"], cv=LeaveOneGroupOut())
print(f"faces vs houses, leave one run out: {scores.mean():.3f} ± {scores.std():.3f} (chance 0.5)")

# %%
# The weights of the SVM fitted on all runs, as a NIfTI image in the recording's space.
weights = svm.fit(X, y).named_steps["linearsvc"].coef_[0]
image = to_nifti(weights, faces_houses)
background = mean_img(folder / "bold.nii.gz")                  # the subject's own mean EPI: the slice is not in MNI
plotting.plot_stat_map(image, bg_img=background, display_mode="z", cut_coords=1, title="SVM weights (house > face)",
                       colorbar=True, draw_cross=False, annotate=False)

# %%
# Weights are not activity: a voxel can weigh heavily because it records the noise that another voxel's signal
# carries. The Haufe patterns of the same decoder (the forward model cov(X) w, MNE's ``LinearModel``) show where
# the face/house difference is. (This slice is in the subject's own space, so it is drawn on its grid; for data in
# MNI space, ``plotting.plot_glass_brain(patterns.to_nifti())`` draws it on a glass brain.)
from neurodecode.evaluation import linear_patterns

patterns = linear_patterns(faces_houses, LinearSVC(C=0.01, max_iter=5000))
plotting.plot_stat_map(patterns.to_nifti(), bg_img=background, display_mode="z", cut_coords=1, colorbar=True,
                       draw_cross=False, annotate=False, title="Haufe patterns (house > face)")
