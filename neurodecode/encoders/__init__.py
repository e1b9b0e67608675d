"""Stage 2 — shared encoders: epochs → features or latents.

* :mod:`.spd` — batched, differentiable maths on SPD matrices (pure functions, pyRiemann's definitions).
* :mod:`.riemann` — scikit-learn estimators on covariances: :class:`Covariances`, :class:`TangentSpace`, :class:`MDM`,
  re-centring, RPA's stretch and rotation, Procrustes.
* :mod:`.connectivity` — connectomes of ROI series (:class:`Connectivity`) and their graph measures.
* :mod:`.inputs` — what the estimators accept (arrays, EpochSet, ``mne.Epochs``), :class:`EpochMatrices`, and
  :class:`TimeWindow` (the epoch window as a pipeline parameter), :class:`SplitBands` (filter-bank epochs in
  MOABB's layout, for a per-band estimator such as FBCSP).
* :mod:`.artifacts` — artefact rejection with pyRiemann's Riemannian potato (:func:`potato_rejection`), rejections
  recorded in the drop report.
* :mod:`.features` — named feature recipes (:func:`make_recipe`, :func:`extract_features`).
* :mod:`.voxels` — :class:`VoxelFeatures`, z-scored voxel vectors.
* :mod:`.ssvep` — :class:`SSVEPClassifier`: MOABB's SSVEP classifiers (CCA, TRCA, MsetCCA, ...) on epochs, the
  stimulation frequencies read from the labels.
* :mod:`.deep` — deep encoders as scikit-learn estimators on the one trainable-estimator base
  (:class:`~neurodecode.core.estimators.TorchEstimator`): :class:`BetaVAEFeatures` (β-VAE latents and denoised
  reconstructions), :class:`MVCNetClassifier` (MVCNet, multi-view contrast), :class:`BrainModuleEncoder` (the MEG
  brain module fitted onto target latents), :class:`BraindecodeModel` (any of braindecode's networks by name).
* :mod:`.models` — one file per model: tokenizers, the channel-agnostic :class:`SignalEncoder` / :class:`SignalMAE`,
  cross-subject models, the residual MLP, the β-VAE, LaBraM and CBraMod (braindecode's networks as feature
  encoders).
* :mod:`.pretraining` — masked-autoencoder pretraining, save/load by path, :class:`EncoderFeatures` (probing) and
  :class:`FineTunedEncoder`.

May import: ``neurodecode.core``, ``neurodecode.loaders``.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from neurodecode.encoders.deep import (BetaVAEFeatures, BraindecodeModel, BrainModuleEncoder, MVCNetClassifier,
                                      braindecode_models)
from neurodecode.encoders.connectivity import Connectivity, GraphFeatures
from neurodecode.encoders.features import RECIPES, Features, encoder_input, extract_features, make_recipe
from neurodecode.encoders.artifacts import OnlinePotato, potato_rejection, potato_scores
from neurodecode.encoders.inputs import SplitBands, TimeWindow
from neurodecode.encoders.pretraining import (EncoderFeatures, FineTunedEncoder, PretrainResult, load_model,
                                              masked_reconstruction_error, pretrain, pretrain_tokenizer, save_model)
from neurodecode.encoders.riemann import (MDM, AugmentedCovariances, Covariances, FilterBankCovariances, Procrustes,
                                          Recenter, Rotate, Stretch, TangentSpace)
from neurodecode.encoders.ssvep import SSVEPClassifier
from neurodecode.encoders.voxels import VoxelFeatures


def build_model(config: Any, overrides: Sequence[str] = ()) -> Any:
    """Deprecated: ``neurodecode.build("encoder", config, overrides)``."""
    import warnings

    from neurodecode.core.configs import build

    warnings.warn("neurodecode.encoders.build_model is deprecated; use neurodecode.build('encoder', name, overrides)",
                  FutureWarning, stacklevel=2)
    return build("encoder", dict(config) if isinstance(config, Mapping) else config, overrides)


__all__ = ["MDM", "RECIPES", "AugmentedCovariances", "BetaVAEFeatures", "BraindecodeModel", "BrainModuleEncoder", "Connectivity", "Covariances", "GraphFeatures",
           "EncoderFeatures", "Features", "FilterBankCovariances", "FineTunedEncoder", "MVCNetClassifier", "PretrainResult", "Procrustes",
           "Recenter", "Rotate", "SSVEPClassifier", "SplitBands", "Stretch", "TangentSpace", "TimeWindow", "VoxelFeatures", "braindecode_models", "build_model", "encoder_input", "OnlinePotato", "potato_rejection", "potato_scores",
           "extract_features", "load_model", "make_recipe", "masked_reconstruction_error", "pretrain",
           "pretrain_tokenizer", "save_model"]
