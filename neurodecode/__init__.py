"""neurodecode: decode fMRI, EEG, MEG and sEEG recordings into classes, stimuli, images, captions and 3D objects.

The package tree is the data flow, one stage per package; a stage imports only the stages before it::

    core  →  loaders  →  encoders  →  alignment  →  heads  →  evaluation  →  pipeline  →  cli

* :mod:`neurodecode.core` — the common epoch format (:class:`EpochSet`, :class:`EpochCollection`, :class:`Channels`),
  its on-disk store, MNE conversion, torch datasets, the Trainer, the config registry (:func:`build`);
* :mod:`neurodecode.loaders` — EEG/MEG/sEEG (MNE, BIDS) and fMRI (nibabel/nilearn) recordings → epochs;
* :mod:`neurodecode.encoders` — Riemannian features, voxel features, masked autoencoders, cross-subject models;
* :mod:`neurodecode.alignment` — brain features → CLIP-like target spaces, new-subject adaptation;
* :mod:`neurodecode.heads` — latents → images, captions, meshes (one protocol, typed outputs);
* :mod:`neurodecode.evaluation` — one harness for classes, retrieval, images, captions, meshes; the report;
* :mod:`neurodecode.pipeline` — a trained pipeline: fit from a config, save, decode new recordings;
* :mod:`neurodecode.cli` — the ``neurodecode`` command.

The epoch format and the store are imported here; :func:`extract_features`, :func:`evaluate`, :func:`build` and the
stage packages on first use.
"""

from neurodecode import _compat
from neurodecode._version import __version__
from neurodecode.core.epochs import CHANNEL_TYPES, TABLE_COLUMNS, Channels, EpochCollection, EpochSet, concatenate
from neurodecode.core.logs import logger, set_log_level
from neurodecode.core.mne_convert import from_mne, to_mne
from neurodecode.core.storage import (CollectionStore, CollectionWriter, EpochStore, EpochWriter, load, open_store,
                                      read_epochs, save)

_LAZY = {"extract_features": "neurodecode.encoders.features", "evaluate": "neurodecode.evaluation.classification",
         "build": "neurodecode.core.configs", "options": "neurodecode.core.configs",
         "compose": "neurodecode.core.configs", "to_braindecode": "neurodecode.core.braindecode_convert",
         "from_braindecode": "neurodecode.core.braindecode_convert"}


def __getattr__(name: str):
    if name in _LAZY:  # these import torch and scikit-learn (braindecode: torchaudio)
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurodecode' has no attribute {name!r}")


_compat.install()

__all__ = [
    "CHANNEL_TYPES",
    "TABLE_COLUMNS",
    "Channels",
    "CollectionStore",
    "CollectionWriter",
    "EpochCollection",
    "EpochSet",
    "EpochStore",
    "EpochWriter",
    "__version__",
    "build",
    "compose",
    "concatenate",
    "evaluate",
    "extract_features",
    "from_braindecode",
    "from_mne",
    "load",
    "logger",
    "open_store",
    "options",
    "read_epochs",
    "save",
    "set_log_level",
    "to_braindecode",
    "to_mne",
]
