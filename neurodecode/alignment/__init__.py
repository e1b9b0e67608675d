"""Stage 3 — alignment: brain features → a target space (CLIP-like embeddings, image PCA, pixels).

* :mod:`.aligners` — :class:`RidgeAlignment` (closed form, the baseline), :class:`LearnedAlignment` (MindEye's
  residual MLP with MSE + contrastive losses), :class:`PriorAlignment` (a diffusion prior).
* contrastive losses (InfoNCE, SoftCLIP, BiMixCo, negatives gathered across processes) live with the models:
  :mod:`neurodecode.encoders.models.contrastive`.
* :mod:`.prior` — the :class:`DiffusionPrior` model (diffusers' ``PriorTransformer``).
* :mod:`.embeddings` — stimulus embeddings (open_clip with an on-disk cache; pixels, PCA, any function).
* :mod:`.targets` — :class:`TargetSpace`, the space an aligner predicts and the heads read.
* :mod:`.adaptation` — a new subject for a cross-subject model (ridge or reset-tuning).
* :mod:`.encoding_models` — stimulus → brain: :class:`RidgeEncodingModel` (a penalty per voxel),
  :class:`TransformerEncodingModel` (region queries over image tokens), noise ceilings, voxel selection.
* :mod:`.selection` — :class:`AutoAlignment` (``aligner=auto``): the aligner chosen by inner cross-validation.

May import: ``neurodecode.core``, ``neurodecode.loaders``, ``neurodecode.encoders``.
"""

from collections.abc import Sequence
from typing import Any

from neurodecode.alignment.adaptation import adapt_from_stores, adapt_subject, adaptation_benchmark, reference_latents
from neurodecode.alignment.aligners import LearnedAlignment, PriorAlignment, RidgeAlignment
from neurodecode.alignment.encoding_models import (RidgeEncodingModel, TransformerEncodingModel, TRFResult,
                                                   noise_ceiling, select_voxels, temporal_response_function,
                                                   voxel_correlations)
from neurodecode.alignment.selection import AutoAlignment
from neurodecode.alignment.targets import TargetSpace


_RENAMED = {"RidgeEncoder": "RidgeEncodingModel", "TransformerEncoder": "TransformerEncodingModel"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:          # the 0.2 names of the encoding models (one release)
        import warnings

        warnings.warn(f"neurodecode.alignment.{name} is now {_RENAMED[name]} (neurodecode.alignment.encoding_models)",
                      FutureWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'neurodecode.alignment' has no attribute {name!r}")


def make_aligner(name: str, overrides: Sequence[str] = ()) -> Any:
    """Deprecated: ``neurodecode.build("aligner", name, overrides)``."""
    import warnings

    from neurodecode.core.configs import build

    warnings.warn("neurodecode.alignment.make_aligner is deprecated; use neurodecode.build('aligner', name, "
                  "overrides)", FutureWarning, stacklevel=2)
    return build("aligner", name, overrides)


__all__ = ["AutoAlignment", "LearnedAlignment", "PriorAlignment", "RidgeAlignment", "RidgeEncodingModel", "TRFResult",
           "TargetSpace", "TransformerEncodingModel", "adapt_from_stores", "adapt_subject", "adaptation_benchmark",
           "make_aligner", "noise_ceiling", "reference_latents", "select_voxels", "temporal_response_function",
           "voxel_correlations"]
