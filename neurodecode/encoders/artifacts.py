"""Artefact rejection with pyRiemann's Riemannian potato, on the epoch format.

The potato (Barachant et al. 2013) is fitted on the covariance matrices of the epochs — iteratively, dropping the
matrices farther than ``threshold`` standard deviations of the (log) Riemannian distance from their mean — and
rejects every epoch whose z-scored distance exceeds the threshold: an amplitude threshold catches a blink on one
channel, the potato catches any change of the spatial covariance (a loose electrode, a muscle burst, a movement).
:func:`potato_rejection` fits one potato per subject (each head has its own covariance), keeps the clean epochs and
records every rejection, with its z-score, in the EpochSet's drop report and provenance; nothing is dropped
silently. The detection is pyRiemann's :class:`pyriemann.artifact_detection.Potato` (its ``PotatoField``, one potato
per channel group, with ``groups``). :class:`OnlinePotato` is the same detector for a stream: fitted on its first
clean epochs, then scoring each new one and following slow drifts on the clean ones (pyRiemann's ``partial_fit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import DropReport, EpochSet
from neurodecode.core.logs import logger
from neurodecode.core.validation import fail
from neurodecode.encoders import spd

__all__ = ["OnlinePotato", "potato_rejection", "potato_scores"]


def _check_settings(threshold: float, estimator: str) -> None:
    """The z-score threshold and the covariance estimator of a potato (offline and online)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 0:
        fail("threshold", "a z-score > 0 (pyRiemann's default: 3)", threshold)
    if estimator not in spd.COV_ESTIMATORS:
        fail("estimator", f"one of {sorted(spd.COV_ESTIMATORS)}", estimator)


def _check(threshold: float, estimator: str, groups: Any, epochs: EpochSet) -> dict[str, list[int]] | None:
    if not isinstance(epochs, EpochSet):
        fail("epochs", "an EpochSet", type(epochs).__name__, exc=TypeError)
    _check_settings(threshold, estimator)
    if groups is None:
        return None
    if not isinstance(groups, Mapping) or not groups:
        fail("groups", "a mapping of group name → channel names (one potato per group)", groups)
    names = list(epochs.channels.names)
    out = {}
    for g, chans in groups.items():
        if isinstance(chans, str) or len(chans) < 2:
            fail(f"groups[{g!r}]", "at least two channel names", chans)
        missing = [c for c in chans if c not in names]
        if missing:
            fail(f"groups[{g!r}]", f"channels of the epochs ({names[:6]}...)", f"unknown {missing}")
        out[str(g)] = [names.index(c) for c in chans]
    return out


def _detector(threshold: float, p_threshold: float, groups: dict[str, list[int]] | None) -> Any:
    try:
        from pyriemann.artifact_detection import Potato, PotatoField
    except ImportError:                       # pyRiemann < 0.12 keeps them in its clustering module
        from pyriemann.clustering import Potato, PotatoField

    if groups is None:
        return Potato(metric="riemann", threshold=threshold)
    return PotatoField(n_potatoes=len(groups), metric="riemann", z_threshold=threshold, p_threshold=p_threshold)


def _matrices(data: np.ndarray, estimator: str, groups: dict[str, list[int]] | None) -> Any:
    import torch

    X = torch.as_tensor(np.asarray(data, dtype=np.float64))
    if groups is None:
        return spd.covariances(X, estimator).numpy()
    return [spd.covariances(X[:, idx], estimator).numpy() for idx in groups.values()]


def potato_scores(epochs: EpochSet, *, threshold: float = 3.0, estimator: str = "oas",
                  groups: Mapping[str, Sequence[str]] | None = None, p_threshold: float = 0.01,
                  group_by: str | None = "subject") -> pd.DataFrame:
    """Fit a Riemannian potato on the epochs (one per ``group_by`` value) and score every epoch.

    Parameters
    ----------
    epochs : EpochSet
        Data ``(n_epochs, n_channels, n_times)``, filtered as for decoding (the potato sees the covariances).
    threshold : float
        z-score above which an epoch is an artefact (pyRiemann's default, 3).
    estimator : str
        Covariance estimator (:data:`neurodecode.encoders.spd.COV_ESTIMATORS`; ``oas`` by default).
    groups : mapping of str to sequence of str, optional
        Channel groups, one potato each (pyRiemann's ``PotatoField``, each potato fitted with ``threshold``): an
        epoch is an artefact when the groups' combined probability of being clean (Fisher's method) is below
        ``p_threshold``. Default: one potato on all channels.
    p_threshold : float
        The field's threshold on that probability (pyRiemann's default, 0.01); unused without ``groups``.
    group_by : str or None
        Table column whose values get a potato each (``subject``: each head its own reference); None: one for all.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, in order: ``group`` (the ``group_by`` value), ``z`` (pyRiemann's z-score of the
        distance; for a field, the largest over the groups, each group's in ``z[<group>]``, and ``p_clean``, the
        combined probability), ``clean`` (bool).
    """
    if groups is not None and not 0 < p_threshold < 1:
        fail("p_threshold", "a probability between 0 and 1 (pyRiemann's default: 0.01)", p_threshold)
    parts = _check(threshold, estimator, groups, epochs)
    if group_by is not None and group_by not in epochs.table.columns:
        fail(f"table[{group_by!r}]", "a column naming each epoch's subject (or group_by=None)", "no such column")
    if group_by is not None and epochs.table[group_by].isna().any():
        fail(f"table[{group_by!r}]", "a value for every epoch (or group_by=None)",
             f"{int(epochs.table[group_by].isna().sum())} missing")
    keys = (np.asarray(epochs.table[group_by].astype(str).to_numpy(), dtype=object) if group_by is not None
            else np.full(epochs.n_epochs, "all", dtype=object))
    n_z = 1 if parts is None else len(parts)
    z = np.empty((epochs.n_epochs, n_z))
    p_clean = np.full(epochs.n_epochs, np.nan)
    clean = np.empty(epochs.n_epochs, dtype=bool)
    for key in pd.unique(keys):
        mask = keys == key
        if mask.sum() < 3:
            fail("epochs", f"at least 3 epochs per {group_by or 'set'} to fit a potato", f"{int(mask.sum())} for "
                 f"{key!r}")
        C = _matrices(epochs.data[mask], estimator, parts)
        det = _detector(threshold, p_threshold, parts).fit(C)
        z[mask] = np.asarray(det.transform(C)).reshape(int(mask.sum()), n_z)
        clean[mask] = det.predict(C) == 1
        if parts is not None:
            p_clean[mask] = det.predict_proba(C)
    out = pd.DataFrame({"group": keys, "z": z.max(axis=1), "clean": clean})
    if parts is not None:
        for k, name in enumerate(parts):
            out[f"z[{name}]"] = z[:, k]
        out["p_clean"] = p_clean
    return out


def potato_rejection(epochs: EpochSet, *, threshold: float = 3.0, estimator: str = "oas",
                     groups: Mapping[str, Sequence[str]] | None = None, p_threshold: float = 0.01,
                     group_by: str | None = "subject") -> EpochSet:
    """The epochs a Riemannian potato finds clean; the rejected ones recorded in the drop report.

    Parameters
    ----------
    epochs : EpochSet
    threshold, estimator, groups, p_threshold, group_by
        As in :func:`potato_scores`.

    Returns
    -------
    EpochSet
        The clean epochs. Its ``drop_report`` lists every input epoch (its ``label``,
        ``onset`` where the table has one, ``kept``, and for a rejected one ``reason`` = "Riemannian potato: z =
        4.21 > 3 (subject S001)"); the provenance records the step, its settings and the counts. An error names the
        group when the potato would reject every epoch of it.
    """
    scores = potato_scores(epochs, threshold=threshold, estimator=estimator, groups=groups, p_threshold=p_threshold,
                           group_by=group_by)
    for key, part in scores.groupby("group", sort=False):
        if not part["clean"].any():
            fail("threshold", f"a threshold that keeps some epochs of {group_by or 'the set'} {key!r}",
                 f"{threshold}: every one of its {len(part)} epochs rejected")
    kind = "Riemannian potato field" if groups else "Riemannian potato"
    where = (lambda g: f" ({group_by} {g})") if group_by else (lambda g: "")
    if groups:
        reasons = ["" if c else f"{kind}: p(clean) = {p:.2g} < {p_threshold:g}, largest z = {z:.2f}{where(g)}"
                   for g, z, p, c in zip(scores["group"], scores["z"], scores["p_clean"], scores["clean"])]
    else:
        reasons = ["" if c else f"{kind}: z = {z:.2f} > {threshold:g}{where(g)}"
                   for g, z, c in zip(scores["group"], scores["z"], scores["clean"])]
    table = epochs.table.reset_index(drop=True)
    events = pd.DataFrame({"event": np.arange(epochs.n_epochs),
                           "onset": table["onset"] if "onset" in table else np.nan,
                           "description": kind,
                           "label": table["label"].astype(str) if "label" in table else "",
                           "kept": scores["clean"].to_numpy(), "reason": reasons})
    keep = scores["clean"].to_numpy()
    n_dropped = int((~keep).sum())
    logger.info("%s (threshold %g, %s covariances): %d of %d epochs rejected%s", kind, threshold, estimator,
                n_dropped, epochs.n_epochs, "" if not n_dropped else " — " + "; ".join(
                    f"{g}: {int((~part['clean']).sum())}" for g, part in scores.groupby("group", sort=False)
                    if (~part["clean"]).any()))
    step = {"step": "potato_rejection", "threshold": float(threshold), "estimator": estimator,
            **({"p_threshold": float(p_threshold)} if groups else {}),
            "group_by": group_by, "groups": {k: list(v) for k, v in groups.items()} if groups else None,
            "n_rejected": n_dropped, "n_epochs": int(epochs.n_epochs)}
    out = epochs[keep]
    out = out.replace(provenance=[*out.provenance, step])
    return out.with_drop_report(DropReport(events))


class OnlinePotato:
    """A Riemannian potato for epochs that arrive one at a time (``neurodecode stream --potato Z``).

    The first ``warmup`` epochs fit the potato (pyRiemann's ``Potato.fit``, which drops the outliers among them);
    every later epoch is scored against it and, when clean, updates it (pyRiemann's ``partial_fit`` with weight
    ``alpha``, so the reference follows slow drifts, not artefacts).

    Parameters
    ----------
    threshold : float
        z-score above which an epoch is an artefact.
    warmup : int
        Epochs that fit the potato before any is judged (at least 3).
    estimator : str
        Covariance estimator (:data:`neurodecode.encoders.spd.COV_ESTIMATORS`).
    alpha : float
        Weight of a new clean epoch in the update (pyRiemann's default, 0.1).
    """

    def __init__(self, threshold: float = 3.0, warmup: int = 10, estimator: str = "oas", alpha: float = 0.1) -> None:
        _check_settings(threshold, estimator)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 3:
            fail("warmup", "an integer >= 3 (epochs that fit the potato)", warmup)
        if not 0 < alpha <= 1:
            fail("alpha", "a weight in (0, 1]", alpha)
        self.threshold, self.warmup, self.estimator, self.alpha = float(threshold), warmup, estimator, float(alpha)
        self._seen: list[np.ndarray] = []
        self._potato: Any = None

    @property
    def ready(self) -> bool:
        """Whether the warm-up is over (epochs are judged)."""
        return self._potato is not None

    def check(self, epoch: np.ndarray) -> tuple[bool, float | None]:
        """``(clean, z)`` of one epoch ``(n_channels, n_times)``; during the warm-up ``(True, None)``."""
        C = _matrices(np.asarray(epoch)[None], self.estimator, None)
        if self._potato is None:
            self._seen.append(C[0])
            if len(self._seen) >= self.warmup:
                self._potato = _detector(self.threshold, 0.01, None).fit(np.stack(self._seen))
                logger.info("online potato fitted on the first %d epochs", len(self._seen))
            return True, None
        z = float(self._potato.transform(C)[0])
        clean = z <= self.threshold
        if clean:
            self._potato.partial_fit(C, alpha=self.alpha)
        return clean, z
