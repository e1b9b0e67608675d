"""CBraMod (Wang et al., ICLR 2025) as a feature encoder: braindecode's ``CBraMod``.

The network is braindecode's (:class:`braindecode.models.CBraMod`): each EEG channel is cut into 1 s patches at
200 Hz; a patch's embedding is the sum of a temporal convolution of it and a linear map of its amplitude spectrum;
an asymmetric conditional positional encoding (a depthwise convolution over the channel × patch grid) adds where it
is, so any montage and any number of patches is accepted (channel *order* is part of the position: keep a fixed
order); each criss-cross layer attends across channels on one half of the features and across patches on the other.
neurodecode adds input in volts scaled to CBraMod's unit (0.1 mV, ``input_scale``), resampling to 200 Hz, whole
patches, and reads the encoder's output as tokens (braindecode's ``forward`` with ``return_encoder_output=True``).

Differences from the copy neurodecode 0.3 wrote itself (``tests/data/foundation_0_3``; the same tokens from the same
weights, tested): the spectral projection's dropout is the model's ``dropout`` (0.3: a fixed 0.1; the same at
inference); patches are 200 samples only (braindecode sizes the spectral projection for 101 frequency bins; 0.3
took any ``patch_size``). Parameter names are braindecode's (``net.patch_embedding.*``, ``net.encoder.layers.N.*``,
the authors' own); the reconstruction head ``proj_out`` is replaced by the identity, as the authors' fine-tuning
does, so the released ``pretrained_weights.pth`` loads with that head dropped and 0.3 checkpoints (``layers.N``)
through :func:`cbramod_key`. Weight initialisation is braindecode's.

Shapes: ``tokens(x (B, C, T), spec) -> (B, C, n_patches, d_model)``; ``forward -> (B, d_model)`` (their mean).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from neurodecode.core.braindecode_convert import import_braindecode
from neurodecode.core.registry import ConfigMixin

from neurodecode.encoders.models.tokenizers import SignalSpec, check_batch, patchify

__all__ = ["CBraMod", "cbramod_key"]


def cbramod_key(key: str) -> str:
    """braindecode's name (under ``net.``) of a parameter named in the authors' layout (the same) or neurodecode
    0.3's (``layers.N`` → ``net.encoder.layers.N``)."""
    return "net." + ("encoder." + key if key.startswith("layers.") else key)


def _legacy_keys(module: nn.Module, state: dict, prefix: str, *args: Any) -> None:
    """A state dict in the 0.3 layout (no ``net.`` keys) read through :func:`cbramod_key`."""
    old = [k for k in state if k.startswith(prefix) and not k[len(prefix):].startswith("net.")]
    for k in old:
        state[prefix + cbramod_key(k[len(prefix):])] = state.pop(k)


class CBraMod(ConfigMixin, nn.Module):
    """CBraMod's criss-cross transformer (braindecode's ``CBraMod``) for EEG epochs of any montage (fixed channel
    order) and length.

    Parameters
    ----------
    patch_size : int
        Samples per patch at 200 Hz: 200 (published; braindecode's spectral projection takes no other).
    conv_channels : int
        Temporal-convolution channels (a multiple of 5); ``d_model = 8 · conv_channels`` (published: 25 → 200).
    n_layer, nhead, dim_feedforward : transformer size (published: 12, 8, 800).
    dropout : float
        Attention, MLP and spectral-projection dropout (published: 0.1).
    input_scale : float
        Multiplies the input (volts → 0.1 mV: 1e4).
    sfreq : float
        The model's rate; inputs are resampled to it.

    Attributes
    ----------
    net : braindecode.models.CBraMod
        With ``return_encoder_output=True`` and ``proj_out`` the identity.
    embed_dim : int
    """

    channel_types = ("eeg",)
    has_subject_layers = False

    def __init__(self, patch_size: int = 200, conv_channels: int = 25, n_layer: int = 12, nhead: int = 8,
                 dim_feedforward: int = 800, dropout: float = 0.1, input_scale: float = 1e4,
                 sfreq: float = 200.0) -> None:
        super().__init__()
        if patch_size != 200:
            raise ValueError(f"field 'patch_size': expected 200 (braindecode's CBraMod sizes its spectral projection "
                             f"for 200-sample patches), got {patch_size}")
        if conv_channels % 5:
            raise ValueError(f"field 'conv_channels': expected a multiple of 5 (GroupNorm(5, ·)), got {conv_channels}")
        self.embed_dim = conv_channels * 8
        if nhead % 2 or (self.embed_dim // 2) % (nhead // 2):
            raise ValueError(f"field 'nhead': expected an even number whose half divides d_model / 2 = "
                             f"{self.embed_dim // 2}, got {nhead}")
        self.patch_size, self.input_scale, self.sfreq = patch_size, float(input_scale), float(sfreq)
        c = conv_channels
        layers = ((c, 49, 25, 24, (5, c)), (c, 3, 1, 1, (5, c)), (c, 3, 1, 1, (5, c)))
        self.net = import_braindecode("braindecode.models").CBraMod(
            n_chans=1, n_times=patch_size, sfreq=sfreq, patch_size=patch_size, dim_feedforward=dim_feedforward,
            n_layer=n_layer, nhead=nhead, emb_dim=self.embed_dim, channels_kernel_stride_padding_norm=layers,
            drop_prob=dropout, return_encoder_output=True)
        self.net.proj_out = nn.Identity()         # the reconstruction head: not part of the encoder
        self.register_load_state_dict_pre_hook(_legacy_keys)

    @classmethod
    def from_published(cls, checkpoint: str | os.PathLike, **config: Any) -> CBraMod:
        """The released CBraMod weights (``pretrained_weights.pth``, published sizes), read as tensors only, the
        reconstruction head ``proj_out`` dropped, strict otherwise."""
        from neurodecode.encoders.models.published import load_published

        model = cls(**config)
        load_published(model, checkpoint, drop=("proj_out.",), rename=cbramod_key)
        model.published = str(checkpoint)        # provenance (not a constructor argument)
        return model

    def tokens(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded patch tokens (B, C, n_patches, d_model) of ``x (B, C, T)`` at ``spec.sfreq``."""
        check_batch(x, spec)
        patches = patchify(x * self.input_scale, spec.sfreq, self.sfreq, self.patch_size)     # whole patches
        return self.net(patches.flatten(2))                # braindecode's forward: (B, C, n_patches, d_model)

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the patch tokens (B, d_model)."""
        return self.tokens(x, spec, subject).mean(dim=(1, 2))
