"""
fMRI: where faces and houses are told apart — searchlight and whole-brain decoders
===================================================================================

One slice of Haxby et al. (2001), subject 1, faces against houses. nilearn's ``SearchLight``
(:func:`neurodecode.evaluation.searchlight`) decodes in a 5 mm sphere around every voxel, leaving whole runs out, and
maps the score; nilearn's ``Decoder`` (:func:`neurodecode.evaluation.whole_brain_decoder`) decodes from the whole
slice after univariate screening and gives its weight map. Both read the mask and the voxel grid from the epochs'
provenance.
"""

# %%
import warnings

import numpy as np
from nilearn import plotting
from nilearn.image import mean_img

from neurodecode.evaluation import searchlight, whole_brain_decoder
from neurodecode.loaders.fmri import read_volumes
from neurodecode.loaders.public import shared_data

folder = shared_data() / "haxby2001_slice" / "tutorial_slice"
labels, runs = np.loadtxt(folder / "attributes_literal.txt", dtype=str).T
volumes = read_volumes(folder / "bold.nii.gz", folder / "mask.nii.gz", labels=labels, runs=runs, subject="1")
faces_houses = volumes[volumes.table["label"].isin(["face", "house"]).to_numpy()]
background = mean_img(folder / "bold.nii.gz")                  # the subject's own mean EPI: the slice is not in MNI

# %%
scores = searchlight(faces_houses, radius=5.0)                  # linear SVM per sphere, leave one run out
plotting.plot_stat_map(scores, bg_img=background, display_mode="z", cut_coords=1, colorbar=True, draw_cross=False,
                       annotate=False, title="searchlight accuracy")

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)                # nilearn: a slice is smaller than a brain mask
    decoder = whole_brain_decoder(faces_houses)                  # nilearn's Decoder, ROC-AUC per left-out run
print(f"Decoder ROC-AUC over {len(decoder.cv_scores_['house'])} left-out runs: "
      f"{np.mean(decoder.cv_scores_['house']):.3f} ± {np.std(decoder.cv_scores_['house']):.3f}")
plotting.plot_stat_map(decoder.coef_img_["house"], bg_img=background, display_mode="z", cut_coords=1, colorbar=True,
                       draw_cross=False, annotate=False, title="Decoder weights (house)")
