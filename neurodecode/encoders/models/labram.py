"""LaBraM (Jiang et al., ICLR 2024): the large brain model's neural transformer, as a feature encoder.

Each EEG channel is cut into 1 s patches at 200 Hz; a temporal convolution embeds each patch; a token gets the
learned embedding of its electrode (a table over LaBraM's list of 120 extended 10-20 names, looked up by channel
name — a channel the table lacks is an error, never a zero) and of its patch index; a class token is prepended and
a ViT-style transformer (pre-norm, LayerScale, query/key LayerNorm, query/value biases) encodes all tokens.

Module and parameter names are those of the published ``modeling_finetune.NeuralTransformer``, so a released
checkpoint (``labram-base.pth``) loads by :meth:`LaBraM.from_published` after stripping its ``student.`` prefix and
dropping the pretraining parts (``lm_head``, ``mask_token``, the final ``norm``). Input in volts (MNE's unit) is
scaled to LaBraM's training unit, 0.1 mV (µV / 100), by ``input_scale``.

Shapes: ``tokens(x (B, C, T), spec) -> (B, C, n_patches, embed_dim)``; ``forward -> (B, embed_dim)``, the mean of
the patch tokens (the published mean pooling, before its ``fc_norm``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin

from neurodecode.encoders.models.tokenizers import SignalSpec, check_batch, patchify

__all__ = ["LABRAM_CHANNELS", "LaBraM", "labram_channel_index"]

#: LaBraM's electrode table (its ``utils.standard_1020``), position embedding row = index + 1 (row 0: class token)
LABRAM_CHANNELS = (
    "FP1", "FPZ", "FP2", "AF9", "AF7", "AF5", "AF3", "AF1", "AFZ", "AF2", "AF4", "AF6", "AF8", "AF10",
    "F9", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8", "F10",
    "FT9", "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "FT10",
    "T9", "T7", "C5", "C3", "C1", "CZ", "C2", "C4", "C6", "T8", "T10",
    "TP9", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "TP10",
    "P9", "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "P10",
    "PO9", "PO7", "PO5", "PO3", "PO1", "POZ", "PO2", "PO4", "PO6", "PO8", "PO10",
    "O1", "OZ", "O2", "O9", "CB1", "CB2", "IZ", "O10", "T3", "T5", "T4", "T6", "M1", "M2", "A1", "A2",
    "CFC1", "CFC2", "CFC3", "CFC4", "CFC5", "CFC6", "CFC7", "CFC8",
    "CCP1", "CCP2", "CCP3", "CCP4", "CCP5", "CCP6", "CCP7", "CCP8",
    "T1", "T2", "FTT9H", "TTP7H", "TPP9H", "FTT10H", "TPP8H", "TPP10H")


def labram_channel_index(names: Sequence[str], where: str = "channels") -> list[int]:
    """Row of LaBraM's position embedding for each channel name (case-insensitive; EEGMMIDB's trailing dots,
    an ``EEG `` prefix and a ``-REF``/``-LE`` reference suffix are ignored)."""
    table = {n: i + 1 for i, n in enumerate(LABRAM_CHANNELS)}
    rows, unknown = [], []
    for name in names:
        key = str(name).upper().replace(".", "").strip().removeprefix("EEG ").strip()
        for suffix in ("-REF", "-LE"):
            key = key.removesuffix(suffix)
        rows.append(table.get(key, -1))
        if key not in table:
            unknown.append(str(name))
    if unknown:
        raise ValueError(f"{where}: field 'channels.names': LaBraM has an embedding for the extended 10-20 names "
                         f"only (e.g. Fp1, FCz, TP8); got {len(unknown)} channel(s) it does not know {unknown[:6]} — "
                         "pick or rename them")
    return rows


class TemporalConv(nn.Module):
    """Three 1-D convolutions over each patch (published layout); output (B, n_tokens, out_chans · n_steps)."""

    def __init__(self, out_chans: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, out_chans, kernel_size=(1, 15), stride=(1, 8), padding=(0, 7))
        self.gelu1, self.norm1 = nn.GELU(), nn.GroupNorm(4, out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, kernel_size=(1, 3), padding=(0, 1))
        self.gelu2, self.norm2 = nn.GELU(), nn.GroupNorm(4, out_chans)
        self.conv3 = nn.Conv2d(out_chans, out_chans, kernel_size=(1, 3), padding=(0, 1))
        self.norm3, self.gelu3 = nn.GroupNorm(4, out_chans), nn.GELU()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        B, C, P, L = patches.shape
        x = patches.reshape(B, 1, C * P, L)
        x = self.gelu1(self.norm1(self.conv1(x)))
        x = self.gelu2(self.norm2(self.conv2(x)))
        x = self.gelu3(self.norm3(self.conv3(x)))                   # (B, out_chans, C·P, steps)
        return x.permute(0, 2, 3, 1).reshape(B, C * P, -1)          # time-major, then conv channels


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads, head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        if qkv_bias:
            self.q_bias, self.v_bias = nn.Parameter(torch.zeros(dim)), nn.Parameter(torch.zeros(dim))
        self.q_norm, self.k_norm = nn.LayerNorm(head_dim, eps=1e-6), nn.LayerNorm(head_dim, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        bias = None
        if hasattr(self, "q_bias"):
            bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        q, k, v = nn.functional.linear(x, self.qkv.weight, bias).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale (``gamma_1``/``gamma_2``, initialised at ``init_values``)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_bias: bool, init_values: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads, qkv_bias)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, int(dim * mlp_ratio))
        self.gamma_1 = nn.Parameter(torch.full((dim,), float(init_values)))
        self.gamma_2 = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.gamma_1 * self.attn(self.norm1(x))
        return x + self.gamma_2 * self.mlp(self.norm2(x))


class LaBraM(ConfigMixin, nn.Module):
    """LaBraM's neural transformer for EEG epochs (any of its 120 electrodes, up to ``max_patches`` seconds).

    Parameters
    ----------
    patch_size : int
        Samples per patch at 200 Hz (published: 200, i.e. 1 s).
    out_chans : int
        Temporal-convolution channels; ``embed_dim = out_chans · ceil(patch_size / 8)`` (base: 8 → 200).
    depth, heads, mlp_ratio : transformer size (base: 12, 10, 4; large: 24, 16, 4 with out_chans 16).
    qkv_bias : bool
        Query/value biases (the released fine-tuning setting).
    init_values : float
        LayerScale initial value.
    max_patches : int
        Rows of the patch-index embedding (published: 16).
    input_scale : float
        Multiplies the input (volts → 0.1 mV: 1e4, LaBraM's µV / 100).
    sfreq : float
        The model's rate; inputs are resampled to it.
    """

    channel_types = ("eeg",)
    has_subject_layers = False

    def __init__(self, patch_size: int = 200, out_chans: int = 8, depth: int = 12, heads: int = 10,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, init_values: float = 0.1, max_patches: int = 16,
                 input_scale: float = 1e4, sfreq: float = 200.0) -> None:
        super().__init__()
        if out_chans % 4:
            raise ValueError(f"field 'out_chans': expected a multiple of 4 (GroupNorm(4, out_chans)), got {out_chans}")
        self.embed_dim = out_chans * ((patch_size - 1) // 8 + 1)
        if self.embed_dim % heads:
            raise ValueError(f"field 'heads': expected a divisor of embed_dim {self.embed_dim}, got {heads}")
        self.patch_size, self.max_patches = patch_size, max_patches
        self.input_scale, self.sfreq = float(input_scale), float(sfreq)
        self.patch_embed = TemporalConv(out_chans)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 129, self.embed_dim))    # class token + 128 electrode rows
        self.time_embed = nn.Parameter(torch.zeros(1, max_patches, self.embed_dim))
        self.blocks = nn.ModuleList(Block(self.embed_dim, heads, mlp_ratio, qkv_bias, init_values)
                                    for _ in range(depth))
        for p in (self.cls_token, self.pos_embed, self.time_embed):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @classmethod
    def from_published(cls, checkpoint: str | os.PathLike, **config: Any) -> LaBraM:
        """A released LaBraM checkpoint (e.g. ``labram-base.pth``: base sizes; pass ``out_chans=16, depth=24,
        heads=16`` for large), read as tensors only (:mod:`~neurodecode.encoders.models.published`)."""
        from neurodecode.encoders.models.published import load_published

        model = cls(**config)
        load_published(model, checkpoint, drop=("lm_head.", "mask_token", "norm.", "head.", "fc_norm."))
        model.published = str(checkpoint)        # provenance (not a constructor argument)
        return model

    def tokens(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded patch tokens (B, C, n_patches, embed_dim) of ``x (B, C, T)`` at ``spec.sfreq``."""
        check_batch(x, spec)
        rows = torch.as_tensor(labram_channel_index(spec.names or [""] * spec.n_channels), device=x.device)
        patches = patchify(x * self.input_scale, spec.sfreq, self.sfreq, self.patch_size)   # (B, C, P, L)
        B, C, P, _ = patches.shape
        if P > self.max_patches:
            raise ValueError(f"field 'x': LaBraM embeds at most {self.max_patches} patches "
                             f"({self.max_patches * self.patch_size / self.sfreq:g} s), got {P}")
        tok = self.patch_embed(patches).reshape(B, C, P, self.embed_dim)
        tok = tok + self.pos_embed[0, rows][None, :, None] + self.time_embed[0, :P][None, None]
        seq = torch.cat([(self.cls_token + self.pos_embed[:, :1]).expand(B, -1, -1), tok.reshape(B, C * P, -1)], 1)
        for block in self.blocks:
            seq = block(seq)
        return seq[:, 1:].reshape(B, C, P, self.embed_dim)

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the patch tokens (B, embed_dim)."""
        return self.tokens(x, spec, subject).mean(dim=(1, 2))
