"""Shared encoders from Python: build from configs, pretrain, save/load, extract features, fine-tune.

* :func:`save_model` / :func:`load_model` — a model of :mod:`neurodecode.encoders.models` as a checkpoint folder
  (safetensors weights + its config) that rebuilds it by path (models come from ``build("encoder", name)``).
* :func:`pretrain` — masked-autoencoder pretraining of a :class:`~neurodecode.encoders.models.mae.SignalMAE` on
  epochs (in memory or a lazily read store) with :class:`~neurodecode.core.training.Trainer`, reporting the held-out
  masked-reconstruction error before and after (same seeded masks).
* :class:`EncoderFeatures` — a scikit-learn transformer ``(n_epochs, n_channels, n_times) → (n_epochs, embed_dim)``
  from a trained encoder: linear probing is ``make_pipeline(EncoderFeatures(...), LogisticRegression())``, which
  :func:`neurodecode.evaluate` runs like any other pipeline.
* :class:`FineTunedEncoder` — a scikit-learn classifier/regressor that trains a head on the encoder (and the
  encoder with it unless ``freeze=True``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from neurodecode.core.docs import fill_doc
from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.encoders.models.tokenizers import SignalSpec, input_spec
from neurodecode.core.configs import build
from neurodecode.core.persistence import module_config
from neurodecode.core.estimators import TorchEstimator, trainer_settings
from neurodecode.core.registry import register
from neurodecode.core.training import Trainer, load_checkpoint, save_checkpoint

__all__ = ["EncoderFeatures", "FineTunedEncoder", "PretrainResult", "load_model", "masked_reconstruction_error",
           "pretrain", "pretrain_tokenizer", "probe_comparison", "save_model"]


def save_model(path: str | os.PathLike, model: nn.Module, overwrite: bool = False,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as a checkpoint folder (``model.safetensors`` + ``checkpoint.json`` with its config)."""
    return save_checkpoint(path, model, {"model": module_config(model), **dict(extra or {})}, overwrite=overwrite)


def load_model(path: str | os.PathLike, device: str = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_model` or by a training run (``Trainer`` checkpoints), by path."""
    meta = load_checkpoint(path)
    cfg = meta["config"].get("model")
    if cfg is None:
        raise ValueError(f"{path}: field 'config.model': expected the model's config in checkpoint.json, got keys "
                         f"{list(meta['config'])}")
    model = build("encoder", cfg)
    load_checkpoint(path, model)
    return model.to(device).eval()


def _spec(model: nn.Module, channels: Channels, sfreq: float, type_map: Mapping[str, str] | None,
          missing_positions: str, where: str) -> SignalSpec:
    encoder = getattr(model, "encoder", model)
    return input_spec(channels, sfreq, getattr(encoder, "channel_types", ()), type_map=type_map,
                      missing_positions=missing_positions, where=where)


def _batches(source: Any, indices: Sequence[int] | None, batch_size: int) -> Any:
    """Collated batches (``x``, ``subject``, ``index``) of the given epochs, in order, read through EpochDataset."""
    from neurodecode.core.datasets import EpochDataset

    data = EpochDataset(source, indices=indices, target=None)
    for start in range(0, len(data), batch_size):
        yield torch.utils.data.default_collate([data[i] for i in range(start, min(start + batch_size, len(data)))])


def _subject(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    encoder = getattr(model, "encoder", model)
    return batch["subject"] if hasattr(encoder, "subject_layers") else None


@torch.no_grad()
def masked_reconstruction_error(model: nn.Module, source: Any, indices: Sequence[int] | None = None, *,
                                batch_size: int = 64, seed: int = 0, type_map: Mapping[str, str] | None = None,
                                missing_positions: str = "error", device: str = "cpu") -> float:
    """Mean masked-reconstruction loss of a :class:`SignalMAE` on epochs, with seeded masks (comparable across
    checkpoints)."""
    spec = _spec(model, source.channels, source.sfreq, type_map, missing_positions,
                 str(getattr(source, "name", "epochs"))).to(device)
    model.eval().to(device)
    total, n = 0.0, 0
    for k, batch in enumerate(_batches(source, indices, batch_size)):
        g = torch.Generator(device).manual_seed(seed + k)
        x = batch["x"].to(device)
        subject = _subject(model, batch)
        loss = model.reconstruct(x, spec, generator=g, subject=None if subject is None else subject.to(device))["loss"]
        total += float(loss) * len(x)
        n += len(x)
    return total / n


@dataclasses.dataclass
class PretrainResult:
    """What :func:`pretrain` returns: the trained model, per-epoch history, and held-out errors."""

    model: nn.Module
    history: list[dict[str, float]]
    val_error_before: float
    val_error_after: float
    train_indices: np.ndarray
    val_indices: np.ndarray


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 <= val_fraction < 1:
        raise ValueError(f"field 'val_fraction': expected a fraction in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(val_fraction * n))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


#: Trainer settings of masked-autoencoder and tokenizer pretraining (``trainer=`` overrides them key by key;
#: ``neurodecode pretrain`` uses the same)
PRETRAIN_TRAINER: dict[str, Any] = {"max_epochs": 20, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-2}


def _trainer(trainer: Trainer | Mapping[str, Any] | None, seed: int, where: str) -> Trainer:
    """A Trainer as given, or built from a mapping over ``PRETRAIN_TRAINER`` with ``seed``."""
    if isinstance(trainer, Trainer):
        return trainer
    return Trainer(**trainer_settings(trainer, PRETRAIN_TRAINER, where, seed=int(seed)))


def pretrain_tokenizer(source: Any, tokenizer: nn.Module | str | Mapping[str, Any], *, sfreq: float,
                       trainer: Trainer | Mapping[str, Any] | None = None, val_fraction: float = 0.1,
                       seed: int = 0) -> PretrainResult:
    """Train a :class:`~neurodecode.encoders.models.mae.VQTokenizer` on the patches of unlabeled epochs.

    ``sfreq`` is the rate of the MAE that will use it (patches are cut after resampling to it). The returned
    ``val_error_*`` are the tokenizer's reconstruction + commitment losses on held-out epochs.
    """
    from neurodecode.core.datasets import EpochDataset
    from neurodecode.encoders.models.tokenizers import patchify

    if not isinstance(tokenizer, nn.Module):
        torch.manual_seed(seed)
    vq = tokenizer if isinstance(tokenizer, nn.Module) else build("tokenizer", tokenizer)
    trainer = _trainer(trainer, seed, "pretrain_tokenizer")
    train, val = _split(len(source), val_fraction, seed)

    def objective(m: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return m(patchify(batch["x"], source.sfreq, sfreq, vq.patch_len))

    @torch.no_grad()
    def val_loss() -> float:
        if not len(val):
            return float("nan")
        vq.eval()
        return float(np.mean([float(objective(vq, {"x": b["x"].to(trainer.device)})) for b in _batches(source, val, 64)]))

    before = val_loss()
    trainer.drop_last = True
    trainer.fit(vq, objective, EpochDataset(source, indices=train, target=None),
                config={"model": module_config(vq), "sfreq": sfreq})
    return PretrainResult(vq.eval(), trainer.history, before, val_loss(), train, val)


def pretrain(source: Any, model: nn.Module | str | Mapping[str, Any], *, trainer: Trainer | Mapping[str, Any] | None = None,
             val_fraction: float = 0.1, seed: int = 0, type_map: Mapping[str, str] | None = None,
             missing_positions: str = "error", tokenizer: nn.Module | None = None,
             resume: bool = False) -> PretrainResult:
    """Masked-autoencoder pretraining on unlabeled epochs.

    Parameters
    ----------
    source : EpochSet or EpochStore
        One channel set (a store is read lazily, one epoch per item).
    model : SignalMAE, or a config name / mapping for ``build("encoder", ...)`` (then initialised with ``seed``)
    trainer : Trainer or mapping of its settings
        A mapping is read over ``PRETRAIN_TRAINER``, with ``seed``. ``checkpoint_dir`` makes the run resumable (``resume=True``); checkpoints hold the model config, so
        :func:`load_model` rebuilds the result by path.
    val_fraction : float
        Epochs held out (seeded) to measure the masked-reconstruction error before and after.
    type_map, missing_positions :
        The input contract (see :func:`neurodecode.encoders.models.tokenizers.input_spec`).
    tokenizer : VQTokenizer, optional
        A trained tokenizer (:func:`pretrain_tokenizer`) whose weights are loaded into a ``target="codes"`` model.
        Without one, a ``target="codes"`` model's own tokenizer is trained first on the same training epochs
        (same trainer settings, no checkpoints) — predicting the codes of an untrained codebook would teach nothing.
    """
    from neurodecode.core.datasets import EpochDataset

    if not isinstance(model, nn.Module):
        torch.manual_seed(seed)  # the initial weights of a model built here are part of the run's seed
        model = build("encoder", model)
    if not hasattr(model, "reconstruct"):
        raise TypeError(f"field 'model': expected a masked autoencoder (SignalMAE), got {type(model).__name__}")
    if tokenizer is not None:
        if getattr(model, "tokenizer", None) is None:
            raise ValueError("field 'tokenizer': this model does not predict codes (target != 'codes')")
        model.tokenizer.load_state_dict(tokenizer.state_dict())
    trainer = _trainer(trainer, seed, "pretrain")
    if getattr(model, "target", None) == "codes" and tokenizer is None and not resume:
        from neurodecode.core.logs import logger

        settings = {k: getattr(trainer, k) for k in ("max_epochs", "batch_size", "lr", "device", "precision")}
        model.tokenizer.requires_grad_(True)                # frozen inside the MAE, trained here first
        tok = pretrain_tokenizer(source, model.tokenizer, sfreq=model.encoder.config["sfreq"],
                                 trainer=settings, val_fraction=val_fraction, seed=seed)
        model.tokenizer.requires_grad_(False)
        logger.info(f"VQ tokenizer trained first: held-out loss {tok.val_error_before:.4f} → {tok.val_error_after:.4f}")
    where = str(getattr(source, "name", "epochs"))
    spec = _spec(model, source.channels, source.sfreq, type_map, missing_positions, where)
    train, val = _split(len(source), val_fraction, seed)
    n_val = len(val)
    if len(train) < trainer.batch_size:
        raise ValueError(f"field 'batch_size': expected at most the {len(train)} training epochs, got "
                         f"{trainer.batch_size}")
    device_spec = spec.to(trainer.device)

    n_total = len(source)

    def objective(m: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        # masks keyed by (epoch index, training epoch): the same on 1 or N processes
        keys = batch["index"] + trainer.epoch * n_total + seed * 7919
        return m(batch["x"], device_spec, _subject(model, batch), keys)

    kw = {"type_map": type_map, "missing_positions": missing_positions, "device": trainer.device}
    data = EpochDataset(source, indices=train, target=None)
    encoder = getattr(model, "encoder", model)
    if getattr(encoder, "has_subject_layers", False) and not resume:
        encoder.set_subjects(data.subjects)          # layer k is the k-th subject: recorded with the model
    before = masked_reconstruction_error(model, source, val, seed=seed, **kw) if n_val else float("nan")
    trainer.drop_last = True
    trainer.fit(model, objective, data, config={"model": module_config(model), "sfreq": source.sfreq,
                                                "channels": list(source.channels.names)}, resume=resume)
    after = masked_reconstruction_error(model, source, val, seed=seed, **kw) if n_val else float("nan")
    return PretrainResult(model.eval(), trainer.history, before, after, train, val)


@register
class EncoderFeatures(TransformerMixin, BaseEstimator):
    """Pooled latents of a trained encoder as features: ``(n_epochs, n_channels, n_times) → (n_epochs, embed_dim)``.

    Parameters
    ----------
    model : path or nn.Module
        A checkpoint folder or a model (a :class:`SignalMAE`'s encoder is used).
    channels : Channels
        The channels of the epochs that will be transformed (the input contract is checked at ``fit``).
    sfreq : float
    batch_size, device : int, str
    pool : {"mean", "channels", "none"}
        Mean of all tokens (embed_dim features); mean over channels keeping the patches in time
        (n_patches × embed_dim — for time-locked responses such as ERPs); or every token (S × P × embed_dim).
    type_map, missing_positions :
        See :func:`~neurodecode.encoders.models.tokenizers.input_spec`.
    subject : str, optional
        For an encoder with subject layers, the subject of array inputs; an :class:`~neurodecode.EpochSet` input
        brings its own (the table's ``subject`` column picks each epoch's layer).

    ``fit``/``transform`` take an array ``(n_epochs, n_channels, n_times)`` or an EpochSet.
    """

    #: fit/transform read an EpochSet (subjects from its table), not only its data
    reads_epochs = True

    def __init__(self, model: Any = None, channels: Channels | None = None, sfreq: float | None = None,
                 pool: str = "mean", batch_size: int = 64, device: str = "cpu",
                 type_map: Mapping[str, str] | None = None, missing_positions: str = "error",
                 subject: str | None = None) -> None:
        self.model = model
        self.subject = subject
        self.pool = pool
        self.channels = channels
        self.sfreq = sfreq
        self.batch_size = batch_size
        self.device = device
        self.type_map = type_map
        self.missing_positions = missing_positions

    @classmethod
    def for_epochs(cls, model: Any, epochs: EpochSet, **kw: Any) -> EncoderFeatures:
        """Features for epochs like ``epochs`` (their channels and rate)."""
        return cls(model, epochs.channels, epochs.sfreq, **kw)

    def _persist(self) -> tuple[dict[str, Any], dict[str, nn.Module]]:
        """Parameters (JSON-able) and the trained encoder, for a checkpoint without pickle."""
        check_is_fitted(self, "encoder_")
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "model"}
        return params, {"model": self.encoder_}

    @classmethod
    def _restore(cls, params: Mapping[str, Any], modules: Mapping[str, nn.Module]) -> EncoderFeatures:
        return cls(model=modules["model"], **params).fit()

    def fit(self, X: Any = None, y: Any = None) -> EncoderFeatures:
        if self.pool not in ("mean", "channels", "none"):
            raise ValueError(f"field 'pool': expected 'mean', 'channels' or 'none', got {self.pool!r}")
        model = load_model(self.model, self.device) if isinstance(self.model, (str, os.PathLike)) else self.model
        if model is None or self.channels is None or self.sfreq is None:
            raise ValueError("field 'model'/'channels'/'sfreq': expected a trained model and the epochs' channels "
                             "and rate")
        self.encoder_ = getattr(model, "encoder", model).to(self.device).eval()
        self.spec_ = _spec(self.encoder_, self.channels, self.sfreq, self.type_map, self.missing_positions,
                           "channels").to(self.device)
        self.n_features_in_ = len(self.channels.names)
        return self

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        X, subject = signal_input(X, self.encoder_, self.subject)
        if X.ndim != 3 or X.shape[1] != self.spec_.n_channels:
            raise ValueError(f"field 'X': expected (n_epochs, {self.spec_.n_channels}, n_times), got {X.shape}")
        out = []
        for i in range(0, len(X), self.batch_size):
            sub = None if subject is None else subject[i:i + self.batch_size].to(self.device)
            tokens = self.encoder_.tokens(torch.as_tensor(X[i:i + self.batch_size], device=self.device), self.spec_,
                                          sub)
            pooled = {"mean": lambda t: t.mean(dim=(1, 2)), "channels": lambda t: t.mean(1).flatten(1),
                      "none": lambda t: t.flatten(1)}[self.pool](tokens)
            out.append(pooled.cpu())
        return torch.cat(out).double().numpy()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def signal_input(X: Any, encoder: nn.Module, subject: str | None = None, where: str = "X"
                 ) -> tuple[np.ndarray, torch.Tensor | None]:
    """The float32 array ``(n_epochs, n_channels, n_times)`` of ``X`` (an array or an EpochSet) and, for an
    encoder with subject layers, each epoch's layer index (from the EpochSet's subject column, else ``subject``)."""
    names = None
    if isinstance(X, EpochSet):
        names = [None if pd.isna(v) else str(v) for v in X.table["subject"]]
        X = X.data
    X = np.array(X, dtype=np.float32)
    if not getattr(encoder, "has_subject_layers", False):
        return X, None
    if names is None or None in names:
        if subject is None:
            raise ValueError(f"field '{where}': this encoder has subject layers {encoder.config.get('subjects')}; "
                             "pass the EpochSet (its table's subject column picks each epoch's layer) or set "
                             "subject=NAME")
        names = [subject if n is None else n for n in (names or [None] * len(X))]
    return X, encoder.subject_index(names, where)


class _Head(nn.Module):
    """Encoder → pooled tokens (mean, or mean over channels keeping ``n_patches`` in time) → linear head."""

    def __init__(self, encoder: nn.Module, n_outputs: int, dropout: float, pool: str, n_patches: int) -> None:
        super().__init__()
        self.encoder, self.pool = encoder, pool
        width = encoder.embed_dim * (n_patches if pool == "channels" else 1)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Dropout(dropout), nn.Linear(width, n_outputs))

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.encoder.tokens(x, spec, subject)
        return self.head(tokens.mean(dim=(1, 2)) if self.pool == "mean" else tokens.mean(1).flatten(1))


@fill_doc
@register
class FineTunedEncoder(ClassifierMixin, TorchEstimator):
    """A pretrained encoder with a classification (or regression) head, trained end to end or frozen.

    Parameters
    ----------
    model : path or nn.Module
        Pretrained model (a :class:`SignalMAE`'s encoder is used); it is copied, never modified.
    channels, sfreq :
        The epochs' channels and rate.
    task : {"classification", "regression"}
    freeze : bool
        Train only the head (linear probing in torch).
    pool : {"mean", "channels"}
        Head input: the mean token, or the channel-mean token of each patch (keeps time; fixed epoch length).
    dropout : float
    %(trainer)s
    type_map, missing_positions :
        See :func:`~neurodecode.encoders.models.tokenizers.input_spec`.
    subject : str, optional
        As :class:`EncoderFeatures`: the subject of array inputs for an encoder with subject layers (an EpochSet
        input brings its own).
    seed, device :
        Seeds the head's initialisation and the batches; where it trains and predicts.
    """

    reads_epochs = True
    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 10, "batch_size": 32, "lr": 1e-3,
                                                     "weight_decay": 1e-2}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **TorchEstimator._parameter_constraints, "task": ("classification", "regression"),
        "pool": ("mean", "channels"), "freeze": bool}

    def __init__(self, model: Any = None, channels: Channels | None = None, sfreq: float | None = None,
                 task: str = "classification", freeze: bool = False, pool: str = "mean", dropout: float = 0.1,
                 trainer: Mapping[str, Any] | None = None, type_map: Mapping[str, str] | None = None,
                 missing_positions: str = "error", subject: str | None = None, seed: int = 0,
                 device: str = "cpu") -> None:
        self.model = model
        self.subject = subject
        self.channels = channels
        self.sfreq = sfreq
        self.task = task
        self.freeze = freeze
        self.pool = pool
        self.dropout = dropout
        self.trainer = trainer
        self.type_map = type_map
        self.missing_positions = missing_positions
        self.seed = seed
        self.device = device

    def _prepare(self, X: Any, y: Any) -> tuple[torch.Tensor, ...]:
        model = load_model(self.model) if isinstance(self.model, (str, os.PathLike)) else self.model
        self._encoder = copy.deepcopy(getattr(model, "encoder", model))
        X, subject = signal_input(X, self._encoder, self.subject)
        self._subject_layers = getattr(self._encoder, "has_subject_layers", False)
        y = np.asarray(y)
        device = self._settings()["device"]
        self.spec_ = _spec(self._encoder, self.channels, self.sfreq, self.type_map, self.missing_positions,
                           "channels").to(device)
        if self.task == "classification":
            self.classes_, codes = np.unique(y, return_inverse=True)
            target = torch.as_tensor(codes, dtype=torch.long)
        else:
            target = torch.as_tensor(y.reshape(len(y), -1), dtype=torch.float32)
        first = None if subject is None else subject[:1].to(device)
        with torch.no_grad():
            self._n_patches = self._encoder.to(device).tokens(torch.as_tensor(X[:1], device=device), self.spec_,
                                                              first).shape[2]
        self.n_features_in_ = X.shape[1]
        subject = torch.zeros(len(X), dtype=torch.long) if subject is None else subject
        return torch.as_tensor(X), subject, target

    def _build(self, tensors: tuple[torch.Tensor, ...]) -> nn.Module:
        target = tensors[2]
        n_out = len(self.classes_) if self.task == "classification" else target.shape[1]
        net = _Head(self._encoder, n_out, self.dropout, self.pool, self._n_patches)
        if self.freeze:
            net.encoder.requires_grad_(False)
        del self._encoder
        return net

    def _loss(self, model: nn.Module, batch: Any, trainer: Any) -> torch.Tensor:
        xb, sb, yb = batch
        out = model(xb, self.spec_, sb if self._subject_layers else None)
        if self.task == "classification":
            return nn.functional.cross_entropy(out, yb)
        return nn.functional.mse_loss(out, yb)

    def fit(self, X: Any, y: Any, resume: bool = False) -> FineTunedEncoder:
        """Train the head (and, unless ``freeze``, the encoder) on labelled epochs (array or EpochSet)."""
        return super().fit(X, y, resume)

    @property
    def net_(self) -> nn.Module:
        """The trained encoder + head (``model_``; the 0.2 name)."""
        return self.model_

    @torch.no_grad()
    def _outputs(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X, subject = signal_input(X, self.model_.encoder, self.subject)
        device = self.spec_.types.device
        X = torch.as_tensor(X, device=device)
        return torch.cat([self.model_(X[i:i + 64], self.spec_,
                                    None if subject is None else subject[i:i + 64].to(device)).cpu()
                          for i in range(0, len(X), 64)])

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba is for task='classification'")
        return self._outputs(X).softmax(-1).double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        out = self._outputs(X)
        if self.task == "classification":
            return self.classes_[out.argmax(-1).numpy()]
        out = out.double().numpy()
        return out[:, 0] if out.shape[1] == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def probe_comparison(model: nn.Module, epochs: EpochSet, *, untrained: nn.Module | None = None,
                     target: str = "label", pool: str = "mean", recipe: str = "tangent_space", n_splits: int = 5,
                     seed: int = 42, device: str | None = None) -> dict[str, np.ndarray]:
    """A pretrained encoder's linear probe beside its controls, on the same stratified folds of labelled epochs.

    Probes are frozen features → standardisation → logistic regression (C = 0.01), scored by balanced accuracy:
    ``"pretrained"`` (``model``), ``"untrained"`` (``untrained``: the same architecture before pretraining — what
    the pretraining added), and ``"<recipe> + LR"`` (the plain feature recipe of ``conf/features`` with logistic
    regression — what a user would run instead).

    Parameters
    ----------
    epochs : EpochSet (n_epochs, n_channels, n_times) with a ``target`` column.
    pool : the encoder features' pooling (:class:`EncoderFeatures`).

    Returns
    -------
    dict of str to ndarray (n_splits,)
        Per-fold balanced accuracy of each probe.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neurodecode.encoders.features import make_recipe

    if target not in epochs.table.columns or epochs.table[target].isna().any():
        raise ValueError(f"field 'table.{target}': expected a label for every epoch to probe the encoder")
    y = epochs.table[target].astype(str).to_numpy()
    counts = pd.Series(y).value_counts()
    if len(counts) < 2 or counts.min() < n_splits:
        raise ValueError(f"field 'table.{target}': expected at least 2 classes with {n_splits} epochs each to probe "
                         f"the encoder, got {counts.to_dict()}")
    X = epochs.data.astype(np.float64)
    cv = StratifiedKFold(n_splits, shuffle=True, random_state=seed)

    def probe(m: nn.Module) -> Any:
        return make_pipeline(EncoderFeatures.for_epochs(m, epochs, pool=pool, device=device), StandardScaler(),
                             LogisticRegression(max_iter=2000, C=0.01))

    plain = Pipeline(make_recipe(recipe).steps + [("lr", LogisticRegression(max_iter=1000))])
    out = {"pretrained": probe(model)}
    if untrained is not None:
        out["untrained"] = probe(untrained)
    out[f"{recipe} + LR"] = plain
    return {name: cross_val_score(est, X, y, cv=cv, scoring="balanced_accuracy") for name, est in out.items()}
