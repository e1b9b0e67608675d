"""Generative heads (inference; tiny variants trainable): predicted latents → images, captions, 3D objects.

* :mod:`.images` — :class:`UnCLIPImageHead` (Stable unCLIP with the low-level img2img branch), :class:`BlurryImages`.
* :mod:`.captions` — :class:`NearestCaptionHead` (caption bank), :class:`PrefixCaptionHead` (ClipCap-style prefix
  into a causal language model).
* :mod:`.common` — latent checks, offline errors, batching, :func:`write_trials` (files + metadata.json).

Heads import diffusers / transformers on first use.
"""
