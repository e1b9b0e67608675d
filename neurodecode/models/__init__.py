"""Model files, one per model (diffusers' layout): small readable torch modules built from plain parameters.

* :class:`ResidualMLP` (:mod:`.mlp`) — MindEye-style residual MLP for vector inputs (voxels, flattened features).
"""

from .mlp import ResidualMLP

__all__ = ["ResidualMLP"]
