"""Stage 4 — generative heads (inference; tiny variants trainable): predicted latents → images, captions, 3D objects.

* :mod:`.base` — the head protocol: :class:`LatentSpec` (what a head reads), typed outputs (:class:`ImageOutput`,
  :class:`CaptionOutput`, :class:`MeshOutput`), per-trial seeds, weights loading with offline errors, batching.
* :mod:`.images` — :class:`UnCLIPImageHead` (Stable unCLIP with MindEye's low-level img2img branch),
  :class:`IPAdapterImageHead`, ``BlurryImages`` (0.2; now ``LowLevelImages``).
* :mod:`.captions` — :class:`NearestCaptionHead` (caption bank), :class:`PrefixCaptionHead` (ClipCap),
  :class:`GitCaptionHead` (GIT through a ridge map into its visual tokens, MindEye2).
* :mod:`.meshes` — :class:`ShapEMeshHead` (Shap-E prior + renderer → trimesh meshes), :func:`render_mesh`.
* :mod:`.sdf` — :class:`SDFMeshHead` (a trainable implicit-surface decoder), :func:`mesh_sdf`,
  :func:`procedural_shapes` (its offline training set).
* :mod:`.writing` — per-trial files and ``metadata.json``.

Heads import diffusers / transformers on first use. May import: ``neurodecode.core`` … ``neurodecode.alignment``.
"""

from collections.abc import Sequence
from typing import Any

from neurodecode.heads.base import KINDS, CaptionOutput, Head, HeadOutput, ImageOutput, LatentSpec, MeshOutput


def build_head(name: str, overrides: Sequence[str] = ()) -> Any:
    """Deprecated: ``neurodecode.build("head", name, overrides)``."""
    import warnings

    from neurodecode.core.configs import build

    warnings.warn("neurodecode.heads.build_head is deprecated; use neurodecode.build('head', name, overrides)",
                  FutureWarning, stacklevel=2)
    return build("head", name, overrides)


__all__ = ["KINDS", "CaptionOutput", "Head", "HeadOutput", "ImageOutput", "LatentSpec", "MeshOutput", "build_head"]
