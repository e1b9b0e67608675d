"""Diffusion prior: brain latents → target embeddings (e.g. CLIP image embeddings), after DALL·E 2 and MindEye.

A diffusers ``diffusers.PriorTransformer`` denoises the target embedding, conditioned on the brain latent,
which a linear layer turns into ``n_tokens`` conditioning tokens (their mean is the transformer's projection
embedding). It predicts the clean embedding (``prediction_type="sample"``) under a cosine DDPM schedule; conditioning
is dropped with probability ``cond_drop_prob`` during training so that sampling can use classifier-free guidance.

Shapes: ``loss(brain (B, in_features), target (B, embed_dim)) -> scalar``;
``sample(brain (B, in_features)) -> (B, embed_dim)``.
"""

from __future__ import annotations

import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin

__all__ = ["DiffusionPrior"]


class DiffusionPrior(ConfigMixin, nn.Module):
    """Conditional diffusion model over embeddings.

    Parameters
    ----------
    in_features : int
        Size of the brain latent.
    embed_dim : int
        Size of the target embedding.
    n_tokens : int
        Conditioning tokens made from the brain latent.
    num_layers, num_attention_heads, attention_head_dim : int
        Transformer size (MindEye: 6 layers; DALL·E 2's prior is larger). The width is
        ``num_attention_heads * attention_head_dim``.
    timesteps : int
        Training diffusion steps (MindEye: 100).
    cond_drop_prob : float
        Probability of dropping the brain conditioning during training (for guidance).
    dropout : float
    """

    def __init__(self, in_features: int, embed_dim: int, n_tokens: int = 1, num_layers: int = 6,
                 num_attention_heads: int = 8, attention_head_dim: int = 64, timesteps: int = 100,
                 cond_drop_prob: float = 0.2, dropout: float = 0.0) -> None:
        super().__init__()
        from diffusers import DDPMScheduler, PriorTransformer

        self.in_features, self.embed_dim, self.n_tokens = in_features, embed_dim, n_tokens
        self.to_tokens = nn.Linear(in_features, n_tokens * embed_dim)
        self.null_tokens = nn.Parameter(torch.zeros(n_tokens, embed_dim))
        self.transformer = PriorTransformer(num_attention_heads=num_attention_heads,
                                            attention_head_dim=attention_head_dim, num_layers=num_layers,
                                            embedding_dim=embed_dim, num_embeddings=n_tokens, dropout=dropout)
        self.scheduler = DDPMScheduler(num_train_timesteps=timesteps, beta_schedule="squaredcos_cap_v2",
                                       prediction_type="sample", clip_sample=False)
        self.cond_drop_prob = cond_drop_prob

    def _tokens(self, brain: torch.Tensor) -> torch.Tensor:
        if brain.ndim != 2 or brain.shape[1] != self.in_features:
            raise ValueError(f"field 'brain': expected (batch, {self.in_features}), got {tuple(brain.shape)}")
        return self.to_tokens(brain).view(brain.shape[0], self.n_tokens, self.embed_dim)

    def denoise(self, noisy: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Predicted clean embedding (B, embed_dim) from a noisy one at steps ``t`` (B,)."""
        return self.transformer(noisy, t, proj_embedding=tokens.mean(1),
                                encoder_hidden_states=tokens).predicted_image_embedding

    def loss(self, brain: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Denoising MSE at random steps, with conditioning dropped at rate ``cond_drop_prob``."""
        if target.ndim != 2 or target.shape[1] != self.embed_dim:
            raise ValueError(f"field 'target': expected (batch, {self.embed_dim}), got {tuple(target.shape)}")
        tokens = self._tokens(brain)
        drop = torch.rand(brain.shape[0], device=brain.device) < self.cond_drop_prob
        tokens = torch.where(drop[:, None, None], self.null_tokens.to(tokens.dtype).expand_as(tokens), tokens)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (brain.shape[0],), device=brain.device)
        noisy = self.scheduler.add_noise(target, torch.randn_like(target), t)
        return nn.functional.mse_loss(self.denoise(noisy, t, tokens), target)

    forward = loss

    @torch.no_grad()
    def sample(self, brain: torch.Tensor, num_inference_steps: int | None = None, guidance_scale: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw target embeddings for each brain latent (ancestral DDPM sampling, classifier-free guidance)."""
        tokens = self._tokens(brain)
        null = self.null_tokens.to(tokens.dtype).expand_as(tokens)
        scheduler = self.scheduler.__class__.from_config(self.scheduler.config)
        scheduler.set_timesteps(num_inference_steps or self.scheduler.config.num_train_timesteps,
                                device=brain.device)
        x = torch.randn(brain.shape[0], self.embed_dim, generator=generator, device=brain.device,
                        dtype=tokens.dtype)
        for t in scheduler.timesteps:
            tt = t.expand(brain.shape[0]).to(brain.device)
            pred = self.denoise(x, tt, tokens)
            if guidance_scale != 1.0:
                uncond = self.denoise(x, tt, null)
                pred = uncond + guidance_scale * (pred - uncond)
            x = scheduler.step(pred, t, x, generator=generator).prev_sample
        return x
