"""MVCNet as a scikit-learn classifier (and supervised encoder): ``fit`` z-scores each channel (training statistics)
and trains :class:`~neurodecode.encoders.models.mvcnet.MVCNet` with its multi-view contrastive objective;
``predict``/``predict_proba`` classify epochs; ``transform`` gives the fused embedding, so it also serves as the
encoder of a training run. Takes arrays, an EpochSet or an ``mne.Epochs``.

May import: ``neurodecode.core``, ``neurodecode.loaders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.core.validation import fail
from neurodecode.encoders.inputs import as_array, channel_scaling, standardized

__all__ = ["MVCNetClassifier"]

#: Trainer settings of an MVCNet fit (overridden by ``trainer``)
MVCNET_TRAINER = {"max_epochs": 100, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.01, "progress": False}


class MVCNetClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Epochs ``(n_epochs, n_channels, n_times)`` → classes, with MVCNet (CNN + Transformer, multi-view contrast).

    Parameters
    ----------
    embed_dim, n_filters, kernel, pool, stride, width, patch, depth, heads, proj_dim, lambda_cv, lambda_cm,
    temperature, dropout :
        The :class:`~neurodecode.encoders.models.mvcnet.MVCNet`'s (sizes in samples).
    trainer : dict, optional
        :class:`~neurodecode.core.training.Trainer` settings over :data:`MVCNET_TRAINER`.
    seed : int
        Seeds the initialisation, the batches and the views.

    Attributes
    ----------
    model_ : MVCNet
    classes_ : ndarray
    mean_, scale_ : ndarray (n_channels, 1)
    history_ : list of dict
    """

    def __init__(self, embed_dim: int = 32, n_filters: int = 16, kernel: int = 25, pool: int = 35, stride: int = 7,
                 width: int = 32, patch: int = 16, depth: int = 2, heads: int = 4, proj_dim: int = 32,
                 lambda_cv: float = 0.1, lambda_cm: float = 0.1, temperature: float = 0.2, dropout: float = 0.5,
                 trainer: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.embed_dim = embed_dim
        self.n_filters = n_filters
        self.kernel = kernel
        self.pool = pool
        self.stride = stride
        self.width = width
        self.patch = patch
        self.depth = depth
        self.heads = heads
        self.proj_dim = proj_dim
        self.lambda_cv = lambda_cv
        self.lambda_cm = lambda_cm
        self.temperature = temperature
        self.dropout = dropout
        self.trainer = trainer
        self.seed = seed

    def _standard(self, X: Any) -> torch.Tensor:
        return standardized(X, self.mean_, self.scale_, self.model_.n_times)

    def fit(self, X: Any, y: Any) -> MVCNetClassifier:
        """Train on labelled epochs."""
        from neurodecode.core.training import Trainer
        from neurodecode.encoders.models.mvcnet import MVCNet

        A = as_array(X).astype(np.float64)
        y = np.asarray(y)
        if A.ndim != 3 or len(A) < 2 or len(y) != len(A):
            fail("X", "at least 2 epochs (n_epochs, n_channels, n_times) with one label each",
                 f"{A.shape} and {len(y)} labels")
        for name in ("mean_", "scale_", "model_"):
            self.__dict__.pop(name, None)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.dtype == object:          # string labels: a unicode array (checkpoints store no objects)
            self.classes_ = self.classes_.astype(str)
        if len(self.classes_) < 2:
            fail("y", "at least 2 classes", list(self.classes_))
        self.mean_, self.scale_ = channel_scaling(A)
        torch.manual_seed(self.seed)
        sizes = {k: getattr(self, k) for k in ("embed_dim", "n_filters", "kernel", "pool", "stride", "width",
                                                "patch", "depth", "heads", "proj_dim", "lambda_cv", "lambda_cm",
                                                "temperature", "dropout")}
        model = MVCNet(A.shape[1], A.shape[2], len(self.classes_), **sizes)
        data = torch.utils.data.TensorDataset(torch.as_tensor((A - self.mean_) / self.scale_, dtype=torch.float32),
                                              torch.as_tensor(codes, dtype=torch.long))
        params = {**MVCNET_TRAINER, "seed": self.seed, **dict(self.trainer or {})}
        params["batch_size"] = min(int(params["batch_size"]), len(A))
        views = torch.Generator().manual_seed(self.seed)
        trainer = Trainer(**params, drop_last=True)
        trainer.fit(model, lambda m, batch: m.loss(batch[0], batch[1], views), data)
        self.model_, self.history_ = model.eval(), trainer.history
        self.n_features_in_ = A.shape[1] * A.shape[2]
        return self

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_epochs, n_classes)."""
        check_is_fitted(self, "model_")
        return torch.softmax(self.model_.eval()(self._standard(X)), dim=1).double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """The fused embedding (n_epochs, 2 · embed_dim) — the classifier's input."""
        check_is_fitted(self, "model_")
        return self.model_.eval().embed(self._standard(X)).numpy().astype(np.float32)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
