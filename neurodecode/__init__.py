"""neurodecode: decode fMRI, EEG, MEG and sEEG recordings into classes, stimuli, images, captions and 3D objects.

The common epoch format (:class:`EpochSet`, :class:`EpochCollection`, :class:`Channels`) is the contract between
loaders, encoders and heads; :mod:`neurodecode.storage` keeps it on disk (chunked HDF5, lazily readable) and
:mod:`neurodecode.datasets` serves it to torch. :func:`extract_features` and :func:`evaluate` (Riemannian features and
MOABB-style evaluations) are imported on first use.
"""

from ._version import __version__
from .epochs import CHANNEL_TYPES, TABLE_COLUMNS, Channels, EpochCollection, EpochSet, concatenate
from .storage import CollectionStore, CollectionWriter, EpochStore, EpochWriter, load, open_store, save

_LAZY = {"extract_features": "features", "evaluate": "evaluation"}  # these import torch and scikit-learn


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'neurodecode' has no attribute {name!r}")

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
    "concatenate",
    "evaluate",
    "extract_features",
    "load",
    "open_store",
    "save",
]
