"""Stage 3 — alignment: brain features → a target space (CLIP-like embeddings, image PCA, pixels).

* :mod:`.aligners` — :class:`RidgeAlignment` (closed form, the baseline), :class:`LearnedAlignment` (MindEye's
  residual MLP with MSE + contrastive losses), :class:`PriorAlignment` (a diffusion prior).
* :mod:`.losses` — InfoNCE, SoftCLIP, BiMixCo with negatives gathered across processes.
* :mod:`.prior` — the :class:`DiffusionPrior` model (diffusers' ``PriorTransformer``).
* :mod:`.embeddings` — stimulus embeddings (open_clip with an on-disk cache; pixels, PCA, any function).
* :mod:`.targets` — :class:`TargetSpace`, the space an aligner predicts and the heads read.
* :mod:`.adaptation` — a new subject for a cross-subject model (ridge or reset-tuning).
* :mod:`.encoding` — encoding models (stimulus → brain): :class:`RidgeEncoder` (a penalty per voxel), noise
  ceilings, voxel selection by encoding score; :mod:`.brain_encoder` — the transformer brain encoder (region queries
  over image tokens).

May import: ``neurodecode.core``, ``neurodecode.loaders``, ``neurodecode.encoders``.
"""

from collections.abc import Sequence
from typing import Any

from neurodecode.alignment.adaptation import adapt_from_stores, adapt_subject, adaptation_benchmark, reference_latents
from neurodecode.alignment.aligners import LearnedAlignment, PriorAlignment, RidgeAlignment
from neurodecode.alignment.brain_encoder import TransformerEncoder
from neurodecode.alignment.encoding import RidgeEncoder, noise_ceiling, select_voxels, voxel_correlations
from neurodecode.alignment.targets import TargetSpace


def make_aligner(name: str, overrides: Sequence[str] = ()) -> Any:
    """Deprecated: ``neurodecode.build("aligner", name, overrides)``."""
    import warnings

    from neurodecode.core.configs import build

    warnings.warn("neurodecode.alignment.make_aligner is deprecated; use neurodecode.build('aligner', name, "
                  "overrides)", FutureWarning, stacklevel=2)
    return build("aligner", name, overrides)


__all__ = ["LearnedAlignment", "PriorAlignment", "RidgeAlignment", "RidgeEncoder", "TargetSpace", "TransformerEncoder",
           "adapt_from_stores", "adapt_subject", "adaptation_benchmark", "make_aligner", "noise_ceiling",
           "reference_latents", "select_voxels", "voxel_correlations"]
