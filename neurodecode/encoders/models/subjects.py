"""Cross-subject aggregation: per-subject layers around a shared model, the cycle loss, and adapting to a new subject.

* :class:`SubjectLayers` — a per-subject ``K × K`` channel mixing (Défossez et al.'s subject layers for MEG/EEG,
  after spatial attention), identity at initialisation.
* :class:`SubjectEmbedders` — per-subject input layers from any number of voxels (or sensors) into one shared space:
  ``mode="linear"`` (MindEye2's per-subject linear / "ridge" layer) or ``mode="pool"`` (MindBridge:
  ``AdaptiveMaxPool1d(pool_size)`` makes every subject's voxel count equal, then a per-subject linear). Inputs of
  different sizes travel in one zero-padded batch with their subject indices; each row uses its own subject's layer.
* :class:`CrossSubjectModel` — embedders → a shared :class:`~neurodecode.encoders.models.mlp.ResidualMLP` → targets, with
  per-subject builders (shared space → the subject's voxels) for MindBridge's cycle loss (subject A's latent, built
  into subject B's voxels and embedded again, must come back) and a reconstruction loss.
  :meth:`CrossSubjectModel.add_subject` adds layers for a new subject with any input size; fitting them (ridge or
  reset-tuning) is :func:`neurodecode.alignment.adapt_subject`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin

from neurodecode.encoders.models.mlp import ResidualMLP

__all__ = ["CrossSubjectModel", "SubjectEmbedders", "SubjectLayers", "pad_inputs"]


class SubjectLayers(nn.Module):
    """Per-subject channel mixing ``x'_b = W[subject_b] x_b`` (identity at initialisation).

    Shapes: ``forward(x (B, K, T), subject (B,) int) -> (B, K, T)``.
    """

    def __init__(self, n_subjects: int, n_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(n_channels).repeat(n_subjects, 1, 1))

    def forward(self, x: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        if subject.min() < 0 or subject.max() >= self.weight.shape[0]:
            raise ValueError(f"field 'subject': expected indices in [0, {self.weight.shape[0]}), got "
                             f"{subject.min().item()}..{subject.max().item()}")
        return torch.einsum("bjk,bkt->bjt", self.weight[subject], x)


def subject_layer_index(names: Sequence[Any], known: Sequence[str], where: str = "epochs",
                        model: str = "encoder") -> torch.Tensor:
    """The subject layer (B,) of each epoch's subject name, by the layers' names ``known``: an error naming the
    subjects the ``model`` has no layer for."""
    lookup = {str(s): i for i, s in enumerate(known)}
    missing = sorted({str(n) for n in names} - set(lookup))
    if missing:
        raise ValueError(f"{where}: field 'subject': expected subjects the {model} has layers for {list(known)}, got "
                         f"{missing[:5]}")
    return torch.tensor([lookup[str(n)] for n in names], dtype=torch.long)


def pad_inputs(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-subject inputs (n_s, d_s) into one zero-padded array (Σ n_s, max d_s) and subject indices."""
    width = max(a.shape[1] for a in arrays)
    X = np.zeros((sum(len(a) for a in arrays), width), dtype=np.float32)
    subject = np.concatenate([np.full(len(a), s) for s, a in enumerate(arrays)])
    row = 0
    for a in arrays:
        X[row:row + len(a), :a.shape[1]] = a
        row += len(a)
    return X, subject


class SubjectEmbedders(nn.Module):
    """Per-subject input layers into a shared space (any input size per subject).

    Parameters
    ----------
    n_inputs : mapping subject name → input size (voxels or sensors)
    shared_dim : int
    mode : {"linear", "pool"}
        Per-subject linear on all inputs (MindEye2), or adaptive max pooling to ``pool_size`` then a per-subject
        linear (MindBridge).
    pool_size : int
    """

    def __init__(self, n_inputs: Mapping[str, int], shared_dim: int, mode: str = "linear",
                 pool_size: int = 1024) -> None:
        super().__init__()
        if mode not in ("linear", "pool"):
            raise ValueError(f"field 'mode': expected 'linear' or 'pool', got {mode!r}")
        self.mode, self.pool_size, self.shared_dim = mode, pool_size, shared_dim
        self.subjects: list[str] = []
        self.n_inputs: dict[str, int] = {}
        self.layers = nn.ModuleList()
        for name, n in n_inputs.items():
            self.add_subject(name, n)

    def add_subject(self, name: str, n_inputs: int) -> int:
        """Append a randomly initialised layer for a new subject; returns its index."""
        if name in self.n_inputs:
            raise ValueError(f"field 'subject': {name!r} already has layers")
        self.subjects.append(str(name))
        self.n_inputs[str(name)] = int(n_inputs)
        self.layers.append(nn.Linear(self._width(n_inputs), self.shared_dim))
        return len(self.subjects) - 1

    def _width(self, n_inputs: int) -> int:
        return self.pool_size if self.mode == "pool" else n_inputs

    def prepare(self, x: torch.Tensor, n_inputs: int) -> torch.Tensor:
        """A subject's own inputs (B, n_inputs) → the layer's input (pooled in ``pool`` mode)."""
        if self.mode == "pool":
            return nn.functional.adaptive_max_pool1d(x[:, None, :], self.pool_size)[:, 0]
        return x

    def forward(self, x: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        """``x (B, max_inputs)`` zero-padded, ``subject (B,)`` → ``(B, shared_dim)``."""
        out = x.new_zeros(x.shape[0], self.shared_dim)
        for s in torch.unique(subject).tolist():
            if not 0 <= s < len(self.subjects):
                raise ValueError(f"field 'subject': expected indices in [0, {len(self.subjects)}), got {s}")
            rows = subject == s
            n = self.n_inputs[self.subjects[s]]
            if x.shape[1] < n:
                raise ValueError(f"field 'x': subject {self.subjects[s]!r} has {n} inputs, got rows of {x.shape[1]}")
            out[rows] = self.layers[s](self.prepare(x[rows, :n], n))
        return out


class CrossSubjectModel(ConfigMixin, nn.Module):
    """Per-subject embedders → shared residual MLP → targets; per-subject builders for the cycle loss.

    Parameters
    ----------
    n_inputs : mapping subject → input size
    out_dim : int
        Target size (e.g. an image-embedding dimension or pixels).
    shared_dim, hidden, n_blocks, dropout :
        Shared space and backbone sizes.
    mode, pool_size :
        See :class:`SubjectEmbedders`.
    cycle_weight, recon_weight : float
        Weights of MindBridge's cycle loss and of the builders' reconstruction loss in :meth:`loss`.
    """

    def __init__(self, n_inputs: Mapping[str, int], out_dim: int, shared_dim: int = 256, hidden: int = 512,
                 n_blocks: int = 1, dropout: float = 0.1, mode: str = "linear", pool_size: int = 1024,
                 cycle_weight: float = 0.1, recon_weight: float = 0.1) -> None:
        super().__init__()
        self.embedders = SubjectEmbedders(n_inputs, shared_dim, mode, pool_size)
        self.builders = nn.ModuleList(nn.Linear(shared_dim, embedders_width)
                                      for embedders_width in (self.embedders._width(n) for n in n_inputs.values()))
        self.backbone = ResidualMLP(shared_dim, out_dim, hidden=hidden, n_blocks=n_blocks, dropout=dropout)
        self.cycle_weight, self.recon_weight = cycle_weight, recon_weight

    @property
    def subjects(self) -> list[str]:
        return self.embedders.subjects

    def subject_index(self, names: Sequence[str]) -> torch.Tensor:
        unknown = sorted(set(map(str, names)) - set(self.subjects))
        if unknown:
            raise ValueError(f"field 'subject': expected subjects the model has layers for {self.subjects}, got "
                             f"{unknown}; add them with neurodecode.alignment.adapt_subject()")
        return torch.tensor([self.subjects.index(str(n)) for n in names])

    def shared(self, x: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        """Shared-space latents (B, shared_dim)."""
        return self.embedders(x, subject)

    def forward(self, x: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.shared(x, subject))

    def loss(self, x: torch.Tensor, subject: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """MSE to targets + reconstruction (builder of the own subject) + cycle (through a random other subject)."""
        z = self.shared(x, subject)
        out = {"mse": nn.functional.mse_loss(self.backbone(z), y)}
        recon, cycle = z.new_zeros(()), z.new_zeros(())
        n_subj = len(self.subjects)
        for s in torch.unique(subject).tolist():
            rows = subject == s
            n = self.embedders.n_inputs[self.subjects[s]]
            own = self.embedders.prepare(x[rows, :n], n)
            recon = recon + nn.functional.mse_loss(self.builders[s](z[rows]), own) * rows.float().mean()
            if n_subj > 1:
                other = (s + 1 + int(torch.randint(n_subj - 1, ()))) % n_subj
                z_back = self.embedders.layers[other](self.builders[other](z[rows]))
                cycle = cycle + nn.functional.mse_loss(z_back, z[rows].detach()) * rows.float().mean()
        out["recon"], out["cycle"] = recon, cycle
        out["loss"] = out["mse"] + self.recon_weight * recon + self.cycle_weight * cycle
        return out

    # -- adapting to a new subject ------------------------------------------------------------------------------
    @torch.no_grad()
    def stimulus_latents(self, x: torch.Tensor, subject: torch.Tensor, stimulus: Sequence[Any]) -> dict[Any, torch.Tensor]:
        """Mean shared-space latent of each stimulus over the given trials (of trained subjects)."""
        self.eval()
        z = self.shared(x, subject)
        stim = np.asarray(stimulus, dtype=object)
        return {s: z[torch.as_tensor(stim == s)].mean(0) for s in dict.fromkeys(stim.tolist())}

    def add_subject(self, name: str, n_inputs: int) -> int:
        """Append randomly initialised layers (embedder and builder) for a new subject; returns its index.

        Fitting them — closed-form ridge or reset-tuning — is :func:`neurodecode.alignment.adapt_subject`.
        """
        index = self.embedders.add_subject(name, n_inputs)
        self.builders.append(nn.Linear(self.embedders.shared_dim, self.embedders._width(n_inputs)))
        self.config["n_inputs"][str(name)] = int(n_inputs)
        return index

    def adapt(self, *args: Any, **kwargs: Any) -> CrossSubjectModel:
        """Moved: ``neurodecode.alignment.adapt_subject(model, name, x, ...)`` (same arguments)."""
        raise AttributeError("CrossSubjectModel.adapt moved to neurodecode.alignment.adapt_subject(model, name, x, "
                             "y=None, method='ridge' | 'reset', ...) with the same arguments")
