"""Generative heads (inference; tiny variants trainable): predicted latents → images, captions, 3D objects.

* :mod:`.images` — :class:`UnCLIPImageHead` (Stable unCLIP with the low-level img2img branch), :class:`BlurryImages`.
* :mod:`.captions` — :class:`NearestCaptionHead` (caption bank), :class:`PrefixCaptionHead` (ClipCap-style prefix
  into a causal language model).
* :mod:`.meshes` — :class:`ShapEMeshHead` (Shap-E prior + renderer → trimesh meshes), :func:`render_mesh`.
* :mod:`.common` — latent checks, offline errors, batching, :func:`write_trials` (files + metadata.json).

Heads import diffusers / transformers on first use.
"""

from collections.abc import Sequence
from typing import Any


def build_head(name: str, overrides: Sequence[str] = ()) -> Any:
    """Instantiate a head from ``conf/head/NAME.yaml`` (or a path) with ``key=value`` overrides.

    Examples: ``build_head("tiny_unclip")``, ``build_head("unclip_sd21_small", ["device=cpu", "dtype=float32"])``.
    """
    from ..configs import instantiate_config

    return instantiate_config("head", name, overrides)


__all__ = ["build_head"]
