"""Contrastive losses — for aligning brain latents with CLIP-like embeddings, and for the models' own objectives
(MVCNet's cross-view and cross-model contrasts, the brain module's CLIP term). They live beside the models (the
lowest stage that uses them) so that a model never imports the alignment stage; ``neurodecode.alignment.losses``
(their place before 0.3) still works for one release.

Every contrastive loss gathers the batch of all processes (``torch.distributed.nn.functional.all_gather``, which
keeps gradients) and scores each process's own rows against the global batch, so that with gradients averaged
across processes (DDP) the loss and its gradients equal those of one process on the same global batch — the
contrastive negatives do not shrink with the number of GPUs (MindEye2 issues #43, #31). Without an initialised
process group they act on the local batch.

* :class:`InfoNCELoss` — CLIP's symmetric cross-entropy over the similarity matrix; :func:`info_nce` is the same
  loss as a function of a fixed temperature.
* :class:`SoftCLIPLoss` — MindEye's SoftCLIP: soft targets from the target-target similarities.
* :class:`BiMixCoLoss` with :func:`mixco` — MindEye's BiMixCo: brain inputs mixed by pairs (Beta-distributed
  weights), soft labels on the mixed partners, both directions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BiMixCoLoss", "InfoNCELoss", "SoftCLIPLoss", "gather", "info_nce", "mixco"]


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, ...) of all processes along dim 0, keeping gradients (B · world_size, ...)."""
    rank, world = _dist()
    if world == 1:
        return x
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # the public autograd all_gather; its successor is still a private API
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(x), dim=0)


def _check(brain: torch.Tensor, target: torch.Tensor) -> None:
    if brain.ndim != 2 or brain.shape != target.shape:
        raise ValueError(f"field 'brain': expected (batch, embed_dim) like 'target' {tuple(target.shape)}, got "
                         f"{tuple(brain.shape)}")


class _Contrastive(nn.Module):
    def __init__(self, temperature: float = 0.05, learn_temperature: bool = False, bidirectional: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"field 'temperature': expected > 0, got {temperature}")
        log_t = torch.tensor(float(temperature), dtype=torch.float64).log()
        self.log_temperature = nn.Parameter(log_t) if learn_temperature else None
        self.register_buffer("_log_t", log_t)
        self.bidirectional = bidirectional

    @property
    def temperature(self) -> torch.Tensor:
        return (self.log_temperature if self.log_temperature is not None else self._log_t).exp()

    def _tau(self, like: torch.Tensor) -> torch.Tensor:
        return self.temperature.to(like.dtype)

    @staticmethod
    def _offset(batch: int) -> torch.Tensor:
        rank, _ = _dist()
        return rank * batch + torch.arange(batch)

    def _prepare(self, brain: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Normalised local rows, the gathered global batch, the temperature and this process's row offsets."""
        _check(brain, target)
        b, t = F.normalize(brain, dim=-1), F.normalize(target, dim=-1)
        return b, t, gather(b), gather(t), self._tau(b), self._offset(b.shape[0]).to(b.device)

    def _soft_cross_entropy(self, b: torch.Tensor, t: torch.Tensor, b_all: torch.Tensor, t_all: torch.Tensor,
                            tau: torch.Tensor, labels_bt: torch.Tensor, labels_tb: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of local brain rows against all targets (labels_bt), and of local targets against all
        brains (labels_tb) when bidirectional; both (B, global batch)."""
        loss = -(labels_bt * (b @ t_all.T / tau).log_softmax(-1)).sum(-1).mean()
        if self.bidirectional:
            loss = (loss - (labels_tb * (t @ b_all.T / tau).log_softmax(-1)).sum(-1).mean()) / 2
        return loss


class InfoNCELoss(_Contrastive):
    """CLIP / InfoNCE loss between brain latents and targets (both L2-normalised inside).

    Parameters
    ----------
    temperature : float
        Softmax temperature (MindEye: 0.05 for the image embedding).
    learn_temperature : bool
        Learn it (as a log), as CLIP does.
    bidirectional : bool
        Average brain→target and target→brain cross-entropies.

    Shapes: ``forward(brain (B, embed_dim), target (B, embed_dim)) -> scalar``.
    """

    def forward(self, brain: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        b, t, b_all, t_all, tau, offset = self._prepare(brain, target)
        onehot = F.one_hot(offset, t_all.shape[0]).to(b.dtype)
        return self._soft_cross_entropy(b, t, b_all, t_all, tau, onehot, onehot)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE (:class:`InfoNCELoss` at a fixed ``temperature``): row i of ``a`` (B, D) and of ``b``
    (B, D) are positives, the other rows of the (global) batch negatives."""
    return InfoNCELoss(temperature)(a, b)


class SoftCLIPLoss(_Contrastive):
    """MindEye's SoftCLIP: cross-entropy against soft labels ``softmax(t t^T / τ)`` instead of the identity.

    Shapes: ``forward(brain (B, embed_dim), target (B, embed_dim)) -> scalar``.
    """

    def forward(self, brain: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        b, t, b_all, t_all, tau, _ = self._prepare(brain, target)
        soft = (t @ t_all.T / tau).softmax(-1).detach()
        return self._soft_cross_entropy(b, t, b_all, t_all, tau, soft, soft)


def mixco(x: torch.Tensor, beta: float = 0.15,
          s_thresh: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix each input with a random partner (MindEye's ``mixco``), using torch's global random state.

    Parameters
    ----------
    x : tensor (B, ...)
        Brain inputs (e.g. voxels) before the encoder.
    beta : float
        Mixing weights are drawn from Beta(beta, beta).
    s_thresh : float
        Fraction of the items that are mixed.

    Returns
    -------
    mixed : tensor (B, ...)
    perm : tensor of int (B,)
        Each item's partner within the batch.
    betas : tensor (B,)
        Weight of the item's own input (1 where not mixed).
    select : tensor of bool (B,)
        Items that were mixed.
    """
    B = x.shape[0]
    perm = torch.randperm(B, device=x.device)
    betas = torch.distributions.Beta(beta, beta).sample((B,)).to(x.device, x.dtype)
    select = torch.rand(B, device=x.device) <= s_thresh
    betas = torch.where(select, betas, torch.ones_like(betas))
    shape = (B,) + (1,) * (x.ndim - 1)
    mixed = x * betas.view(shape) + x[perm] * (1 - betas.view(shape))
    return mixed, perm, betas, select


class BiMixCoLoss(_Contrastive):
    """MindEye's BiMixCo: contrastive loss with soft labels on mixed inputs (see :func:`mixco`).

    ``forward(brain (B, D), target (B, D), perm (B,), betas (B,))``: item i's label is ``betas[i]`` on its own target
    and ``1 - betas[i]`` on its partner ``perm[i]`` (indices within the local batch), in both directions.
    """

    def forward(self, brain: torch.Tensor, target: torch.Tensor, perm: torch.Tensor,
                betas: torch.Tensor) -> torch.Tensor:
        B = brain.shape[0]
        if perm.shape != (B,) or betas.shape != (B,):
            raise ValueError(f"field 'perm'/'betas': expected shape ({B},), got {tuple(perm.shape)} and "
                             f"{tuple(betas.shape)}")
        b, t, b_all, t_all, tau, offset = self._prepare(brain, target)
        probs = torch.zeros(B, t_all.shape[0], dtype=b.dtype, device=b.device)
        rows = torch.arange(B, device=b.device)
        probs[rows, offset] = betas.to(b.dtype)
        probs[rows, offset[perm]] += 1 - betas.to(b.dtype)
        probs_t = torch.zeros_like(probs)  # target j's labels: the brains that hold j (its own and those mixed with it)
        probs_t[:, offset] = probs[:, offset].T
        return self._soft_cross_entropy(b, t, b_all, t_all, tau, probs, probs_t)
