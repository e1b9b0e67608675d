"""Model files, one per model (diffusers' layout): small readable torch modules built from plain parameters.

* :class:`ResidualMLP` (:mod:`.mlp`) — MindEye-style residual MLP for vector inputs (voxels, flattened features).
* :class:`DiffusionPrior` (:mod:`.prior`) — diffusers' ``PriorTransformer`` + DDPM schedule, brain latent →
  target embedding (imports diffusers on first use).
"""

from .mlp import ResidualMLP


def __getattr__(name: str):
    if name == "DiffusionPrior":
        from .prior import DiffusionPrior

        return DiffusionPrior
    raise AttributeError(f"module 'neurodecode.models' has no attribute {name!r}")


__all__ = ["DiffusionPrior", "ResidualMLP"]
