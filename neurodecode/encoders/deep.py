"""Deep encoders as scikit-learn estimators, each a :class:`~neurodecode.core.estimators.TorchEstimator` that only
says how to prepare its inputs, build its network, compute its loss and give its outputs:

* :class:`BetaVAEFeatures` — unsupervised: z-scored channels → β-VAE
  (:class:`~neurodecode.encoders.models.vae.BetaVAE`); ``transform`` gives each epoch's latent mean ``(n_epochs,
  latent_dim)``, ``reconstruct`` the decoded epochs in the input's units (single trials denoised towards what the
  latent keeps).
* :class:`MVCNetClassifier` — supervised: z-scored channels → MVCNet
  (:class:`~neurodecode.encoders.models.mvcnet.MVCNet`: CNN + Transformer, multi-view contrast);
  ``predict``/``predict_proba`` classify, ``transform`` gives the fused embedding (a training run's encoder).
* :class:`BrainModuleEncoder` — fitted onto target latents: robustly scaled sensors (median / interquartile range,
  clamped at ±20, as Défossez et al.) → the MEG/EEG brain module
  (:class:`~neurodecode.encoders.models.brain_module.BrainModule`) trained with CLIP + MSE; ``transform`` gives the
  predicted latents ``(n_epochs, embed_dim)`` (pair it with ``aligner=identity``).

All take arrays ``(n_epochs, n_channels, n_times)``, an EpochSet or an ``mne.Epochs`` (the brain module an EpochSet:
it reads channel positions and subjects), and the training settings as ``trainer=`` (a mapping over each class's
``trainer_defaults``), ``seed`` and ``device``.

May import: ``neurodecode.core``, ``neurodecode.loaders``.
"""

from __future__ import annotations

import warnings

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodecode.core.docs import fill_doc
from neurodecode.core.epochs import EpochSet
from neurodecode.core.estimators import Interval, TorchEstimator
from neurodecode.core.registry import register
from neurodecode.core.validation import fail
from neurodecode.encoders.inputs import as_array, channel_scaling, standardized

__all__ = ["BetaVAEFeatures", "BraindecodeModel", "BrainModuleEncoder", "MVCNetClassifier", "braindecode_license",
           "braindecode_models"]


def _epochs_array(X: Any, y: Any = None, labelled: bool = False) -> np.ndarray:
    """Training epochs as float64 ``(n_epochs, n_channels, n_times)``, at least 2 (with one label each)."""
    A = as_array(X).astype(np.float64)
    if A.ndim != 3 or len(A) < 2 or (labelled and (y is None or len(y) != len(A))):
        fail("X", "at least 2 epochs (n_epochs, n_channels, n_times)" + (" with one label each" if labelled else ""),
             f"{A.shape}" + (f" and {None if y is None else len(y)} labels" if labelled else ""))
    if not np.isfinite(A).all():
        fail("X", "finite values", "NaN or Inf")
    return A


class _ChannelScaled(TorchEstimator):
    """Epochs z-scored per channel with the training statistics (``mean_``, ``scale_`` of shape (n_channels, 1))."""

    def _scaled_training_epochs(self, A: np.ndarray) -> torch.Tensor:
        self.mean_, self.scale_ = channel_scaling(A)
        self.n_features_in_ = A.shape[1] * A.shape[2]
        return torch.as_tensor((A - self.mean_) / self.scale_, dtype=torch.float32)

    def _standard(self, X: Any) -> torch.Tensor:
        return standardized(X, self.mean_, self.scale_, self.model_.n_times).to(self._model_device)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


@register
class BetaVAEFeatures(TransformerMixin, _ChannelScaled):
    """Epochs ``(n_epochs, n_channels, n_times)`` → β-VAE latent means ``(n_epochs, latent_dim)``.

    Parameters
    ----------
    latent_dim, hidden, kernel, beta :
        The :class:`~neurodecode.encoders.models.vae.BetaVAE`'s.
    trainer : mapping, optional
        :class:`~neurodecode.core.training.Trainer` settings over ``trainer_defaults``.
    seed : int
        Seeds the initialisation and the batches.
    device : str

    Attributes
    ----------
    model_ : BetaVAE
    mean_, scale_ : ndarray (n_channels, 1)
        Per-channel statistics of the training epochs.
    history_ : list of dict
        The Trainer's per-epoch log (``train_loss``).
    """

    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 100, "batch_size": 64, "lr": 1e-3,
                                                     "weight_decay": 0.0}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **TorchEstimator._parameter_constraints, "latent_dim": Interval(1, None, integer=True),
        "hidden": Interval(1, None, integer=True), "kernel": Interval(1, None, integer=True),
        "beta": Interval(0, None)}

    def __init__(self, latent_dim: int = 16, hidden: int = 64, kernel: int = 7, beta: float = 4.0,
                 trainer: Mapping[str, Any] | None = None, seed: int = 0, device: str = "cpu") -> None:
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.kernel = kernel
        self.beta = beta
        self.trainer = trainer
        self.seed = seed
        self.device = device

    def _prepare(self, X: Any, y: Any) -> tuple[torch.Tensor, ...]:
        return (self._scaled_training_epochs(_epochs_array(X)),)

    def _build(self, tensors: tuple[torch.Tensor, ...]) -> torch.nn.Module:
        from neurodecode.encoders.models.vae import BetaVAE

        _, n_channels, n_times = tensors[0].shape
        return BetaVAE(n_channels, n_times, self.latent_dim, self.hidden, self.kernel, self.beta)

    def _loss(self, model: torch.nn.Module, batch: Any, trainer: Any) -> Any:
        return model.loss(batch[0])

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """Latent means (n_epochs, latent_dim)."""
        check_is_fitted(self, "model_")
        return self.model_.encode(self._standard(X))[0].cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def reconstruct(self, X: Any) -> np.ndarray:
        """Decoded epochs (n_epochs, n_channels, n_times) in the input's units (from the latent means)."""
        check_is_fitted(self, "model_")
        z = self.model_.encode(self._standard(X))[0]
        return self.model_.decode(z).double().cpu().numpy() * self.scale_ + self.mean_


@register
class MVCNetClassifier(ClassifierMixin, TransformerMixin, _ChannelScaled):
    """Epochs ``(n_epochs, n_channels, n_times)`` → classes, with MVCNet (CNN + Transformer, multi-view contrast).

    Parameters
    ----------
    embed_dim, n_filters, kernel, pool, stride, width, patch, depth, heads, proj_dim, lambda_cv, lambda_cm,
    temperature, dropout :
        The :class:`~neurodecode.encoders.models.mvcnet.MVCNet`'s (sizes in samples).
    trainer : mapping, optional
        :class:`~neurodecode.core.training.Trainer` settings over ``trainer_defaults``.
    seed : int
        Seeds the initialisation, the batches and the views.
    device : str

    Attributes
    ----------
    model_ : MVCNet
    classes_ : ndarray
    mean_, scale_ : ndarray (n_channels, 1)
    history_ : list of dict
    """

    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 100, "batch_size": 16, "lr": 1e-3,
                                                     "weight_decay": 0.01}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **TorchEstimator._parameter_constraints, "embed_dim": Interval(1, None, integer=True),
        "lambda_cv": Interval(0, None), "lambda_cm": Interval(0, None),
        "temperature": Interval(0, None, closed="neither"), "dropout": Interval(0, 1, closed="left")}

    def __init__(self, embed_dim: int = 32, n_filters: int = 16, kernel: int = 25, pool: int = 35, stride: int = 7,
                 width: int = 32, patch: int = 16, depth: int = 2, heads: int = 4, proj_dim: int = 32,
                 lambda_cv: float = 0.1, lambda_cm: float = 0.1, temperature: float = 0.2, dropout: float = 0.5,
                 trainer: Mapping[str, Any] | None = None, seed: int = 0, device: str = "cpu") -> None:
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
        self.device = device

    def _prepare(self, X: Any, y: Any) -> tuple[torch.Tensor, ...]:
        y = None if y is None else np.asarray(y)
        A = _epochs_array(X, y, labelled=True)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.dtype == object:          # string labels: a unicode array (checkpoints store no objects)
            self.classes_ = self.classes_.astype(str)
        if len(self.classes_) < 2:
            fail("y", "at least 2 classes", [str(c) for c in self.classes_], type(self).__name__)
        self._views = torch.Generator().manual_seed(int(self.seed))
        return self._scaled_training_epochs(A), torch.as_tensor(codes, dtype=torch.long)

    def _build(self, tensors: tuple[torch.Tensor, ...]) -> torch.nn.Module:
        from neurodecode.encoders.models.mvcnet import MVCNet

        _, n_channels, n_times = tensors[0].shape
        sizes = {k: getattr(self, k) for k in ("embed_dim", "n_filters", "kernel", "pool", "stride", "width",
                                                "patch", "depth", "heads", "proj_dim", "lambda_cv", "lambda_cm",
                                                "temperature", "dropout")}
        return MVCNet(n_channels, n_times, len(self.classes_), **sizes)

    def _loss(self, model: torch.nn.Module, batch: Any, trainer: Any) -> Any:
        return model.loss(batch[0], batch[1], self._views)

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_epochs, n_classes)."""
        check_is_fitted(self, "model_")
        return torch.softmax(self.model_.eval()(self._standard(X)), dim=1).double().cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Classes (n_epochs,)."""
        return self.classes_[self.predict_proba(X).argmax(1)]

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """The fused embedding (n_epochs, 2 · embed_dim) — the classifier's input."""
        check_is_fitted(self, "model_")
        return self.model_.eval().embed(self._standard(X)).cpu().numpy().astype(np.float32)


def _epoch_set(X: Any) -> EpochSet:
    if not isinstance(X, EpochSet):
        fail("X", "an EpochSet (the brain module reads its channel positions and subjects)", type(X).__name__)
    return X


@register
class BrainModuleEncoder(TransformerMixin, TorchEstimator):
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
    trainer : mapping, optional
        :class:`~neurodecode.core.training.Trainer` settings over ``trainer_defaults``.
    seed : int
    device : str

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
    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 40, "batch_size": 64, "lr": 3e-4,
                                                     "weight_decay": 0.0}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **TorchEstimator._parameter_constraints, "clip_weight": Interval(0, 1),
        "temperature": Interval(0, None, closed="neither"), "missing_positions": ("error", "learned"),
        "subject_layers": bool, "sfreq": Interval(0, None, closed="neither")}

    def __init__(self, n_spatial: int = 64, hidden: int = 64, depth: int = 3, out_channels: int = 128,
                 sfreq: float = 120.0, dropout: float = 0.1, subject_layers: bool = True, clip_weight: float = 0.5,
                 temperature: float = 0.1, missing_positions: str = "error",
                 trainer: Mapping[str, Any] | None = None, seed: int = 0, device: str = "cpu") -> None:
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
        self.device = device

    def _spec(self) -> Any:
        from neurodecode.encoders.models.tokenizers import input_spec

        return input_spec(self.channels_, self.sfreq_, self.model_.channel_types,
                          missing_positions=self.missing_positions, where="brain module")

    def _inputs(self, X: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        X = _epoch_set(X)
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

    def _prepare(self, X: Any, y: Any) -> tuple[torch.Tensor, ...]:
        from neurodecode.encoders.models.tokenizers import resample_fft

        X = _epoch_set(X)
        Y = np.asarray(y, dtype=np.float32)
        if Y.ndim != 2 or len(Y) != len(X.data):
            fail("y", f"target latents (n_epochs={len(X.data)}, embed_dim) — the brain module is fitted onto a "
                 "target space, not onto labels", Y.shape)
        A = np.asarray(X.data, dtype=np.float64)
        self.channels_, self.sfreq_ = X.channels, float(X.sfreq)
        self.center_ = np.median(A, axis=(0, 2))[:, None]
        q75, q25 = np.percentile(A, [75, 25], axis=(0, 2))
        self.scale_ = np.where(q75 > q25, q75 - q25, 1.0)[:, None]
        self._subjects = sorted({str(s) for s in X.table["subject"]}) if self.subject_layers else []
        self._n_model_times = resample_fft(torch.zeros(1, 1, A.shape[2]), self.sfreq_, self.sfreq).shape[-1]
        self.n_features_in_ = len(self.channels_.names)
        self._epochs = X
        return (torch.as_tensor(Y),)          # the inputs follow once the model (and its subject layers) exists

    def _build(self, tensors: tuple[torch.Tensor, ...]) -> torch.nn.Module:
        from neurodecode.encoders.models.brain_module import BrainModule

        self.model_ = BrainModule(self._n_model_times, tensors[0].shape[1], len(self._subjects), self.n_spatial,
                                  self.hidden, self.depth, self.out_channels, self.sfreq, self.dropout,
                                  subjects=self._subjects or None)
        return self.model_

    def _loss(self, model: torch.nn.Module, batch: Any, trainer: Any) -> Any:
        from neurodecode.encoders.models.brain_module import brain_module_loss

        xb, sb, yb = batch
        pred = model(xb, self._train_spec.to(xb.device), sb if self.model_.has_subject_layers else None)
        return brain_module_loss(pred, yb, self.clip_weight, self.temperature)

    def fit(self, X: Any, y: Any, resume: bool = False) -> BrainModuleEncoder:
        """Train onto the target latents ``y`` (n_epochs, embed_dim) of the epochs ``X``."""
        return super().fit(X, y, resume)

    def _dataset(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x, subject = self._inputs(self._epochs)
        self._train_spec = self._spec()
        subject = torch.zeros(len(x), dtype=torch.long) if subject is None else subject
        del self._epochs
        return x, subject, tensors[0]

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """Predicted latents (n_epochs, embed_dim)."""
        check_is_fitted(self, "model_")
        x, subject = self._inputs(X)
        device = self._model_device
        spec = self._spec().to(device)
        self.model_.eval()
        out = [self.model_(x[i:i + 256].to(device), spec,
                           None if subject is None else subject[i:i + 256].to(device)).cpu()
               for i in range(0, len(x), 256)]
        return torch.cat(out).double().numpy()


def _signal_of(X: Any, sfreq: float | None) -> tuple[float | None, list[str] | None, list[str] | None, Any]:
    """(sampling rate, channel names, MNE channel types, braindecode's ``chs_info``) of an EpochSet or
    ``mne.Epochs``; for arrays, ``sfreq`` as given and no channels."""
    import sys

    mne = sys.modules.get("mne")
    if mne is not None and isinstance(X, mne.BaseEpochs):
        return float(X.info["sfreq"]), list(X.ch_names), list(X.get_channel_types()), list(X.info["chs"])
    if isinstance(X, EpochSet):
        from neurodecode.core.mne_convert import TYPE_TO_MNE, mne_info

        info = mne_info(X.channels, X.sfreq)
        return float(X.sfreq), list(X.channels.names), [TYPE_TO_MNE[t] for t in X.channels.types], list(info["chs"])
    return (None if sfreq is None else float(sfreq)), None, None, None


def _models_dict() -> dict[str, type]:
    """braindecode's ``models_dict`` (imported quietly)."""
    from neurodecode.core.braindecode_convert import import_braindecode

    return import_braindecode("braindecode.models.util").models_dict


def braindecode_models() -> list[str]:
    """The names of braindecode's models (its ``models_dict``)."""
    return sorted(_models_dict())


def braindecode_license(model: str) -> str | None:
    """The licence braindecode's own metadata gives a model (its Hugging Face model card's ``license``), e.g.
    ``"bsd-3-clause"``, ``"cc-by-nc-4.0"`` (BrainModule, EEGMiner, MetaNeuromotorHand); None where none is given."""
    info = getattr(_models_dict().get(model), "_hub_mixin_info", None)
    return getattr(getattr(info, "model_card_data", None), "license", None)


#: licences that allow non-commercial use only (neurodecode is BSD-3: such models are used on request)
NONCOMMERCIAL = ("cc-by-nc",)


@fill_doc
@register
class BraindecodeModel(ClassifierMixin, TransformerMixin, _ChannelScaled):
    """Any braindecode model by name, trained as a classifier on the one trainable-estimator base.

    The network is built from the epochs' own signal contract — ``n_chans``, ``n_times``, ``sfreq`` and, for an
    EpochSet or ``mne.Epochs``, ``chs_info`` (channel names, types and positions: LaBraM and other models need
    them) — with ``n_outputs`` the number of classes, and trained with cross-entropy on channel-wise z-scored
    epochs (training statistics), optionally through braindecode's augmentations. ``predict``/``predict_proba``
    classify; ``transform`` gives the input of the model's final layer (its learned embedding; the logits for
    models whose final layer is not one module), so it also serves as the encoder of a training run.

    Parameters
    ----------
    model : str
        A name of braindecode's ``models_dict`` (``EEGNet``, ``ShallowFBCSPNet``, ``ATCNet``, ``EEGConformer``, ...);
        an unknown name fails with the list.
    model_kwargs : mapping, optional
        The architecture's own arguments (e.g. ``{"drop_prob": 0.25}``).
    sfreq : float, optional
        The sampling rate of array inputs (an EpochSet or ``mne.Epochs`` brings its own).
    augmentations : sequence of mappings, optional
        braindecode transforms applied to each training batch, e.g. ``[{"name": "FTSurrogate", "probability":
        0.5}, {"name": "ChannelsDropout", "probability": 0.5, "p_drop": 0.2}]`` (seeded with ``seed``).
    noncommercial : bool
        Allow a model whose licence in braindecode's metadata permits non-commercial use only (cc-by-nc: its
        BrainModule, EEGMiner, MetaNeuromotorHand); refused otherwise, naming the licence.
    %(trainer)s
    %(seed)s
    %(device)s

    Attributes
    ----------
    model_ : braindecode model
    classes_ : ndarray
    mean_, scale_ : ndarray (n_channels, 1)
    signal_ : dict
        The contract the network was built for: ``n_chans``, ``n_times``, ``sfreq``, ``ch_names``.
    history_ : list of dict
    """

    reads_epochs = True           # channel names and positions come from an EpochSet
    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 100, "batch_size": 32, "lr": 1e-3,
                                                     "weight_decay": 0.0}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **TorchEstimator._parameter_constraints, "model": str, "model_kwargs": [dict, Mapping, None],
        "sfreq": [Interval(0, None, closed="neither"), None], "noncommercial": bool}

    def __init__(self, model: str = "ShallowFBCSPNet", model_kwargs: Mapping[str, Any] | None = None,
                 sfreq: float | None = None, augmentations: Any = None, noncommercial: bool = False,
                 trainer: Mapping[str, Any] | None = None, seed: int = 0, device: str = "cpu") -> None:
        self.model = model
        self.model_kwargs = model_kwargs
        self.sfreq = sfreq
        self.augmentations = augmentations
        self.noncommercial = noncommercial
        self.trainer = trainer
        self.seed = seed
        self.device = device

    def _network(self, n_chans: int, n_times: int, n_outputs: int, sfreq: float | None,
                 chs_info: list[dict] | None) -> torch.nn.Module:
        models_dict = _models_dict()
        if self.model not in models_dict:
            fail("model", f"a braindecode model among {sorted(models_dict)}", repr(self.model),
                 type(self).__name__)
        license_ = braindecode_license(self.model)
        if str(license_).startswith(NONCOMMERCIAL) and not self.noncommercial:
            fail("noncommercial", f"True to use braindecode's {self.model}: its licence is {license_} (non-commercial "
                 "use only; neurodecode is BSD-3)", False, type(self).__name__)
        signal = {"n_chans": n_chans, "n_times": n_times, "n_outputs": n_outputs, "sfreq": sfreq,
                  "chs_info": chs_info}
        try:
            with warnings.catch_warnings():    # LaBraM warns of names outside its table order: they go to forward
                warnings.filterwarnings("ignore", message="Labram chs_info does not match", category=UserWarning)
                net = models_dict[self.model](**{k: v for k, v in signal.items() if v is not None},
                                              **dict(self.model_kwargs or {}))
            self._call(net.eval(), torch.zeros(2, n_chans, n_times), net)   # a dry run: input needs checked now
        except (ValueError, TypeError, RuntimeError, KeyError, AttributeError) as err:
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            raise ValueError(f"{type(self).__name__}: braindecode's {self.model} cannot take these epochs "
                             f"(n_chans={n_chans}, n_times={n_times}, sfreq={sfreq}, chs_info "
                             f"{'given' if chs_info else 'none: pass an EpochSet or mne.Epochs'}): {first}") from None
        return net

    def _call(self, model: torch.nn.Module, x: torch.Tensor, net: torch.nn.Module | None = None) -> torch.Tensor:
        """``model(x)``, with the channel names for models whose forward reads them (LaBraM)."""
        import inspect

        net = net if net is not None else getattr(model, "module", model)
        names = (getattr(self, "signal_", None) or {}).get("ch_names")
        if names and "ch_names" in inspect.signature(net.forward).parameters:
            return model(x, ch_names=list(names))
        return model(x)

    def _prepare(self, X: Any, y: Any) -> tuple[torch.Tensor, ...]:
        y = None if y is None else np.asarray(y)
        A = _epochs_array(X, y, labelled=True)
        sfreq, names, types, self._chs = _signal_of(X, self.sfreq)
        if sfreq is None:        # braindecode models default to a rate (ATCNet: 250 Hz) and size kernels by it
            fail("sfreq", "the sampling rate of array inputs (an EpochSet or mne.Epochs brings its own)", None,
                 type(self).__name__)
        self.signal_ = {"n_chans": int(A.shape[1]), "n_times": int(A.shape[2]), "sfreq": sfreq, "ch_names": names,
                        "ch_types": types}
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.dtype == object:
            self.classes_ = self.classes_.astype(str)
        if len(self.classes_) < 2:
            fail("y", "at least 2 classes", [str(c) for c in self.classes_], type(self).__name__)
        self._augment = _augmentations(self.augmentations, self.seed, sfreq)
        return self._scaled_training_epochs(A), torch.as_tensor(codes, dtype=torch.long)

    def _build(self, tensors: tuple[torch.Tensor, ...]) -> torch.nn.Module:
        s = self.signal_
        return self._network(s["n_chans"], s["n_times"], len(self.classes_), s["sfreq"], self._chs)

    def _loss(self, model: torch.nn.Module, batch: Any, trainer: Any) -> Any:
        xb, yb = batch
        if self._augment is not None:
            xb, yb = self._augment(xb, yb)
        out = self._call(model, xb)
        return torch.nn.functional.cross_entropy(out, yb)

    @torch.no_grad()
    def _logits(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "model_")
        x = self._standard(X)
        self.model_.eval()
        return torch.cat([self._call(self.model_, x[i:i + 256]).cpu() for i in range(0, len(x), 256)])

    def _standard(self, X: Any) -> torch.Tensor:
        sfreq, names, _, _ = _signal_of(X, None)
        s = self.signal_
        if sfreq is not None and (sfreq != s["sfreq"] or (s["ch_names"] and names != s["ch_names"])):
            fail("X", f"epochs at the training rate and channels ({s['sfreq']} Hz, {s['ch_names']})",
                 f"{sfreq} Hz, {names}", type(self).__name__)
        return standardized(X, self.mean_, self.scale_, self.signal_["n_times"]).to(self._model_device)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_epochs, n_classes)."""
        return torch.softmax(self._logits(X), dim=1).double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Classes (n_epochs,)."""
        return self.classes_[self.predict_proba(X).argmax(1)]

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """The input of the model's final layer, flattened (n_epochs, n_features) — or the logits."""
        check_is_fitted(self, "model_")
        final = getattr(self.model_, "final_layer", None)
        if not callable(getattr(final, "forward", None)) or isinstance(final, torch.nn.ModuleList):
            return self._logits(X).double().numpy()
        seen: list[torch.Tensor] = []
        hook = final.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().flatten(1).cpu()))
        try:
            self._logits(X)
        finally:
            hook.remove()
        return torch.cat(seen).double().numpy()

    # -- the checkpoint-component protocol (neurodecode.core.persistence) -------------------------------------
    def _save_to(self, folder: Any) -> None:
        """``estimator.json/.npz`` (parameters and fitted statistics, no pickle), ``model.safetensors`` and the
        channel positions (``chs_info.npy``)."""
        from pathlib import Path

        from safetensors.torch import save_model

        from neurodecode.core.persistence import save_estimator

        check_is_fitted(self, "model_")
        shell = type(self)(**self.get_params(deep=False))
        shell.__dict__.update({k: v for k, v in vars(self).items()
                               if k.endswith("_") and not k.startswith("_") and k != "model_"})
        save_estimator(shell, folder, "estimator")
        save_model(self.model_, str(Path(folder) / "model.safetensors"))
        locs = np.array([c["loc"] for c in self._chs], dtype=np.float64) if self._chs else np.zeros((0, 12))
        np.save(Path(folder) / "chs_info.npy", locs, allow_pickle=False)

    @classmethod
    def _load_from(cls, folder: Any, device: str = "cpu") -> BraindecodeModel:
        from pathlib import Path

        from safetensors.torch import load_model

        from neurodecode.core.persistence import load_estimator

        est = load_estimator(folder, "estimator")
        s, chs = est.signal_, None
        locs = np.load(Path(folder) / "chs_info.npy", allow_pickle=False)
        if s.get("ch_names"):
            import mne

            info = mne.create_info(list(s["ch_names"]), s["sfreq"] or 1.0, list(s["ch_types"]), verbose="error")
            for ch, loc in zip(info["chs"], locs):
                ch["loc"][:] = loc
            chs = list(info["chs"])
        est._chs = chs
        est.model_ = est._network(s["n_chans"], s["n_times"], len(est.classes_), s["sfreq"], chs)
        load_model(est.model_, str(Path(folder) / "model.safetensors"), device=device)
        est.model_.to(device).eval()
        est.history_ = []
        return est


def _augmentations(spec: Any, seed: int, sfreq: float | None) -> Any:
    """braindecode's transforms from a list of ``{"name": ..., **arguments}`` (composed, seeded), or None."""
    if not spec:
        return None
    import inspect

    from neurodecode.core.braindecode_convert import import_braindecode

    aug = import_braindecode("braindecode.augmentation")

    known = sorted(n for n in dir(aug) if n[0].isupper() and n not in ("AugmentedDataLoader", "Compose", "Transform"))
    transforms = []
    for i, item in enumerate(spec):
        item = dict(item)
        name = item.pop("name", None)
        if name not in known:
            fail(f"augmentations[{i}].name", f"a braindecode transform among {known}", repr(name))
        if "sfreq" in inspect.signature(getattr(aug, name)).parameters and sfreq:
            item.setdefault("sfreq", sfreq)
        transforms.append(getattr(aug, name)(random_state=int(seed) + i, **item))
    return aug.Compose(transforms)
