"""neurodecode: decode fMRI, EEG, MEG and sEEG recordings into classes, stimuli, images, captions and 3D objects.

The common epoch format (:class:`EpochSet`, :class:`EpochCollection`, :class:`Channels`) is the contract between
loaders, encoders and heads; :mod:`neurodecode.storage` keeps it on disk (chunked HDF5, lazily readable) and
:mod:`neurodecode.datasets` serves it to torch.
"""

from ._version import __version__
from .epochs import CHANNEL_TYPES, TABLE_COLUMNS, Channels, EpochCollection, EpochSet, concatenate
from .storage import CollectionStore, CollectionWriter, EpochStore, EpochWriter, load, open_store, save

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
    "load",
    "open_store",
    "save",
]
