"""Stage 0 — the ground floor every other stage stands on: the common epoch format and its infrastructure.

* :mod:`.epochs` — :class:`Channels`, :class:`EpochSet`, :class:`EpochCollection`, :func:`concatenate`.
* :mod:`.storage` — the lazily readable HDF5 store (:class:`EpochWriter`, :class:`EpochStore`, :func:`save`, ...).
* :mod:`.mne_convert` — :func:`to_mne` / :func:`from_mne`.
* :mod:`.braindecode_convert` — :func:`~.braindecode_convert.to_braindecode` /
  :func:`~.braindecode_convert.from_braindecode` (braindecode's windows datasets; imports braindecode when called).
* :mod:`.datasets` — torch ``Dataset``, leak-free splits, per-subject batches.
* :mod:`.harmonize` — one channel contract across recordings.
* :mod:`.stimuli` — stimulus tables: images from pixels, resizing.
* :mod:`.training` — the plain-torch :class:`Trainer` (1 or N processes) and safetensors checkpoints.
* :mod:`.configs` — the config registry (``conf/``), :func:`build`, the ``_target_`` allowlist.
* :mod:`.validation`, :mod:`.logs` — shared checks and the ``neurodecode`` logger.

May import: nothing from neurodecode outside ``core``.
"""

from neurodecode.core.epochs import (CHANNEL_TYPES, TABLE_COLUMNS, Channels, EpochCollection, EpochSet,
                                     concatenate)
from neurodecode.core.logs import logger, set_log_level
from neurodecode.core.mne_convert import from_mne, to_mne
from neurodecode.core.storage import (CollectionStore, CollectionWriter, EpochStore, EpochWriter, load, open_store,
                                      read_epochs, save)

__all__ = ["CHANNEL_TYPES", "TABLE_COLUMNS", "Channels", "CollectionStore", "CollectionWriter", "EpochCollection",
           "EpochSet", "EpochStore", "EpochWriter", "concatenate", "from_mne", "load", "logger", "open_store",
           "read_epochs", "save", "set_log_level", "to_mne"]
