"""A β-VAE over M/EEG epochs (Higgins et al. 2017), as in "Representation learning for improved interpretability and
classification accuracy of clinical factors from EEG" (Honke et al. 2021): a disentangled latent per trial whose
decoder denoises single trials towards their evoked response, and whose mean is a small feature vector for linear
read-outs.

``x (B, n_channels, n_times)`` → two strided 1-D convolutions over time (channels as input planes) → ``mu, logvar``
``(B, latent_dim)`` → a linear layer and two transposed convolutions → ``x̂ (B, n_channels, n_times)``. The loss is the
squared reconstruction error summed over channels and times plus β × the KL divergence to N(0, I), both averaged
over the batch; β > 1 trades reconstruction for a more factorised latent.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin

__all__ = ["BetaVAE"]


class BetaVAE(ConfigMixin, nn.Module):
    """β-VAE of epochs.

    Parameters
    ----------
    n_channels, n_times : int
        The epochs' shape.
    latent_dim : int
        Size of the latent (``embed_dim`` of its features).
    hidden : int
        Convolution channels.
    kernel : int
        Temporal kernel of the encoder's convolutions (odd).
    beta : float
        Weight of the KL term (1: a plain VAE).

    Shapes: ``forward(x (B, n_channels, n_times)) -> (x̂ (B, n_channels, n_times), mu (B, latent_dim),
    logvar (B, latent_dim))``.
    """

    def __init__(self, n_channels: int, n_times: int, latent_dim: int = 16, hidden: int = 64, kernel: int = 7,
                 beta: float = 4.0) -> None:
        super().__init__()
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"field 'kernel': expected an odd temporal kernel, got {kernel}")
        if beta < 0 or latent_dim < 1 or n_times < 4:
            raise ValueError(f"field 'beta'/'latent_dim'/'n_times': expected beta ≥ 0, latent_dim ≥ 1, n_times ≥ 4, "
                             f"got {beta}, {latent_dim}, {n_times}")
        self.n_times, self.beta = n_times, float(beta)
        self.steps = math.ceil(math.ceil(n_times / 2) / 2)              # time steps after two stride-2 convolutions
        self.encoder = nn.Sequential(
            nn.Conv1d(n_channels, hidden, kernel, stride=2, padding=kernel // 2), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, stride=2, padding=kernel // 2), nn.GELU(), nn.Flatten())
        self.to_stats = nn.Linear(hidden * self.steps, 2 * latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden * self.steps)
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (hidden, self.steps)), nn.GELU(),
            nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose1d(hidden, n_channels, 4, stride=2, padding=1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each (B, latent_dim)."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Epochs (B, n_channels, n_times) from latents (B, latent_dim)."""
        return self.decoder(self.from_latent(z))[..., : self.n_times]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decode(z), mu, logvar

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``recon`` (squared error summed over channels × times), ``kl``, ``loss = recon + beta · kl`` (batch
        means)."""
        recon, mu, logvar = self(x)
        rec = ((recon - x) ** 2).sum(dim=(1, 2)).mean()
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).mean()
        return {"recon": rec, "kl": kl, "loss": rec + self.beta * kl}
