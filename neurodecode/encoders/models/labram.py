"""LaBraM (Jiang et al., ICLR 2024) as a feature encoder: braindecode's ``Labram``, read at any length.

The network is braindecode's (:class:`braindecode.models.Labram`, its modules and parameters): each EEG channel is
cut into 1 s patches at 200 Hz, a temporal convolution embeds each patch, a token gets the learned embedding of its
electrode (a row of braindecode's ``LABRAM_CHANNEL_ORDER`` — LaBraM's 120 extended 10-20 names and 8 bipolar TUH
derivations — looked up by channel name: a channel the table lacks is an error, never a zero) and of its patch
index; a class token is prepended and the ViT-style blocks (pre-norm, LayerScale, query/key LayerNorm, query/value
biases) encode all tokens. neurodecode adds what a feature encoder needs around it: input in volts scaled to
LaBraM's unit (0.1 mV, ``input_scale``), resampling to 200 Hz, tolerant channel names (EEGMMIDB's dots, an ``EEG``
prefix, ``-REF``/``-LE`` suffixes), and any number of patches up to ``max_patches`` — braindecode's ``forward``
takes the one length it was built for, so :meth:`LaBraM.tokens` runs its modules in the order of its
``forward_features`` for the input's own number of patches (equal to it at the built length, tested).

Differences from the copy neurodecode 0.3 wrote itself (``tests/data/foundation_0_3``; the same tokens from the same
weights, tested): none in the computation. Parameter names are braindecode's (``net.position_embedding``,
``net.temporal_embedding``, ``net.patch_embed.temporal_conv.*``, ``net.blocks.N.mlp.0/2``); 0.3 checkpoints and the
authors' released ``labram-base.pth`` load through one key mapping (:func:`labram_key`). braindecode's model is
built with ``use_mean_pooling=True`` and its pooled ``fc_norm`` removed: the tokens are those before any final
norm, as 0.3's and as the authors' fine-tuning reads them before its own ``fc_norm``. Weight initialisation is
braindecode's (its ``_init_weights`` / ``fix_init_weight_and_init_embedding``), so a random model differs from
0.3's random model by its draw.

Shapes: ``tokens(x (B, C, T), spec) -> (B, C, n_patches, embed_dim)``; ``forward -> (B, embed_dim)``, the mean of
the patch tokens.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from neurodecode.core.braindecode_convert import import_braindecode
from neurodecode.core.registry import ConfigMixin

from neurodecode.encoders.models.tokenizers import SignalSpec, check_batch, patchify

__all__ = ["LABRAM_CHANNELS", "LaBraM", "labram_channel_index", "labram_key"]

#: LaBraM's electrode table (braindecode's ``LABRAM_CHANNEL_ORDER``): position embedding row = index + 1
LABRAM_CHANNELS: tuple[str, ...] = tuple(import_braindecode("braindecode.models.labram").LABRAM_CHANNEL_ORDER)

#: a key of the published / 0.3 layout → braindecode's (after ``net.``)
_RENAMES = (("pos_embed", "position_embedding"), ("time_embed", "temporal_embedding"),
            ("patch_embed.", "patch_embed.temporal_conv."))


def labram_key(key: str) -> str:
    """braindecode's name (under ``net.``) of a parameter named in the authors' / neurodecode 0.3 layout
    (``pos_embed`` → ``net.position_embedding``, ``blocks.N.mlp.fc1`` → ``net.blocks.N.mlp.0`` ...)."""
    for old, new in _RENAMES:
        if key.startswith(old):
            key = new + key[len(old):]
            break
    key = re.sub(r"^(blocks\.\d+\.mlp\.)fc1\.", r"\g<1>0.", key)
    return "net." + re.sub(r"^(blocks\.\d+\.mlp\.)fc2\.", r"\g<1>2.", key)


def labram_channel_index(names: Sequence[str], where: str = "channels") -> list[int]:
    """Row of LaBraM's position embedding for each channel name (case-insensitive; EEGMMIDB's trailing dots,
    an ``EEG `` prefix and a ``-REF``/``-LE`` reference suffix are ignored)."""
    table = {n.upper(): i + 1 for i, n in enumerate(LABRAM_CHANNELS)}
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


def _legacy_keys(module: nn.Module, state: dict, prefix: str, *args: Any) -> None:
    """A state dict in the 0.3 layout (no ``net.`` keys) read through :func:`labram_key`."""
    old = [k for k in state if k.startswith(prefix) and not k[len(prefix):].startswith("net.")]
    for k in old:
        state[prefix + labram_key(k[len(prefix):])] = state.pop(k)


class LaBraM(ConfigMixin, nn.Module):
    """LaBraM's neural transformer (braindecode's ``Labram``) for EEG epochs of its electrodes, up to ``max_patches``
    seconds.

    Parameters
    ----------
    patch_size : int
        Samples per patch at 200 Hz (published: 200, i.e. 1 s).
    out_chans : int
        Temporal-convolution channels (a multiple of 4); ``embed_dim = out_chans · ceil(patch_size / 8)``
        (base: 8 → 200).
    depth, heads, mlp_ratio : transformer size (base: 12, 10, 4; large: 24, 16, 4 with out_chans 16).
    qkv_bias : bool
        Query/value biases (the released setting; braindecode's default is off).
    init_values : float
        LayerScale initial value.
    max_patches : int
        Rows of the patch-index embedding (published: 16); at least 2.
    input_scale : float
        Multiplies the input (volts → 0.1 mV: 1e4, LaBraM's µV / 100).
    sfreq : float
        The model's rate; inputs are resampled to it.

    Attributes
    ----------
    net : braindecode.models.Labram
        Built for ``max_patches − 1`` patches (braindecode sizes its patch-index embedding ``n_times //
        patch_size + 1`` rows), one channel (its channel table is by name), no classification head.
    embed_dim : int
    """

    channel_types = ("eeg",)
    has_subject_layers = False

    def __init__(self, patch_size: int = 200, out_chans: int = 8, depth: int = 12, heads: int = 10,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, init_values: float = 0.1, max_patches: int = 16,
                 input_scale: float = 1e4, sfreq: float = 200.0) -> None:
        super().__init__()
        if out_chans % 4:
            raise ValueError(f"field 'out_chans': expected a multiple of 4 (GroupNorm(4, out_chans)), got {out_chans}")
        embed_dim = out_chans * ((patch_size - 1) // 8 + 1)
        if embed_dim % heads:
            raise ValueError(f"field 'heads': expected a divisor of embed_dim {embed_dim}, got {heads}")
        if max_patches < 2:
            raise ValueError(f"field 'max_patches': expected at least 2, got {max_patches}")
        self.patch_size, self.max_patches = patch_size, max_patches
        self.input_scale, self.sfreq = float(input_scale), float(sfreq)
        Labram = import_braindecode("braindecode.models").Labram
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="braindecode")
            self.net = Labram(n_times=(max_patches - 1) * patch_size, n_chans=1, n_outputs=0, sfreq=sfreq,
                              patch_size=patch_size, conv_out_channels=out_chans, num_layers=depth, num_heads=heads,
                              mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, init_values=init_values, use_mean_pooling=True)
        self.net.fc_norm = None                 # the tokens are read before any final norm
        self.embed_dim = self.net.embed_dim
        self.register_load_state_dict_pre_hook(_legacy_keys)

    @classmethod
    def from_published(cls, checkpoint: str | os.PathLike, **config: Any) -> LaBraM:
        """A released LaBraM checkpoint (e.g. ``labram-base.pth``: base sizes; pass ``out_chans=16, depth=24,
        heads=16`` for large), read as tensors only (:mod:`~neurodecode.encoders.models.published`), its keys mapped
        onto braindecode's by :func:`labram_key` (the ``student.`` prefix stripped, the pretraining parts —
        ``lm_head``, ``mask_token``, the final ``norm`` — dropped), strict otherwise."""
        from neurodecode.encoders.models.published import load_published

        model = cls(**config)
        load_published(model, checkpoint, drop=("lm_head.", "mask_token", "norm.", "head.", "fc_norm."),
                       rename=labram_key)
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
        net = self.net                                      # braindecode's forward_features, for P patches
        tok = net.patch_embed.temporal_conv(patches).reshape(B, C, P, self.embed_dim)
        tok = tok + net.position_embedding[0, rows][None, :, None] + net.temporal_embedding[0, :P][None, None]
        cls = (net.cls_token + net.position_embedding[:, :1]).expand(B, -1, -1)
        seq = net.pos_drop(torch.cat([cls, tok.reshape(B, C * P, -1)], 1))
        for block in net.blocks:
            seq = block(seq)
        return net.norm(seq)[:, 1:].reshape(B, C, P, self.embed_dim)

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the patch tokens (B, embed_dim)."""
        return self.tokens(x, spec, subject).mean(dim=(1, 2))
