"""The MEG/EEG brain module as a supervised encoder of a training run: fitted end to end onto the target latents.

:class:`BrainModuleEncoder` reads an :class:`~neurodecode.EpochSet` (channel positions for the spatial attention,
the table's ``subject`` column for the subject layers), scales each channel robustly (median / interquartile range
of the training epochs, clamped at ±20, as Défossez et al.), and trains
:class:`~neurodecode.encoders.models.brain_module.BrainModule` with CLIP + MSE onto the latents ``Y`` it is fitted
with (``fits_targets``: a training run hands it the target space's latents instead of the labels). ``transform``
gives the predicted latents ``(n_epochs, embed_dim)``; pair it with ``aligner=identity`` (or a ridge on top).

May import: ``neurodecode.core``, ``neurodecode.loaders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.core.epochs import EpochSet
from neurodecode.core.validation import fail

__all__ = ["BrainModuleEncoder"]

#: Trainer settings of a brain-module fit (overridden by ``trainer``)
BRAIN_TRAINER = {"max_epochs": 40, "batch_size": 64, "lr": 3e-4, "weight_decay": 0.0, "progress": False}


class BrainModuleEncoder(TransformerMixin, BaseEstimator):
    """EpochSet ``(n_epochs, n_channels, n_times)`` → predicted target latents ``(n_epochs, embed_dim)``.

    Parameters
    ----------
    n_spatial, hidden, depth, out_channels, sfreq, dropout :
        The :class:`~neurodecode.encoders.models.brain_module.BrainModule`'s.
    subject_layers : bool
        One linear layer per training subject (epochs of other subjects are refused at ``transform``).
    clip_weight, temperature : float
        The objective: ``clip_weight`` · CLIP + (1 − ``clip_weight``) · MSE.
    missing_positions : {"error", "learned"}
    trainer : dict, optional
        :class:`~neurodecode.core.training.Trainer` settings over :data:`BRAIN_TRAINER`.
    seed : int

    Attributes
    ----------
    model_ : BrainModule
    channels_ : Channels
    sfreq_ : float
    center_, scale_ : ndarray (n_channels, 1)
    history_ : list of dict
    """

    reads_epochs = True         # positions and subjects come from the EpochSet
    fits_targets = True         # fit(epochs, Y) with the target latents, not the labels

    def __init__(self, n_spatial: int = 64, hidden: int = 64, depth: int = 3, out_channels: int = 128,
                 sfreq: float = 120.0, dropout: float = 0.1, subject_layers: bool = True, clip_weight: float = 0.5,
                 temperature: float = 0.1, missing_positions: str = "error",
                 trainer: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.n_spatial = n_spatial
        self.hidden = hidden
        self.depth = depth
        self.out_channels = out_channels
        self.sfreq = sfreq
        self.dropout = dropout
        self.subject_layers = subject_layers
        self.clip_weight = clip_weight
        self.temperature = temperature
        self.missing_positions = missing_positions
        self.trainer = trainer
        self.seed = seed

    def _spec(self) -> Any:
        from neurodecode.encoders.models.tokenizers import input_spec

        if getattr(self, "_spec_cache", None) is None:
            self._spec_cache = input_spec(self.channels_, self.sfreq_, self.model_.channel_types,
                                          missing_positions=self.missing_positions, where="brain module")
        return self._spec_cache

    def _inputs(self, X: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not isinstance(X, EpochSet):
            fail("X", "an EpochSet (the brain module reads its channel positions and subjects)", type(X).__name__)
        if list(X.channels.names) != list(self.channels_.names) or X.sfreq != self.sfreq_:
            fail("X", f"the {len(self.channels_.names)} channels at {self.sfreq_:g} Hz of fit",
                 f"{len(X.channels.names)} channels at {X.sfreq:g} Hz")
        A = np.asarray(X.data, dtype=np.float64)
        if not np.isfinite(A).all():
            fail("X", "finite values", "NaN or Inf")
        x = torch.as_tensor(np.clip((A - self.center_) / self.scale_, -20, 20), dtype=torch.float32)
        subject = None
        if self.model_.has_subject_layers:
            subject = self.model_.subject_index([str(s) for s in X.table["subject"]], "brain module")
        return x, subject

    def fit(self, X: Any, y: Any) -> BrainModuleEncoder:
        """Train onto the target latents ``y`` (n_epochs, embed_dim) of the epochs ``X``."""
        from neurodecode.core.training import Trainer
        from neurodecode.encoders.models.brain_module import BrainModule, brain_module_loss
        from neurodecode.encoders.models.tokenizers import resample_fft

        Y = np.asarray(y, dtype=np.float32)
        if not isinstance(X, EpochSet):
            fail("X", "an EpochSet (the brain module reads its channel positions and subjects)", type(X).__name__)
        if Y.ndim != 2 or len(Y) != len(X.data):
            fail("y", f"target latents (n_epochs={len(X.data)}, embed_dim) — the brain module is fitted onto a "
                 "target space, not onto labels", Y.shape)
        for name in ("model_", "center_", "scale_"):
            self.__dict__.pop(name, None)
        self._spec_cache = None
        A = np.asarray(X.data, dtype=np.float64)
        self.channels_, self.sfreq_ = X.channels, float(X.sfreq)
        self.center_ = np.median(A, axis=(0, 2))[:, None]
        q75, q25 = np.percentile(A, [75, 25], axis=(0, 2))
        self.scale_ = np.where(q75 > q25, q75 - q25, 1.0)[:, None]
        subjects = sorted({str(s) for s in X.table["subject"]}) if self.subject_layers else []
        n_times = resample_fft(torch.zeros(1, 1, A.shape[2]), self.sfreq_, self.sfreq).shape[-1]
        torch.manual_seed(self.seed)
        self.model_ = BrainModule(n_times, Y.shape[1], len(subjects), self.n_spatial, self.hidden, self.depth,
                                  self.out_channels, self.sfreq, self.dropout, subjects=subjects or None)
        x, subject = self._inputs(X)
        subject = torch.zeros(len(x), dtype=torch.long) if subject is None else subject
        spec = self._spec()
        data = torch.utils.data.TensorDataset(x, subject, torch.as_tensor(Y))
        params = {**BRAIN_TRAINER, "seed": self.seed, **dict(self.trainer or {})}
        params["batch_size"] = min(int(params["batch_size"]), len(x))

        def objective(m: torch.nn.Module, batch: Any) -> torch.Tensor:
            xb, sb, yb = batch
            pred = m(xb, spec.to(xb.device), sb if m.has_subject_layers else None)
            return brain_module_loss(pred, yb, self.clip_weight, self.temperature)

        trainer = Trainer(**params, drop_last=True)
        trainer.fit(self.model_, objective, data)
        self.history_ = trainer.history
        self.model_.eval()
        self.n_features_in_ = len(self.channels_.names)
        return self

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """Predicted latents (n_epochs, embed_dim)."""
        check_is_fitted(self, "model_")
        x, subject = self._inputs(X)
        spec = self._spec()
        self.model_.eval()
        out = [self.model_(x[i:i + 256], spec, None if subject is None else subject[i:i + 256])
               for i in range(0, len(x), 256)]
        return torch.cat(out).double().numpy()
