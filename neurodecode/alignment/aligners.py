"""Alignment of brain features with a target space: closed-form ridge and a learned (contrastive) mapper.

Both map brain features ``(n_samples, n_features)`` (e.g. voxels of single-trial responses) to targets
``(n_samples, n_targets)`` (pixels, image or text embeddings) with scikit-learn's ``fit``/``predict``.

* :class:`RidgeAlignment` — the baseline. The regularisation is chosen per target (or shared) by efficient
  leave-one-out or k-fold cross-validation on one eigendecomposition of the Gram matrix, so dozens of alphas cost
  about one fit; it runs on CPU or GPU (``device``) in float64.
* :class:`LearnedAlignment` — a torch backbone (MindEye's residual MLP by default, or any module) trained by
  :class:`~neurodecode.core.training.Trainer` with MSE plus a contrastive loss (InfoNCE, SoftCLIP, BiMixCo as a warm-up as
  in MindEye) whose negatives are gathered across processes; saved and loaded as a safetensors checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.core.docs import fill_doc
from neurodecode.core.estimators import Interval, TorchEstimator, check_params
from neurodecode.core.registry import register

__all__ = ["IdentityAlignment", "LearnedAlignment", "PriorAlignment", "RidgeAlignment", "TwoStageAlignment", "encoding_scores",
           "select_voxels", "target_groups", "voxel_correlations"]

#: the default penalty grid (on standardised features)
ALPHAS = tuple(np.logspace(-2, 6, 17))


def target_groups(Y: np.ndarray) -> np.ndarray:
    """One group id per row of ``Y (n_samples, n_targets)``: rows with identical targets (a stimulus's repeats)
    share one, so that cross-validation folds grouped by it never put a stimulus on both sides."""
    return np.unique(np.asarray(Y).round(12), axis=0, return_inverse=True)[1].ravel()


def as_2d(X: Any, name: str) -> np.ndarray:
    """``X`` as a finite float64 ``(n_samples, n_features)`` array (an EpochSet's channels × times flattened)."""
    if hasattr(X, "data") and hasattr(X, "channels"):  # an EpochSet: channels × times flattened
        X = X.data.reshape(X.n_epochs, -1)
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"field '{name}': expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"field '{name}': expected finite values, got NaN or Inf")
    return X


@register
class RidgeAlignment(RegressorMixin, BaseEstimator):
    """Ridge regression from brain features to a target space, with the penalty chosen by cross-validation.

    Parameters
    ----------
    alphas : sequence of float
        Candidate penalties (on standardised features).
    alpha_per_target : bool
        Choose one alpha per target column (MindEye-style voxel→embedding ridge often benefits) or one for all.
    cv : int or None
        None: exact leave-one-out (from the eigendecomposition of the Gram matrix); an int: k-fold with
        contiguous folds.
    standardize : bool
        Z-score the features (statistics from ``fit``); targets are centred.
    device : str, optional
        torch device.
    select_voxels : int, optional
        Decode from the ``select_voxels`` features (voxels) that an encoding model predicts best from the targets
        (:func:`~neurodecode.alignment.encoding_models.select_voxels`: 5-fold cross-validated ridge, training trials only).

    Attributes
    ----------
    voxels_ : ndarray of int or None
        The selected feature columns (``select_voxels``).
    coef_ : ndarray (n_targets, n_features)
    intercept_ : ndarray (n_targets,)
    alpha_ : ndarray (n_targets,)
    cv_scores_ : ndarray (n_alphas, n_targets)
        Cross-validated squared error of each alpha and target.
    """

    def __init__(self, alphas: Sequence[float] = ALPHAS, alpha_per_target: bool = False,
                 cv: int | None = None, standardize: bool = True, device: str | None = None,
                 select_voxels: int | None = None) -> None:
        self.alphas = alphas
        self.alpha_per_target = alpha_per_target
        self.cv = cv
        self.standardize = standardize
        self.device = device
        self.select_voxels = select_voxels

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float64, device=self.device or "cpu")

    def fit(self, X: Any, y: Any) -> RidgeAlignment:
        X, Y = as_2d(X, "X"), as_2d(np.asarray(y).reshape(len(y), -1) if np.ndim(y) == 1 else y, "y")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"field 'y': expected one target row per sample ({X.shape[0]}), got {Y.shape[0]}")
        if X.shape[0] < 3:
            raise ValueError(f"field 'X': expected at least 3 samples for cross-validation, got {X.shape[0]}")
        alphas = np.asarray(self.alphas, dtype=np.float64)
        if alphas.ndim != 1 or len(alphas) == 0 or (alphas <= 0).any():
            raise ValueError(f"field 'alphas': expected positive penalties, got {self.alphas}")
        self.n_features_in_ = X.shape[1]
        self.voxels_ = None
        if self.select_voxels is not None:
            self.voxels_ = np.sort(select_voxels(Y, X, self.select_voxels, alphas=tuple(alphas)))
            X = X[:, self.voxels_]
        self.x_mean_ = X.mean(0)
        self.x_scale_ = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.x_scale_[self.x_scale_ == 0] = 1.0
        self.y_mean_ = Y.mean(0)
        Xs, Yc = self._t((X - self.x_mean_) / self.x_scale_), self._t(Y - self.y_mean_)
        errors = self._cv_errors(Xs, Yc, alphas)  # (n_alphas, n_targets)
        best = errors.argmin(0) if self.alpha_per_target else np.full(Y.shape[1], errors.mean(1).argmin())
        self.alpha_ = alphas[best]
        self.cv_scores_ = errors
        # dual solution on the full data: W = X^T (K + a I)^-1 Y, one eigendecomposition of K = X X^T
        evals, U = torch.linalg.eigh(Xs @ Xs.T)
        UtY = U.T @ Yc
        coef = torch.empty((Y.shape[1], X.shape[1]), dtype=torch.float64, device=Xs.device)
        for a in np.unique(self.alpha_):
            cols = torch.as_tensor(np.flatnonzero(self.alpha_ == a), device=Xs.device)
            dual = U @ (UtY[:, cols] / (evals + a)[:, None])
            coef[cols] = (Xs.T @ dual).T
        self.coef_ = (coef / self._t(self.x_scale_)).cpu().numpy()
        self.intercept_ = self.y_mean_ - self.coef_ @ self.x_mean_
        return self

    def _cv_errors(self, Xs: torch.Tensor, Yc: torch.Tensor, alphas: np.ndarray) -> np.ndarray:
        n = Xs.shape[0]
        if self.cv is None:  # exact leave-one-out: (I - H) y / diag(I - H), H = 11^T/n + K (K + a I)^-1 (centred)
            evals, U = torch.linalg.eigh(Xs @ Xs.T)
            UtY = U.T @ Yc
            out = []
            for a in alphas:
                shrink = evals / (evals + a)
                fitted = U @ (UtY * shrink[:, None])
                h = (U**2 @ shrink) + 1.0 / n  # the intercept's leverage
                resid = (Yc - fitted) / (1 - h)[:, None]
                out.append((resid**2).mean(0))
            return torch.stack(out).cpu().numpy()
        k = int(self.cv)
        if not 2 <= k <= n:
            raise ValueError(f"field 'cv': expected None or 2 <= folds <= n_samples = {n}, got {self.cv}")
        folds = np.array_split(np.arange(n), k)
        out = torch.zeros((len(alphas), Yc.shape[1]), dtype=torch.float64, device=Xs.device)
        for test in folds:
            train = np.setdiff1d(np.arange(n), test)
            Xtr, Ytr = Xs[train], Yc[train]
            mu_x, mu_y = Xtr.mean(0), Ytr.mean(0)
            Xtr, Ytr, Xte = Xtr - mu_x, Ytr - mu_y, Xs[test] - mu_x
            evals, U = torch.linalg.eigh(Xtr @ Xtr.T)
            UtY, KteU = U.T @ Ytr, (Xte @ Xtr.T) @ U
            for j, a in enumerate(alphas):
                pred = KteU @ (UtY / (evals + a)[:, None]) + mu_y
                out[j] += ((Yc[test] - pred) ** 2).sum(0)
        return (out / n).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets)."""
        check_is_fitted(self, "coef_")
        X = as_2d(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"field 'X': expected {self.n_features_in_} features as in fit, got {X.shape[1]}")
        if getattr(self, "voxels_", None) is not None:
            X = X[:, self.voxels_]
        return X @ self.coef_.T + self.intercept_


@register
class IdentityAlignment(RegressorMixin, BaseEstimator):
    """No mapping: for encoders that already predict the target latents (a brain module trained end to end onto
    the target space). ``fit`` checks that the features have the target's size; ``predict`` returns them."""

    def fit(self, X: Any, y: Any) -> IdentityAlignment:
        X, Y = as_2d(X, "X"), as_2d(y, "y")
        if X.shape != Y.shape:
            raise ValueError(f"field 'X': aligner=identity expects features that are the target latents "
                             f"{Y.shape}, got {X.shape} (an encoder fitted onto the target space, e.g. "
                             "encoder=brain_module; otherwise use aligner=ridge)")
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        X = as_2d(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"field 'X': expected {self.n_features_in_} features as in fit, got {X.shape[1]}")
        return X


def voxel_correlations(pred: Any, true: Any) -> np.ndarray:
    """Pearson r between predicted and measured responses of each voxel over trials, shape (n_voxels,) (NaN for a
    voxel constant in either)."""
    P, T = as_2d(pred, "pred"), as_2d(true, "true")
    if P.shape != T.shape:
        raise ValueError(f"field 'pred': expected the shape of 'true' {T.shape}, got {P.shape}")
    P, T = P - P.mean(0), T - T.mean(0)
    den = np.sqrt((P**2).sum(0) * (T**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (P * T).sum(0) / np.where(den > 0, den, 1.0), np.nan)


def encoding_scores(features: Any, responses: Any, *, cv: int = 5, alphas: Sequence[float] = ALPHAS,
                    seed: int = 0, device: str | None = None) -> np.ndarray:
    """Cross-validated r of every voxel: ridge with a penalty per voxel (as
    :class:`~neurodecode.alignment.encoding_models.RidgeEncodingModel`) fitted on k-1 folds of the trials (shuffled with ``seed``:
    trials are often sorted by condition) predicts the k-th; the out-of-fold predictions are correlated with the
    responses. Shape (n_voxels,)."""
    X, Y = as_2d(features, "features"), as_2d(responses, "responses")
    if len(X) != len(Y):
        raise ValueError(f"field 'features': expected one row per trial ({len(Y)}), got {len(X)}")
    if not 2 <= int(cv) <= len(X) // 2:
        raise ValueError(f"field 'cv': expected 2 <= folds <= n_trials / 2 = {len(X) // 2}, got {cv}")
    pred = np.empty_like(Y)
    for test in np.array_split(np.random.default_rng(seed).permutation(len(X)), int(cv)):
        train = np.setdiff1d(np.arange(len(X)), test)
        ridge = RidgeAlignment(alphas, alpha_per_target=True, device=device).fit(X[train], Y[train])
        pred[test] = ridge.predict(X[test])
    return voxel_correlations(pred, Y)


def select_voxels(features: Any, responses: Any, n_voxels: int, *, cv: int = 5,
                  alphas: Sequence[float] = ALPHAS, seed: int = 0) -> np.ndarray:
    """Indices of the ``n_voxels`` voxels with the highest :func:`encoding_scores` (in decreasing order)."""
    Y = as_2d(responses, "responses")
    if not isinstance(n_voxels, (int, np.integer)) or not 1 <= n_voxels <= Y.shape[1]:
        raise ValueError(f"field 'n_voxels': expected an integer in [1, {Y.shape[1]}], got {n_voxels!r}")
    r = np.nan_to_num(encoding_scores(features, Y, cv=cv, alphas=alphas, seed=seed), nan=-np.inf)
    return np.argsort(-r, kind="stable")[: int(n_voxels)]


CONTRASTIVE = ("infonce", "softclip", None)


class _Aligner(torch.nn.Module):
    """A network between standardised inputs and targets; the statistics are buffers, saved with the weights."""

    def __init__(self, net: torch.nn.Module, n_features: int, n_targets: int) -> None:
        super().__init__()
        self.net = net
        for name, size in (("x_mean", n_features), ("x_scale", n_features), ("y_mean", n_targets),
                           ("y_scale", n_targets)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))

    def std_y(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.y_mean) / self.y_scale

    def unstd_y(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.y_scale + self.y_mean

    def std_x(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.x_mean) / self.x_scale

    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        """The network on standardised inputs (and extra arguments), in the standardised target space."""
        return self.net(self.std_x(x), *args)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The :class:`_Aligner` inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


class _TorchAlignment(RegressorMixin, TorchEstimator):
    """fit / predict / save / load around a torch network, on the one trainable-estimator base.

    Subclasses define ``_network(n_features, n_targets)``, ``_loss(model, batch, trainer)`` (the objective over
    ``(x, y)`` batches, through the :class:`_Aligner`) and ``_predict(aligner, x, start)`` (standardised target
    space).
    """

    _deprecated_trainer_params: ClassVar[Mapping[str, str]] = {
        k: k for k in ("max_epochs", "batch_size", "lr", "weight_decay", "precision", "checkpoint_dir")}
    _parameter_constraints: ClassVar[dict[str, Any]] = {**TorchEstimator._parameter_constraints,
                                                        "standardize": bool}

    def _prepare(self, X: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        X = as_2d(X, "X")
        Y = as_2d(np.asarray(y).reshape(len(y), -1) if np.ndim(y) == 1 else y, "y")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"field 'y': expected one target row per sample ({X.shape[0]}), got {Y.shape[0]}")
        self.n_features_in_, self._n_targets = X.shape[1], Y.shape[1]
        self._stats = None
        if self.standardize:
            sx, sy = X.std(0), Y.std(0)
            self._stats = (X.mean(0), np.where(sx > 0, sx, 1.0), Y.mean(0), np.where(sy > 0, sy, 1.0))
        return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32)

    def _build(self, tensors: tuple[torch.Tensor, ...]) -> _Aligner:
        n_features, n_targets = tensors[0].shape[1], tensors[1].shape[1]
        model = _Aligner(self._network(n_features, n_targets), n_features, n_targets)
        if self._stats is not None:
            for name, value in zip(("x_mean", "x_scale", "y_mean", "y_scale"), self._stats):
                getattr(model, name).copy_(torch.as_tensor(value))
        return model

    def fit(self, X: Any, y: Any, resume: bool = False) -> _TorchAlignment:
        """Train on brain features ``X (n_samples, n_features)`` and targets ``y (n_samples, n_targets)``.

        ``resume=True`` continues an interrupted run from ``trainer['checkpoint_dir']``.
        """
        return super().fit(X, y, resume)

    def _checkpoint_config(self) -> dict[str, Any]:
        return self._config(self.n_features_in_, self._n_targets)

    def _config(self, n_features: int, n_targets: int) -> dict[str, Any]:
        params = {k: v for k, v in self.get_params().items() if k != "backbone"}
        return {"_target_": f"{type(self).__module__}.{type(self).__name__}", "params": params,
                "n_features": n_features, "n_targets": n_targets,
                "custom_backbone": getattr(self, "backbone", None) is not None}

    @torch.no_grad()
    def predict(self, X: Any, batch_size: int = 1024) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets)."""
        check_is_fitted(self, "model_")
        check_params(self)
        X = as_2d(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"field 'X': expected {self.n_features_in_} features as in fit, got {X.shape[1]}")
        self.model_.eval()
        dev = self.model_.x_mean.device
        out = []
        for i in range(0, len(X), batch_size):
            x = torch.as_tensor(X[i:i + batch_size], dtype=torch.float32, device=dev)
            out.append(self.model_.unstd_y(self._predict(self.model_, x, i)).double().cpu())
        return torch.cat(out).numpy()

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the trained aligner as a checkpoint component folder (``component.json`` and ``model/``:
        safetensors weights + JSON config; no pickle)."""
        from neurodecode.core.persistence import write_component

        check_is_fitted(self, "model_")
        return write_component(self, path, overwrite=overwrite)

    def _save_to(self, folder: Path) -> None:
        from neurodecode.core.training import save_checkpoint

        save_checkpoint(Path(folder) / "model", self.model_,
                        self._config(self.n_features_in_, self.model_.y_mean.numel()))

    @classmethod
    def _load_from(cls, folder: Path, device: str = "cpu") -> _TorchAlignment:
        return cls.load(folder, device=device)

    @classmethod
    def load(cls, path: str | os.PathLike, backbone: Callable[[int, int], torch.nn.Module] | None = None,
             device: str = "cpu") -> _TorchAlignment:
        """Rebuild an aligner written by :meth:`save` (pass ``backbone`` again if a custom one was used); a folder
        of the 0.2 layout (``checkpoint.json`` at its top) loads too."""
        from neurodecode.core.registry import current_path
        from neurodecode.core.training import load_checkpoint

        path = Path(path)
        root = path / "model" if (path / "component.json").is_file() else path
        meta = load_checkpoint(root)
        cfg, target = meta["config"], f"{cls.__module__}.{cls.__name__}"
        if current_path(cfg.get("_target_")) != target:
            raise ValueError(f"{path}: field '_target_': expected {target!r}, got {cfg.get('_target_')!r}")
        if cfg["custom_backbone"] and backbone is None:
            raise ValueError(f"{path}: this model was trained with a custom backbone; pass backbone= to rebuild it")
        extra = {"backbone": backbone} if "backbone" in cls._get_param_names() else {}
        params = dict(cfg["params"])
        moved = {key: params.pop(k) for k, key in cls._deprecated_trainer_params.items() if params.get(k) is not None}
        if moved:              # a checkpoint saved before the trainer= convention: its settings, as they are now
            params["trainer"] = {**moved, **dict(params.get("trainer") or {})}
        est = cls(**extra, **{**params, "device": device})
        est._stats = None
        est.model_ = est._build((torch.zeros(0, cfg["n_features"]), torch.zeros(0, cfg["n_targets"])))
        load_checkpoint(root, est.model_)
        est.model_.to(device).eval()
        est.n_features_in_, est.history_ = cfg["n_features"], []
        return est


@fill_doc
@register
class LearnedAlignment(_TorchAlignment):
    """A trained mapper from brain features to a target space (MindEye's recipe, any backbone).

    The loss is ``mse_weight · MSE + contrastive_weight · contrastive`` on standardised targets; during the first
    ``mixco_fraction`` of the epochs the contrastive term is BiMixCo on mixed inputs (MindEye) and the MSE is taken
    on the unmixed items only.

    Parameters
    ----------
    backbone : callable, optional
        ``backbone(n_features, n_targets) -> nn.Module`` mapping (B, n_features) to (B, n_targets) — e.g. an encoder
        from :mod:`neurodecode.encoders.models` with a head. Default: :class:`~neurodecode.encoders.models.mlp.ResidualMLP` with
        ``hidden``, ``n_blocks``, ``dropout``.
    hidden, n_blocks, dropout : int, int, float
        The default backbone's size.
    mse_weight, contrastive_weight : float
    contrastive : {"softclip", "infonce", None}
    temperature : float
    mixco_fraction : float
        Fraction of the epochs trained with BiMixCo first (0: never).
    %(trainer)s
        :meth:`save` writes the final model anywhere.
    %(seed)s
    %(device)s
    standardize : bool
        Z-score inputs and targets with the training statistics (kept in the checkpoint).
    max_epochs, batch_size, lr, weight_decay, precision, checkpoint_dir :
        Deprecated (one release): pass them in ``trainer``.

    Attributes
    ----------
    model_ : nn.Module
    history_ : list of dict
        Per-epoch training losses.
    """

    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 100, "batch_size": 32, "lr": 1e-3,
                                                     "weight_decay": 1e-2}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **_TorchAlignment._parameter_constraints, "contrastive": CONTRASTIVE, "mixco_fraction": Interval(0, 1),
        "temperature": Interval(0, None, closed="neither"), "dropout": Interval(0, 1, closed="left")}

    def __init__(self, backbone: Callable[[int, int], torch.nn.Module] | None = None, hidden: int = 1024,
                 n_blocks: int = 2, dropout: float = 0.15, mse_weight: float = 1.0, contrastive: str | None = "softclip",
                 contrastive_weight: float = 1.0, temperature: float = 0.05, mixco_fraction: float = 0.0,
                 trainer: Mapping[str, Any] | None = None, seed: int = 0, device: str = "cpu",
                 standardize: bool = True, max_epochs: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, weight_decay: float | None = None, precision: str | None = None,
                 checkpoint_dir: str | None = None) -> None:
        self.backbone = backbone
        self.hidden = hidden
        self.n_blocks = n_blocks
        self.dropout = dropout
        self.mse_weight = mse_weight
        self.contrastive = contrastive
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature
        self.mixco_fraction = mixco_fraction
        self.trainer = trainer
        self.seed = seed
        self.device = device
        self.standardize = standardize
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir

    def _network(self, n_features: int, n_targets: int) -> torch.nn.Module:
        from neurodecode.encoders.models import ResidualMLP

        if self.backbone is not None:
            return self.backbone(n_features, n_targets)
        return ResidualMLP(n_features, n_targets, hidden=self.hidden, n_blocks=self.n_blocks, dropout=self.dropout)

    def _loss(self, model: torch.nn.Module, batch: Any, trainer: Any) -> dict[str, torch.Tensor]:
        from neurodecode.encoders.models.contrastive import BiMixCoLoss, InfoNCELoss, SoftCLIPLoss, mixco

        x, y = batch
        y = _unwrap(model).std_y(y)
        out: dict[str, torch.Tensor] = {}
        if trainer.epoch < round(self.mixco_fraction * trainer.max_epochs):
            xm, perm, betas, select = mixco(x)
            pred = model(xm)  # through the (DDP) wrapper: synchronised gradients
            out["bimixco"] = BiMixCoLoss(self.temperature)(pred, y, perm, betas)
            keep = ~select
            out["mse"] = torch.nn.functional.mse_loss(pred[keep], y[keep]) if keep.any() else pred.sum() * 0
            out["loss"] = self.mse_weight * out["mse"] + self.contrastive_weight * out["bimixco"]
            return out
        pred = model(x)
        out["mse"] = torch.nn.functional.mse_loss(pred, y)
        out["loss"] = self.mse_weight * out["mse"]
        if self.contrastive is not None:
            loss = {"infonce": InfoNCELoss, "softclip": SoftCLIPLoss}[self.contrastive](self.temperature)
            out["contrastive"] = loss(pred, y)
            out["loss"] = out["loss"] + self.contrastive_weight * out["contrastive"]
        return out

    def _predict(self, aligner: _Aligner, x: torch.Tensor, start: int) -> torch.Tensor:
        return aligner(x)


@register
class PriorAlignment(_TorchAlignment):
    """Brain features → target embeddings by a diffusion prior (:class:`~neurodecode.alignment.prior.DiffusionPrior`).

    The prior samples embeddings that lie where targets lie (MindEye's prior turns its mapper's output into
    CLIP image embeddings that an unCLIP decoder accepts). Give it brain features directly, or another aligner's
    predictions / an encoder's latents.

    Parameters
    ----------
    n_tokens, num_layers, num_attention_heads, attention_head_dim, timesteps, cond_drop_prob, dropout :
        The prior's size and schedule (see :class:`~neurodecode.alignment.prior.DiffusionPrior`).
    num_inference_steps : int, optional
        Sampling steps at prediction (default: ``timesteps``).
    guidance_scale : float
        Classifier-free guidance at prediction (1: none).
    n_samples : int
        Samples averaged per item at prediction (1: one draw; more approach the posterior mean).
    trainer, seed, device, standardize :
        As :class:`LearnedAlignment`. ``seed`` also seeds the sampling, so predictions are reproducible.
    max_epochs, batch_size, lr, weight_decay, precision, checkpoint_dir :
        Deprecated (one release): pass them in ``trainer``.
    """

    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 100, "batch_size": 32, "lr": 3e-4,
                                                     "weight_decay": 1e-2}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **_TorchAlignment._parameter_constraints, "n_samples": Interval(1, None, integer=True),
        "cond_drop_prob": Interval(0, 1), "timesteps": Interval(1, None, integer=True)}

    def __init__(self, n_tokens: int = 1, num_layers: int = 6, num_attention_heads: int = 8,
                 attention_head_dim: int = 64, timesteps: int = 100, cond_drop_prob: float = 0.2,
                 dropout: float = 0.0, num_inference_steps: int | None = None, guidance_scale: float = 1.0,
                 n_samples: int = 1, trainer: Mapping[str, Any] | None = None, seed: int = 0, device: str = "cpu",
                 standardize: bool = True, max_epochs: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, weight_decay: float | None = None, precision: str | None = None,
                 checkpoint_dir: str | None = None) -> None:
        self.n_tokens = n_tokens
        self.num_layers = num_layers
        self.num_attention_heads = num_attention_heads
        self.attention_head_dim = attention_head_dim
        self.timesteps = timesteps
        self.cond_drop_prob = cond_drop_prob
        self.dropout = dropout
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.n_samples = n_samples
        self.trainer = trainer
        self.seed = seed
        self.device = device
        self.standardize = standardize
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir

    def _network(self, n_features: int, n_targets: int) -> torch.nn.Module:
        from neurodecode.alignment.prior import DiffusionPrior

        return DiffusionPrior(n_features, n_targets, n_tokens=self.n_tokens, num_layers=self.num_layers,
                              num_attention_heads=self.num_attention_heads,
                              attention_head_dim=self.attention_head_dim, timesteps=self.timesteps,
                              cond_drop_prob=self.cond_drop_prob, dropout=self.dropout)

    def _loss(self, model: torch.nn.Module, batch: Any, trainer: Any) -> torch.Tensor:
        x, y = batch
        return model(x, _unwrap(model).std_y(y))

    def _predict(self, aligner: _Aligner, x: torch.Tensor, start: int) -> torch.Tensor:
        gen = torch.Generator(x.device).manual_seed(self.seed + start)  # the same draws for the same rows
        xs = aligner.std_x(x)
        draws = [aligner.net.sample(xs, self.num_inference_steps, self.guidance_scale, generator=gen)
                 for _ in range(self.n_samples)]
        return torch.stack(draws).mean(0)


@register
class TwoStageAlignment(RegressorMixin, BaseEstimator):
    """MindEye's two stages: a mapper (brain features → latents), then a diffusion prior that turns the mapper's
    outputs into embeddings that lie where the targets lie.

    The prior is trained on the mapper's **out-of-fold** predictions of the training trials (k folds grouped by
    identical targets, so a stimulus's repeats never sit on both sides) — what the mapper will give on new trials,
    not its fitted values; the mapper is then refitted on all training trials. MindEye trains both jointly.

    Parameters
    ----------
    mapper : aligner, optional
        Default :class:`LearnedAlignment` (``conf/aligner/mlp.yaml``'s settings in ``aligner=two_stage``).
    prior : PriorAlignment, optional
        Default :class:`PriorAlignment`.
    cv : int
        Folds for the out-of-fold predictions.
    """

    def __init__(self, mapper: Any = None, prior: Any = None, cv: int = 5) -> None:
        self.mapper = mapper
        self.prior = prior
        self.cv = cv

    def fit(self, X: Any, y: Any) -> TwoStageAlignment:
        from sklearn.base import clone
        from sklearn.model_selection import GroupKFold

        X = as_2d(X, "X")
        Y = as_2d(np.asarray(y).reshape(len(y), -1) if np.ndim(y) == 1 else y, "y")
        groups = target_groups(Y)
        n_groups = len(np.unique(groups))
        if not isinstance(self.cv, int) or not 2 <= self.cv <= n_groups:
            raise ValueError(f"field 'cv': expected 2 ≤ cv ≤ the {n_groups} distinct targets, got {self.cv}")
        mapper = self.mapper if self.mapper is not None else LearnedAlignment()
        oof = np.empty_like(Y)
        for tr, te in GroupKFold(n_splits=self.cv).split(X, groups=groups):
            oof[te] = clone(mapper).fit(X[tr], Y[tr]).predict(X[te])
        self.prior_ = clone(self.prior if self.prior is not None else PriorAlignment()).fit(oof, Y)
        self.mapper_ = clone(mapper).fit(X, Y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The prior's embeddings from the mapper's predictions, (n_samples, n_targets)."""
        check_is_fitted(self, "prior_")
        return self.prior_.predict(self.mapper_.predict(X))

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Both stages into one component folder (``component.json``, ``mapper/``, ``prior/``; no pickle)."""
        from neurodecode.core.persistence import write_component

        check_is_fitted(self, "prior_")
        return write_component(self, path, overwrite=overwrite)

    def _save_to(self, folder: Path) -> None:
        import json

        from neurodecode.core.persistence import save_component

        save_component(self.mapper_, Path(folder) / "mapper")
        save_component(self.prior_, Path(folder) / "prior")
        (Path(folder) / "two_stage.json").write_text(json.dumps({"cv": self.cv}))

    @classmethod
    def _load_from(cls, folder: Path, device: str = "cpu") -> TwoStageAlignment:
        return cls.load(folder, device=device)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> TwoStageAlignment:
        """Rebuild a two-stage aligner written by :meth:`save` (classes checked against the allowlist); the 0.2
        layout (``two_stage.json`` naming the mapper's class) loads too."""
        import json

        from hydra.utils import get_class

        from neurodecode.core.configs import check_targets
        from neurodecode.core.persistence import load_component, load_estimator

        path = Path(path)
        meta_path = path / "two_stage.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: missing (not a two-stage aligner folder)")
        meta = json.loads(meta_path.read_text())
        est = cls(cv=int(meta.get("cv", 5)))
        if (path / "component.json").is_file():
            est.mapper_ = load_component(path / "mapper", device=device)
            est.prior_ = load_component(path / "prior", device=device)
        else:
            if meta["mapper"] == "estimator":
                est.mapper_ = load_estimator(path, "mapper")
            else:
                check_targets({"_target_": meta["mapper"]}, f"{meta_path}: mapper")
                est.mapper_ = get_class(meta["mapper"]).load(path / "mapper", device=device)
            est.prior_ = PriorAlignment.load(path / "prior", device=device)
        est.n_features_in_ = est.mapper_.n_features_in_
        return est
