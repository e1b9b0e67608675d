"""Stage 1 — loaders: a subject's recordings → the common epoch format, checked on the way in.

* :mod:`.meeg` — EEG / MEG / sEEG / ECoG through MNE (any ``mne.io.read_raw`` format, CSV headsets, evoked files,
  BIDS with mne-bids), epoching with drop reports, chunked epoching into a store, channel regions.
* :mod:`.preprocessing` — preprocessing steps as data (filter, reference, montage, bads, ...).
* :mod:`.fmri` — reading and masking: BOLD runs, masks, per-volume epochs, ``to_nifti``.
* :mod:`.glm` — single-trial responses from BOLD runs (GLMs per trial, HRF library, fractional ridge).
* :mod:`.rois` — ROI time series, parcels (k-means of a mask), sliding windows.
* :mod:`.precomputed` — NSD-style betas, MATLAB sets (digits69), cortical-surface frames.
* :mod:`.simulate` — the simulated subject of the demo, and planted cross-subject data.
* :mod:`.manifests` — public data sets: list, describe, fetch with checksums.

May import: ``neurodecode.core``.
"""

from neurodecode.loaders.fmri import read_run, read_volumes, to_nifti
from neurodecode.loaders.glm import trial_responses
from neurodecode.loaders.rois import roi_timeseries
from neurodecode.loaders.meeg import load_epochs, load_recordings, read_bids, read_evoked, read_raw
from neurodecode.loaders.precomputed import DIGITS69, load_betas, load_mat, load_surface
from neurodecode.loaders.simulate import simulated_subject

__all__ = ["DIGITS69", "load_betas", "load_epochs", "load_mat", "load_recordings", "load_surface", "read_bids",
           "read_evoked", "read_raw", "read_run", "read_volumes", "roi_timeseries", "simulated_subject", "to_nifti",
           "trial_responses"]
