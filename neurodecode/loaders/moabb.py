"""MOABB interop: a MOABB dataset, cut by a MOABB paradigm, as neurodecode epochs.

>>> from moabb.datasets import PhysionetMI                               # doctest: +SKIP
>>> from moabb.paradigms import LeftRightImagery                         # doctest: +SKIP
>>> epochs = from_moabb(PhysionetMI(), LeftRightImagery(fmin=7, fmax=30), subjects=[1])   # doctest: +SKIP

The other direction needs nothing: neurodecode's recipes are scikit-learn pipelines on ``(n_epochs, n_channels,
n_times)`` arrays, which is what MOABB's evaluations hand their pipelines
(``WithinSessionEvaluation(...).process({"ts": recipe_classifier("tangent_space")})``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.core.epochs import EpochCollection, EpochSet
from neurodecode.core.mne_convert import from_mne
from neurodecode.core.validation import fail

__all__ = ["from_moabb", "offline_physionet_mi"]


def from_moabb(dataset: Any, paradigm: Any, subjects: Sequence[int] | None = None) -> EpochSet | EpochCollection:
    """The epochs that ``paradigm.get_data(dataset, subjects)`` gives MOABB's evaluations, with their table.

    Parameters
    ----------
    dataset : moabb.datasets.base.BaseDataset
    paradigm : moabb.paradigms.base.BaseParadigm
        Its filtering, epoch window, channels and resampling are applied by MOABB, as in a MOABB evaluation.
    subjects : sequence of int, optional
        Default: the dataset's ``subject_list``.

    Returns
    -------
    EpochSet (one subject) or EpochCollection
        Table: ``subject``, ``session`` and ``run`` from MOABB's metadata (as strings), ``label`` = MOABB's labels,
        plus ``dataset`` (the dataset's code); the data in volts, in MOABB's order (so MOABB's folds and
        neurodecode's coincide: seeded stratified k-fold on the same rows).
    """
    subjects = list(dataset.subject_list if subjects is None else subjects)
    unknown = sorted(set(subjects) - set(dataset.subject_list))
    if unknown:
        fail("subjects", f"subjects of {dataset.code} ({dataset.subject_list[:5]}...)", unknown)
    for band in getattr(paradigm, "filters", None) or []:      # MOABB filters (fmin, fmax) with fmin > fmax as a
        low, high = band                                         # band-stop, silently: a swapped pair is an error
        if low is not None and high is not None and not float(low) < float(high):
            fail("paradigm.filters", "bands (fmin, fmax) with fmin < fmax", [tuple(b) for b in paradigm.filters])
    parts = []
    for subject in subjects:
        epochs, labels, meta = paradigm.get_data(dataset, subjects=[subject], return_epochs=True)
        if len(labels) != len(epochs) or len(meta) != len(epochs):
            fail("paradigm.get_data", "one label and one metadata row per epoch",
                 f"{len(epochs)} epochs, {len(labels)} labels, {len(meta)} rows")
        ep = from_mne(epochs.copy().load_data(), label=None,
                      provenance=[{"step": "from_moabb", "dataset": str(dataset.code), "paradigm":
                                   type(paradigm).__name__, "subject": int(subject)}])
        table = ep.table.copy()
        for col in ("subject", "session", "run"):
            table[col] = meta[col].astype(str).to_numpy()
        table["label"] = np.asarray(labels).astype(str)
        table["dataset"] = str(dataset.code)
        parts.append(ep.replace(table=table))
    return parts[0] if len(parts) == 1 else EpochCollection(parts)


def offline_physionet_mi(root: str | os.PathLike, folder: str | os.PathLike, subjects: Sequence[int] = (1,),
                         runs: Sequence[int] = (4, 8, 12)) -> Any:
    """MOABB's ``PhysionetMI`` (imagined movements) reading the EEGMMIDB files of the shared recordings, offline.

    The EDF files of ``root`` (``eegmmidb_S001/`` and ``eegmmidb_multi/SNNN/``) are linked — never copied — where
    MOABB's downloader looks under ``folder`` (its MNE data path), and MOABB is pointed there for this process
    (``MNE_DATA``, ``MNE_DATASETS_EEGBCI_PATH``; ``MOABB_DOWNLOAD_PROVIDER=upstream``, so it does not ask NEMAR). The
    dataset's ``subject_list`` is ``subjects`` and its feet runs are dropped (only the fist runs are here).

    Returns
    -------
    moabb.datasets.PhysionetMI
    """
    from moabb.datasets import PhysionetMI
    from moabb.datasets.download import _url_to_local_path
    from moabb.datasets.physionet_mi import BASE_URL

    root, folder = Path(root), Path(folder)
    for subject in subjects:
        name = f"S{int(subject):03d}"
        source = root / "eegmmidb_S001" if name == "S001" else root / "eegmmidb_multi" / name
        for run in runs:
            src = source / f"{name}R{int(run):02d}.edf"
            if not src.is_file():
                raise FileNotFoundError(f"{src}: missing (EEGMMIDB {name} run {run}; see the data README)")
            target = Path(_url_to_local_path(BASE_URL + f"{name}/{name}R{int(run):02d}.edf",
                                             folder / "MNE-eegbci-data"))
            if not (target.is_symlink() and target.resolve() == src.resolve()):
                if target.exists() or target.is_symlink():
                    raise FileExistsError(f"{target}: expected a link to {src} or nothing, found another file")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(src.resolve(), target)
    os.environ.update(MNE_DATA=str(folder), MNE_DATASETS_EEGBCI_PATH=str(folder), MOABB_DOWNLOAD_PROVIDER="upstream")
    dataset = PhysionetMI(imagined=True, executed=False)
    dataset.feet_runs, dataset.subject_list = [], [int(s) for s in subjects]
    return dataset
