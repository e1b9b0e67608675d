"""β-VAE features of epochs: a scikit-learn transformer around :class:`~neurodecode.encoders.models.vae.BetaVAE`.

``fit`` z-scores each channel (training statistics) and trains the β-VAE on the epochs (unsupervised; labels are
ignored); ``transform`` gives each epoch's latent mean ``(n_epochs, latent_dim)``; ``reconstruct`` gives the
decoded epochs in the input's units — single trials denoised towards what the latent keeps.

May import: ``neurodecode.core``, ``neurodecode.loaders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.core.validation import fail
from neurodecode.encoders.inputs import as_array, channel_scaling, standardized

__all__ = ["BetaVAEFeatures"]

#: Trainer settings of a β-VAE fit (overridden by ``trainer``)
VAE_TRAINER = {"max_epochs": 100, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0, "progress": False}


class BetaVAEFeatures(TransformerMixin, BaseEstimator):
    """Epochs ``(n_epochs, n_channels, n_times)`` → β-VAE latent means ``(n_epochs, latent_dim)``.

    Parameters
    ----------
    latent_dim, hidden, kernel, beta :
        The :class:`~neurodecode.encoders.models.vae.BetaVAE`'s.
    trainer : dict, optional
        :class:`~neurodecode.core.training.Trainer` settings over :data:`VAE_TRAINER`.
    seed : int
        Seeds the initialisation and the batches.

    Attributes
    ----------
    model_ : BetaVAE
    mean_, scale_ : ndarray (n_channels, 1)
        Per-channel statistics of the training epochs.
    history_ : list of dict
        The Trainer's per-epoch log (``train_loss``).
    """

    def __init__(self, latent_dim: int = 16, hidden: int = 64, kernel: int = 7, beta: float = 4.0,
                 trainer: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.kernel = kernel
        self.beta = beta
        self.trainer = trainer
        self.seed = seed

    def _standard(self, X: Any) -> torch.Tensor:
        return standardized(X, self.mean_, self.scale_, self.model_.n_times)

    def fit(self, X: Any, y: Any = None) -> BetaVAEFeatures:
        """Train on epochs (labels ignored)."""
        from neurodecode.core.training import Trainer
        from neurodecode.encoders.models.vae import BetaVAE

        A = as_array(X).astype(np.float64)
        if A.ndim != 3 or len(A) < 2:
            fail("X", "at least 2 epochs (n_epochs, n_channels, n_times)", A.shape)
        for name in ("mean_", "scale_", "model_"):
            self.__dict__.pop(name, None)
        self.mean_, self.scale_ = channel_scaling(A)
        torch.manual_seed(self.seed)
        model = BetaVAE(A.shape[1], A.shape[2], self.latent_dim, self.hidden, self.kernel, self.beta)
        data = torch.utils.data.TensorDataset(torch.as_tensor((A - self.mean_) / self.scale_, dtype=torch.float32))
        params = {**VAE_TRAINER, "seed": self.seed, **dict(self.trainer or {})}
        params["batch_size"] = min(int(params["batch_size"]), len(A))
        trainer = Trainer(**params, drop_last=True)
        trainer.fit(model, lambda m, batch: m.loss(batch[0]), data)
        self.model_, self.history_ = model.eval(), trainer.history
        self.n_features_in_ = A.shape[1] * A.shape[2]
        return self

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """Latent means (n_epochs, latent_dim)."""
        check_is_fitted(self, "model_")
        return self.model_.encode(self._standard(X))[0].numpy().astype(np.float32)

    @torch.no_grad()
    def reconstruct(self, X: Any) -> np.ndarray:
        """Decoded epochs (n_epochs, n_channels, n_times) in the input's units (from the latent means)."""
        check_is_fitted(self, "model_")
        z = self.model_.encode(self._standard(X))[0]
        return self.model_.decode(z).double().numpy() * self.scale_ + self.mean_
