"""MVCNet (multi-view contrastive network for motor imagery): a CNN and a Transformer branch over the same epochs,
trained with the classification loss plus two contrastive losses on time / frequency / spatial views.

* Views (:func:`time_view`, :func:`frequency_view`, :func:`spatial_view`, seeded by a ``torch.Generator``): a random
  circular shift with noise and a masked stretch of time; a random stop band and per-frequency amplitude jitter;
  dropped channels and a small random mixing of channels.
* Branches: :class:`ConvBranch` (ShallowConvNet-style: temporal conv → spatial conv → square → average pool → log)
  and :class:`TransformerBranch` (strided temporal conv into tokens → transformer → mean), each → ``embed_dim``.
* :class:`MVCNet` fuses both embeddings into the classifier. :meth:`MVCNet.loss` = cross-entropy on the epoch and
  its three views + ``lambda_cv`` · cross-view contrast (within each branch, the three views of a trial are
  positives; symmetric InfoNCE over the batch) + ``lambda_cm`` · cross-model contrast (the CNN's and the
  Transformer's embeddings of the same view are positives).

Shapes: ``forward(x (B, n_channels, n_times)) -> logits (B, n_classes)``; ``embed(x) -> (B, 2 · embed_dim)``.
"""

from __future__ import annotations

import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin
from neurodecode.encoders.models.contrastive import info_nce

__all__ = ["ConvBranch", "MVCNet", "TransformerBranch", "frequency_view", "spatial_view", "time_view"]


def _uniform(shape: tuple[int, ...], g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=g).to(device)


def time_view(x: torch.Tensor, g: torch.Generator, shift: float = 0.1, noise: float = 0.1,
              mask: float = 0.1) -> torch.Tensor:
    """Each epoch circularly shifted by up to ``shift`` of its length, plus Gaussian noise (``noise`` s.d. of the
    z-scored input), with a random stretch of ``mask`` of its length set to zero."""
    B, _, T = x.shape
    k = ((_uniform((B,), g, x.device) * 2 - 1) * shift * T).round().long()
    idx = (torch.arange(T, device=x.device)[None] - k[:, None]) % T
    out = x.gather(2, idx[:, None].expand_as(x)) + noise * torch.randn(x.shape, generator=g).to(x.device)
    width = int(round(mask * T))
    start = (_uniform((B,), g, x.device) * (T - width + 1)).long()
    keep = ~((torch.arange(T, device=x.device)[None] >= start[:, None]) &
             (torch.arange(T, device=x.device)[None] < (start + width)[:, None]))
    return out * keep[:, None]


def frequency_view(x: torch.Tensor, g: torch.Generator, band: float = 0.1, jitter: float = 0.1) -> torch.Tensor:
    """Each epoch with a random stop band (``band`` of the positive frequencies, never the mean) removed and every
    frequency's amplitude scaled by 1 ± ``jitter``."""
    B, _, T = x.shape
    spec = torch.fft.rfft(x, dim=-1)
    F = spec.shape[-1]
    width = int(round(band * (F - 1)))
    start = 1 + (_uniform((B,), g, x.device) * (F - width)).long()
    f = torch.arange(F, device=x.device)[None]
    stop = (f >= start[:, None]) & (f < (start + width)[:, None])
    scale = 1 + jitter * (_uniform((B, 1, F), g, x.device) * 2 - 1)
    return torch.fft.irfft(spec * scale * ~stop[:, None], n=T, dim=-1)


def spatial_view(x: torch.Tensor, g: torch.Generator, drop: float = 0.2, mix: float = 0.1) -> torch.Tensor:
    """Each epoch with channels dropped at rate ``drop`` and mixed: x + ``mix`` · M x, M Gaussian / sqrt(C)."""
    B, C, _ = x.shape
    keep = (_uniform((B, C, 1), g, x.device) >= drop).to(x.dtype)
    M = torch.randn((B, C, C), generator=g).to(x.device) / C ** 0.5
    return (x + mix * M @ x) * keep



class ConvBranch(nn.Module):
    """ShallowConvNet-style: temporal conv → spatial conv → batch norm → square → average pool → log → linear."""

    def __init__(self, n_channels: int, n_times: int, embed_dim: int, n_filters: int = 16, kernel: int = 25,
                 pool: int = 35, stride: int = 7, dropout: float = 0.5) -> None:
        super().__init__()
        kernel, pool = min(kernel, n_times), min(pool, max(1, n_times - min(kernel, n_times) + 1))
        self.temporal = nn.Conv2d(1, n_filters, (1, kernel))
        self.spatial = nn.Conv2d(n_filters, n_filters, (n_channels, 1), bias=False)
        self.norm = nn.BatchNorm2d(n_filters)
        self.pool = nn.AvgPool2d((1, pool), stride=(1, stride))
        self.drop = nn.Dropout(dropout)
        n_out = n_filters * ((n_times - kernel + 1 - pool) // stride + 1)
        self.out = nn.Linear(n_out, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.spatial(self.temporal(x[:, None])))
        h = torch.log(self.pool(h * h).clamp(min=1e-6))
        return self.out(self.drop(h.flatten(1)))


class TransformerBranch(nn.Module):
    """Strided temporal conv over all channels → tokens (+ learned positions) → transformer → mean → linear."""

    def __init__(self, n_channels: int, n_times: int, embed_dim: int, width: int = 32, patch: int = 16,
                 depth: int = 2, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        patch = min(patch, n_times)
        self.tokens = nn.Conv1d(n_channels, width, patch, stride=patch // 2 or 1)
        n_tokens = (n_times - patch) // (patch // 2 or 1) + 1
        self.position = nn.Parameter(torch.zeros(1, n_tokens, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.out = nn.Linear(width, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tokens(x).transpose(1, 2) + self.position
        return self.out(self.transformer(h).mean(1))


class MVCNet(ConfigMixin, nn.Module):
    """CNN + Transformer branches fused into a classifier, with MVCNet's multi-view contrastive objective.

    Parameters
    ----------
    n_channels, n_times, n_classes : int
    embed_dim : int
        Each branch's embedding; the classifier reads both (2 · embed_dim).
    n_filters, kernel, pool, stride : ConvBranch sizes (samples).
    width, patch, depth, heads : TransformerBranch sizes.
    proj_dim : int
        Projection heads' output, where the contrastive losses are computed.
    lambda_cv, lambda_cm : float
        Weights of the cross-view and cross-model contrastive losses (0, 0: classification only).
    temperature : float
    dropout : float
    """

    def __init__(self, n_channels: int, n_times: int, n_classes: int, embed_dim: int = 32, n_filters: int = 16,
                 kernel: int = 25, pool: int = 35, stride: int = 7, width: int = 32, patch: int = 16,
                 depth: int = 2, heads: int = 4, proj_dim: int = 32, lambda_cv: float = 0.1,
                 lambda_cm: float = 0.1, temperature: float = 0.2, dropout: float = 0.5) -> None:
        super().__init__()
        self.n_channels, self.n_times = n_channels, n_times
        self.cnn = ConvBranch(n_channels, n_times, embed_dim, n_filters, kernel, pool, stride, dropout)
        self.transformer = TransformerBranch(n_channels, n_times, embed_dim, width, patch, depth, heads)
        self.project = nn.ModuleDict({b: nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.GELU(),
                                                       nn.Linear(embed_dim, proj_dim)) for b in ("cnn", "transformer")})
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * embed_dim, n_classes))
        self.lambda_cv, self.lambda_cm, self.temperature = lambda_cv, lambda_cm, temperature

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cnn(x), self.transformer(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Fused embedding (B, 2 · embed_dim): the classifier's input."""
        return torch.cat(self.branches(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Cross-entropy on the epoch and its views + the weighted cross-view and cross-model contrasts."""
        views = [x, time_view(x, g), frequency_view(x, g), spatial_view(x, g)]
        embeds = [self.branches(v) for v in views]
        ce = sum(nn.functional.cross_entropy(self.classifier(torch.cat(e, 1)), y) for e in embeds) / len(views)
        if len(x) < 2 or not (self.lambda_cv or self.lambda_cm):
            return ce
        z = {b: [self.project[b](e[i]) for e in embeds[1:]] for i, b in enumerate(("cnn", "transformer"))}
        pairs = [(0, 1), (0, 2), (1, 2)]
        cv = sum(info_nce(z[b][i], z[b][j], self.temperature) for b in z for i, j in pairs) / (2 * len(pairs))
        cm = sum(info_nce(a, b, self.temperature) for a, b in zip(z["cnn"], z["transformer"])) / len(z["cnn"])
        return ce + self.lambda_cv * cv + self.lambda_cm * cm
