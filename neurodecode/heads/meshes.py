"""3D objects from predicted image embeddings: a Shap-E head (diffusers) → trimesh meshes + rendered views.

:class:`ShapEMeshHead` samples Shap-E latents with its ``PriorTransformer`` conditioned on the image embedding
(pooled ``(n, embed_dim)`` or token-level ``(n, n_tokens, embed_dim)`` — Shap-E img2img's own conditioning is the
256 patch tokens of CLIP ViT-L/14, 1024-d), decodes each latent into a mesh with the ``ShapERenderer`` (signed
distance field on a grid → marching cubes; the field is forced negative at the grid border, so meshes are closed),
and renders views with :func:`render_mesh` so that 3D results can be shown and scored like images.

* ``ShapEMeshHead.from_pretrained("openai/shap-e-img2img")`` — real weights.
* ``ShapEMeshHead.tiny(...)`` — the same architecture from small configs (seconds on a CPU). A randomly initialised
  renderer's field rarely crosses zero, which gives no surface; the tiny renderer is therefore **calibrated** once
  (the bias of its SDF output is shifted so that the field of a reference latent has median zero) — its meshes are
  random blobs that vary with the embedding, for tests and offline runs, not shapes.

A :class:`~neurodecode.heads.base.MeshHead`: ``generate(latents) -> MeshOutput``, each trial's latent drawn with its
own generator (:func:`render_mesh` lives in :mod:`neurodecode.heads.base`, re-exported here). May import: ``neurodecode.core`` … ``neurodecode.alignment``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from neurodecode.heads.base import (LatentSpec, MeshHead, load_pretrained, randn, render_mesh, run_in_batches,
                                    trial_generators)

__all__ = ["ShapEMeshHead", "render_mesh"]


class ShapEMeshHead(MeshHead, nn.Module):
    """Shap-E: image embeddings → 3D latents (prior) → meshes (renderer).

    Parameters
    ----------
    prior : diffusers.PriorTransformer (Shap-E layout)
    scheduler : diffusers.HeunDiscreteScheduler
    renderer : diffusers ShapERenderer
    config : dict
        What built it (model id or tiny config).
    """

    def __init__(self, prior: nn.Module, scheduler: Any, renderer: nn.Module,
                 config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.prior, self.scheduler, self.renderer = prior, scheduler, renderer
        self._describe(dict(config or {}).get("model_id", "tiny-shap-e"), config)
        self.embed_dim = prior.config.embedding_proj_dim or prior.config.embedding_dim

    options = ("num_inference_steps", "guidance_scale", "grid_size", "batch_size", "progress")

    @property
    def latent(self) -> LatentSpec:
        space = ("CLIP ViT-L/14 patch tokens of the image (256 × 1024)" if "model_id" in self.config
                 else "any embedding (random tiny prior)")
        return LatentSpec(self.embed_dim, pooled=True, tokens=True, space=space)

    @classmethod
    def from_pretrained(cls, model_id: str = "openai/shap-e-img2img", *, device: str = "cpu",
                        dtype: str = "float32", **_: Any) -> ShapEMeshHead:
        from diffusers import HeunDiscreteScheduler, PriorTransformer
        from diffusers.pipelines.shap_e import ShapERenderer

        torch_dtype = getattr(torch, dtype)
        prior = load_pretrained(PriorTransformer, model_id, "prior", torch_dtype=torch_dtype)
        scheduler = load_pretrained(HeunDiscreteScheduler, model_id, "scheduler")
        renderer = load_pretrained(ShapERenderer, model_id, "shap_e_renderer", torch_dtype=torch_dtype)
        return cls(prior, scheduler, renderer, {"model_id": model_id, "dtype": dtype}).to(device)

    @classmethod
    def tiny(cls, embed_dim: int = 16, latent_tokens: int = 32, latent_dim: int = 16, hidden: int = 8,
             seed: int = 0, device: str = "cpu") -> ShapEMeshHead:
        """Small prior and renderer from configs (diffusers' test sizes), with a calibrated SDF (see the module)."""
        config = {"embed_dim": embed_dim, "latent_tokens": latent_tokens, "latent_dim": latent_dim, "hidden": hidden,
                  "seed": seed}
        from diffusers import HeunDiscreteScheduler, PriorTransformer
        from diffusers.pipelines.shap_e import ShapERenderer

        torch.manual_seed(seed)
        prior = PriorTransformer(num_attention_heads=2, attention_head_dim=16, embedding_dim=latent_dim,
                                 num_embeddings=latent_tokens, embedding_proj_dim=embed_dim, time_embed_dim=64,
                                 num_layers=1, clip_embed_dim=2 * latent_dim, additional_embeddings=0,
                                 time_embed_act_fn="gelu", norm_in_type="layer", embedding_proj_norm_type="layer",
                                 encoder_hid_proj_type=None, added_emb_type=None)
        renderer = ShapERenderer(param_shapes=((hidden, 93), (hidden, hidden), (hidden, hidden), (hidden, hidden)),
                                 d_latent=latent_dim, d_hidden=hidden, n_output=12, background=(0.1, 0.1, 0.1))
        scheduler = HeunDiscreteScheduler(beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample",
                                          use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0)
        head = cls(prior, scheduler, renderer, {"tiny": config})
        head._calibrate(torch.randn(1, latent_tokens, latent_dim, generator=torch.Generator().manual_seed(seed)))
        return head if device == "cpu" else head.to(device)

    @torch.no_grad()
    def _calibrate(self, latent: torch.Tensor, grid_size: int = 16) -> None:
        """Shift the SDF output bias so that the field of ``latent`` has median zero (tiny renderers only)."""
        fields = self._field(latent, grid_size)
        out = self.renderer.mlp.mlp[-1]
        out.bias[0] -= torch.atanh(fields.clamp(-0.999, 0.999)).median()

    @torch.no_grad()
    def _field(self, latent: torch.Tensor, grid_size: int) -> torch.Tensor:
        from diffusers.pipelines.shap_e.renderer import volume_query_points

        params = self.renderer.params_proj(latent)
        for name, param in self.renderer.mlp.state_dict().items():
            if f"nerstf.{name}" in params:
                param.copy_(params[f"nerstf.{name}"].squeeze(0))
        pts = volume_query_points(self.renderer.volume, grid_size)[None].to(latent.device, latent.dtype)
        return self.renderer.mlp(position=pts, direction=None, ts=None, nerf_level="fine",
                                 rendering_mode="stf").signed_distance

    @torch.no_grad()
    def _mesh(self, latent: torch.Tensor, grid_size: int, trial: str) -> Any:
        """Marching cubes (scikit-image, level 0) on the renderer's signed-distance field, padded with a negative
        border as Shap-E does (so the surface is closed), coloured by the renderer's texture channels."""
        import trimesh
        from skimage.measure import marching_cubes

        field = self._field(latent, grid_size).reshape(grid_size, grid_size, grid_size).float().cpu().numpy()
        padded = np.full((grid_size + 2,) * 3, -1.0, dtype=np.float32)
        padded[1:-1, 1:-1, 1:-1] = field
        if not (padded > 0).any():
            raise ValueError(f"trial {trial}: the {self.name} renderer found no surface: its signed-distance field "
                             f"is negative everywhere on the {grid_size}^3 grid")
        verts, faces, _, _ = marching_cubes(padded, level=0.0)
        lo = self.renderer.volume.bbox_min.float().cpu().numpy()
        hi = self.renderer.volume.bbox_max.float().cpu().numpy()
        verts = lo + (verts - 1) * (hi - lo) / (grid_size - 1)
        pos = torch.as_tensor(verts, dtype=latent.dtype, device=latent.device)[None]
        colours = self.renderer.mlp(position=pos, direction=None, ts=None, nerf_level="fine",
                                    rendering_mode="stf").channels[0].float().cpu().numpy()
        return trimesh.Trimesh(verts, faces, vertex_colors=(np.clip(colours, 0, 1) * 255).astype(np.uint8),
                               process=True)

    @torch.no_grad()
    def _sample(self, embeds: torch.Tensor, steps: int, guidance_scale: float,
                generators: Sequence[torch.Generator]) -> torch.Tensor:
        cfg = guidance_scale > 1.0
        cond = torch.cat([torch.zeros_like(embeds), embeds]) if cfg else embeds
        scheduler = self.scheduler.__class__.from_config(self.scheduler.config)
        scheduler.set_timesteps(steps, device=embeds.device)
        shape = (len(embeds), self.prior.config.num_embeddings, self.prior.config.embedding_dim)
        latents = randn(shape[1:], generators, embeds.device) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            inp = torch.cat([latents] * 2) if cfg else latents
            out = self.prior(scheduler.scale_model_input(inp, t), timestep=t,
                             proj_embedding=cond).predicted_image_embedding
            out, _ = out.split(shape[2], dim=2)  # drop the variance channels
            if cfg:
                uncond, c = out.chunk(2)
                out = uncond + guidance_scale * (c - uncond)
            latents = scheduler.step(out, timestep=t, sample=latents).prev_sample
        return latents

    def _meshes(self, z: np.ndarray, trials: list[str], seed: int, num_inference_steps: int = 16,
                guidance_scale: float = 1.0, grid_size: int = 64, batch_size: int = 4,
                progress: bool = False) -> list[Any]:
        """Meshes (trimesh.Trimesh with vertex colours); trial ``t``'s 3D latent is drawn with a generator seeded
        by ``trial_seed(seed, t)``, ``num_inference_steps`` of the prior's sampler, marching cubes on a
        ``grid_size``³ grid."""
        embeds = torch.as_tensor(z, device=self.prior.device, dtype=self.prior.dtype)

        def run(idx: np.ndarray) -> np.ndarray:
            gens = trial_generators(seed, [trials[i] for i in idx], 0, embeds.device)
            return self._sample(embeds[idx], num_inference_steps, guidance_scale, gens).cpu().numpy()

        lat = torch.as_tensor(run_in_batches(run, len(embeds), batch_size, progress=progress, desc="3D latents"))
        return [self._mesh(lat[i:i + 1].to(embeds.device), grid_size, trials[i]) for i in range(len(lat))]
