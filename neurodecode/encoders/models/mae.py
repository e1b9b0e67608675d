"""Channel-agnostic signal encoder and its masked-autoencoder pretraining (LaBraM / Du-IN / BrainMAE family).

:class:`SignalEncoder` reads ``(B, C, T)`` EEG/MEG/sEEG epochs (or fMRI ROI series, channels = ROIs) of any montage
and rate: the input is resampled to the model's rate, cut into per-channel patches of ``patch_seconds``, and each
token gets the embedding of its channel (3D position + type), or of its region (``tokens="regions"``: Du-IN's
fusion of the contacts of a region) or of a virtual channel (``tokens="spatial"``: the MEG decoder's spatial
attention), plus the embedding of its time in seconds. A transformer encodes the tokens;
``forward(x, spec) -> (B, embed_dim)`` is the mean over tokens (``tokens(x, spec)`` gives them all).

:class:`SignalMAE` masks tokens (``mask="random"``, whole channels/regions ``"channel"``, or whole time steps
``"time"``, at ``mask_ratio``), encodes the visible ones, and a small decoder predicts the masked ones' targets:
the raw patch (``target="raw"``, z-scored per patch by default, as MAE's ``norm_pix_loss``), its log-amplitude
spectrum (``"spectral"``), or — the codebook-guided variant of LaBraM/Du-IN — the index of the patch's code in a
trained :class:`VQTokenizer` (``"codes"``, cross-entropy). Shapes: ``SignalMAE(x (B, C, T), spec) -> loss``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from neurodecode.core.registry import ConfigMixin

from neurodecode.core.epochs import CHANNEL_TYPES
from neurodecode.encoders.models.tokenizers import (ChannelEmbedding, PatchEmbedding, RegionFusion, SignalSpec,
                                                    SpatialAttention, check_batch, time_embedding)

__all__ = ["MASKS", "TARGETS", "SignalEncoder", "SignalMAE", "VQTokenizer", "patch_targets"]

MASKS = ("random", "channel", "time")
TARGETS = ("raw", "spectral", "codes")
TOKENS = ("channels", "regions", "spatial")


def _transformer(dim: int, depth: int, heads: int, mlp_ratio: float, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False)


class SignalEncoder(ConfigMixin, nn.Module):
    """Transformer over (channel | region | virtual channel) × time patches, for any montage and sampling rate.

    Parameters
    ----------
    sfreq : float
        The model's rate (Hz); inputs at other rates are resampled (anti-aliased).
    patch_seconds : float
        Patch length in seconds (LaBraM: 1 s at 200 Hz).
    embed_dim, depth, heads, mlp_ratio, dropout :
        Transformer size.
    tokens : {"channels", "regions", "spatial"}
        One token per channel and patch; per region (contacts fused, needs ``channels.regions``); or per virtual
        channel of a spatial-attention layer (``n_spatial`` of them).
    n_spatial : int
        Virtual channels for ``tokens="spatial"``.
    n_subjects : int
        With ``tokens="spatial"``: per-subject ``n_spatial × n_spatial`` layers after the spatial attention
        (Défossez et al.); ``forward`` then needs ``subject`` indices.
    channel_types : sequence of str
        Channel types the model accepts (the input contract).
    subjects : sequence of str, optional
        The names of the subject layers, in order (:func:`~neurodecode.encoders.pretrain` records the training
        subjects here), so that features of new epochs pick the layer of their table's subject.
    """

    def __init__(self, sfreq: float = 200.0, patch_seconds: float = 0.5, embed_dim: int = 128, depth: int = 4,
                 heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0, tokens: str = "channels",
                 n_spatial: int = 64, n_subjects: int = 0, channel_types: Sequence[str] = CHANNEL_TYPES,
                 subjects: Sequence[str] | None = None) -> None:
        super().__init__()
        if subjects is not None and len(subjects) > n_subjects:
            raise ValueError(f"field 'subjects': expected at most n_subjects={n_subjects} names, got {len(subjects)}")
        if tokens not in TOKENS:
            raise ValueError(f"field 'tokens': expected one of {TOKENS}, got {tokens!r}")
        unknown = [t for t in channel_types if t not in CHANNEL_TYPES]
        if unknown:
            raise ValueError(f"field 'channel_types': expected types among {CHANNEL_TYPES}, got {unknown}")
        self.channel_types = tuple(channel_types)
        self.embed_dim, self.token_mode = embed_dim, tokens
        self.patch = PatchEmbedding(sfreq, patch_seconds, embed_dim)
        self.channel_embedding = ChannelEmbedding(embed_dim, n_types=len(CHANNEL_TYPES))
        if tokens == "regions":
            self.fusion = RegionFusion(embed_dim)
        if tokens == "spatial":
            self.spatial = SpatialAttention(n_spatial)
            self.virtual = nn.Embedding(n_spatial, embed_dim)
            if n_subjects:
                from neurodecode.encoders.models.subjects import SubjectLayers

                self.subject_layers = SubjectLayers(n_subjects, n_spatial)
        elif n_subjects:
            raise ValueError("field 'n_subjects': subject layers act on the virtual channels of tokens='spatial'")
        self.transformer = _transformer(embed_dim, depth, heads, mlp_ratio, dropout)

    # -- subjects ----------------------------------------------------------------------------------------------
    @property
    def has_subject_layers(self) -> bool:
        return hasattr(self, "subject_layers")

    def set_subjects(self, names: Sequence[str]) -> None:
        """Name the subject layers (in order), e.g. after training on these subjects."""
        if len(names) > self.config["n_subjects"]:
            raise ValueError(f"field 'subjects': this encoder has {self.config['n_subjects']} subject layers, got "
                             f"{len(names)} subjects {list(names)[:5]}")
        self.config["subjects"] = [str(x) for x in names]

    def subject_index(self, names: Sequence[Any], where: str = "epochs") -> torch.Tensor:
        """Layer index of each epoch's subject (B,) — an error naming the subjects the model has no layer for."""
        known = self.config.get("subjects")
        if not known:
            raise ValueError(f"{where}: field 'subject': this encoder's subject layers have no names (a model saved "
                             "before subjects were recorded); pass subject indices (B,) to forward()")
        from neurodecode.encoders.models.subjects import subject_layer_index

        return subject_layer_index(names, known, where, "encoder")

    # -- tokens ------------------------------------------------------------------------------------------------
    def _check(self, x: torch.Tensor, spec: SignalSpec) -> None:
        check_batch(x, spec)
        known = torch.as_tensor([CHANNEL_TYPES.index(t) for t in self.channel_types], device=spec.types.device)
        if not torch.isin(spec.types, known).all():
            bad = sorted({CHANNEL_TYPES[i] for i in spec.types.tolist()} - set(self.channel_types))
            raise ValueError(f"field 'channels.types': this model accepts {self.channel_types}, got {bad}")

    def embed_tokens(self, x: torch.Tensor, spec: SignalSpec,
                     subject: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token inputs before the transformer.

        Returns
        -------
        tokens : (B, S, P, D)
            S spatial units (channels, regions or virtual channels), P patches.
        position : (S, P, D)
            Their spatial + time embedding (the decoder reuses it for masked tokens).
        patches : (B, S, P, patch_len)
            The raw patches of each spatial unit at the model's rate (region / virtual-channel units: the mean /
            attention-weighted signal), the reconstruction targets.
        """
        self._check(x, spec)
        if self.token_mode == "spatial":
            x = self.spatial(x, spec)
            if hasattr(self, "subject_layers"):
                if subject is None:
                    raise ValueError("field 'subject': this encoder has subject layers; pass subject indices (B,)")
                x = self.subject_layers(x, subject)
        content, patches = self.patch(x, spec.sfreq)
        n_patches = content.shape[2]
        times = (torch.arange(n_patches, device=x.device) + 0.5) * self.patch.patch_seconds
        t_emb = time_embedding(times, self.embed_dim)  # (P, D)
        if self.token_mode == "spatial":
            s_emb = self.virtual.weight
        else:
            s_emb = self.channel_embedding(spec)  # (C, D)
        if self.token_mode == "regions":
            if spec.regions is None:
                raise ValueError("field 'channels.regions': region tokens need region labels (assign_regions)")
            content = self.fusion(content, s_emb, spec.regions)
            member = nn.functional.one_hot(spec.regions.clamp(min=0), content.shape[1]).to(x.dtype)
            member = member * (spec.regions >= 0)[:, None]
            counts = member.sum(0).clamp(min=1)
            patches = torch.einsum("bcpl,cr->brpl", patches, member) / counts[None, :, None, None]
            s_emb = (member.T @ s_emb) / counts[:, None]
        position = s_emb[:, None, :] + t_emb[None, :, :]
        return content + position, position, patches

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Transformer over flattened tokens (B, N, D) → (B, N, D)."""
        return self.transformer(tokens)

    def tokens(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded tokens (B, S, P, D)."""
        tok, _, _ = self.embed_tokens(x, spec, subject)
        B, S, P, D = tok.shape
        return self.encode(tok.reshape(B, S * P, D)).reshape(B, S, P, D)

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled latent (B, embed_dim): the mean of the encoded tokens."""
        return self.tokens(x, spec, subject).mean(dim=(1, 2))


def patch_targets(patches: torch.Tensor, target: str, normalize: bool = True) -> torch.Tensor:
    """Reconstruction targets of patches (..., patch_len): z-scored raw samples or log-amplitude spectra."""
    if target == "spectral":
        out = torch.log1p(torch.fft.rfft(patches, dim=-1).abs())
    elif target == "raw":
        out = patches
    else:
        raise ValueError(f"field 'target': expected 'raw' or 'spectral' patch targets, got {target!r}")
    if normalize:
        out = (out - out.mean(-1, keepdim=True)) / (out.std(-1, keepdim=True) + 1e-6)
    return out


class VQTokenizer(ConfigMixin, nn.Module):
    """A vector-quantised patch tokenizer (LaBraM/Du-IN's first stage): patch → code index → patch.

    An MLP encodes each (normalised raw or spectral) patch, the nearest of ``n_codes`` unit-norm codes is chosen
    (cosine, as LaBraM), and an MLP decodes it back; the codebook follows an exponential moving average of the
    encodings assigned to it, the encoder gets the straight-through gradient plus a commitment term.

    Shapes: ``forward(patches (..., patch_len)) -> loss``; ``codes(patches) -> (...) int``.
    """

    def __init__(self, patch_len: int, n_codes: int = 256, code_dim: int = 32, hidden: int = 128,
                 target: str = "raw", commitment: float = 0.25, decay: float = 0.99) -> None:
        super().__init__()
        self.target = target
        dim_in = patch_len // 2 + 1 if target == "spectral" else patch_len
        self.patch_len, self.dim_in = patch_len, dim_in
        self.enc = nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, code_dim))
        self.dec = nn.Sequential(nn.Linear(code_dim, hidden), nn.GELU(), nn.Linear(hidden, dim_in))
        self.register_buffer("codebook", nn.functional.normalize(torch.randn(n_codes, code_dim), dim=-1))
        self.commitment, self.decay = commitment, decay

    def _quantise(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if patches.shape[-1] != self.patch_len:
            raise ValueError(f"field 'patches': expected patches of {self.patch_len} samples, got {patches.shape[-1]}")
        target = patch_targets(patches, self.target)
        z = nn.functional.normalize(self.enc(target), dim=-1)
        idx = (z @ self.codebook.T).argmax(-1)
        return target, z, idx

    @torch.no_grad()
    def codes(self, patches: torch.Tensor) -> torch.Tensor:
        """Code index of each patch."""
        return self._quantise(patches)[2]

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        target, z, idx = self._quantise(patches)
        q = self.codebook[idx]
        if self.training:  # EMA of the (normalised) encodings assigned to each code
            with torch.no_grad():
                flat_z, flat_i = z.reshape(-1, z.shape[-1]), idx.reshape(-1)
                sums = torch.zeros_like(self.codebook).index_add_(0, flat_i, flat_z.to(self.codebook.dtype))
                used = torch.bincount(flat_i, minlength=self.codebook.shape[0]) > 0
                new = nn.functional.normalize(self.decay * self.codebook + (1 - self.decay) * sums, dim=-1)
                self.codebook.copy_(torch.where(used[:, None], new, self.codebook))
        recon = self.dec(z + (q - z).detach())  # straight-through
        return nn.functional.mse_loss(recon, target) + self.commitment * nn.functional.mse_loss(z, q.detach())


class SignalMAE(ConfigMixin, nn.Module):
    """Masked-autoencoder pretraining of a :class:`SignalEncoder`.

    Parameters
    ----------
    encoder : SignalEncoder or dict
        The encoder (or its constructor arguments).
    decoder_dim, decoder_depth, decoder_heads :
        The (small) decoder.
    mask : {"random", "channel", "time"}
        Masked units: single tokens, whole spatial units (channels / regions), or whole time steps.
    mask_ratio : float
        Fraction of units masked (the same count in every epoch of a batch).
    target : {"raw", "spectral", "codes"}
    normalize_target : bool
        Z-score each patch's target (raw / spectral).
    tokenizer : VQTokenizer or dict, optional
        Required for ``target="codes"`` (trained first; frozen here).
    """

    def __init__(self, encoder: SignalEncoder | dict[str, Any] | None = None, decoder_dim: int = 64,
                 decoder_depth: int = 1, decoder_heads: int = 2, mask: str = "random", mask_ratio: float = 0.5,
                 target: str = "raw", normalize_target: bool = True,
                 tokenizer: VQTokenizer | dict[str, Any] | None = None) -> None:
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"field 'mask': expected one of {MASKS}, got {mask!r}")
        if target not in TARGETS:
            raise ValueError(f"field 'target': expected one of {TARGETS}, got {target!r}")
        if not 0 < mask_ratio < 1:
            raise ValueError(f"field 'mask_ratio': expected a fraction in (0, 1), got {mask_ratio}")
        encoder = encoder if isinstance(encoder, SignalEncoder) else SignalEncoder(**(encoder or {}))
        if target == "codes":
            if tokenizer is None:
                raise ValueError("field 'tokenizer': target='codes' needs a trained VQTokenizer")
            tokenizer = tokenizer if isinstance(tokenizer, VQTokenizer) else VQTokenizer(**tokenizer)
            if tokenizer.patch_len != encoder.patch.patch_len:
                raise ValueError(f"field 'tokenizer': expected patches of {encoder.patch.patch_len} samples like the "
                                 f"encoder, got {tokenizer.patch_len}")
            tokenizer.requires_grad_(False)
        self.encoder, self.tokenizer = encoder, tokenizer
        self.mask, self.mask_ratio, self.target, self.normalize_target = mask, mask_ratio, target, normalize_target
        D, L = encoder.embed_dim, encoder.patch.patch_len
        out_dim = {"raw": L, "spectral": L // 2 + 1, "codes": tokenizer.codebook.shape[0] if tokenizer else 0}[target]
        self.to_decoder = nn.Linear(D, decoder_dim)
        self.decoder_position = nn.Linear(D, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))
        self.decoder = _transformer(decoder_dim, decoder_depth, decoder_heads, 4.0, 0.0)
        self.head = nn.Linear(decoder_dim, out_dim)

    def masked_units(self, B: int, S: int, P: int, device: torch.device, generator: torch.Generator | None = None,
                     keys: torch.Tensor | None = None) -> torch.Tensor:
        """Boolean mask (B, S, P), True where masked, with the same count in every row.

        With ``keys`` (B,) integers (e.g. epoch index and training epoch), each row's mask is a fixed function of
        its key — the same whichever process or batch the epoch lands in, so that training on N processes equals
        training on one.
        """
        units = {"random": S * P, "channel": S, "time": P}[self.mask]
        n_masked = min(units - 1, max(1, round(self.mask_ratio * units)))
        if keys is not None:  # a counter-based hash (fractional part of a scaled sine), row by row
            x = keys.to(device, torch.float64)[:, None] * 1e-3 + torch.arange(units, device=device) * 12.9898
            noise = torch.frac(torch.sin(x) * 43758.5453).abs()
        else:
            noise = torch.rand(B, units, generator=generator, device=device)
        order = noise.argsort(1)
        m = torch.zeros(B, units, dtype=torch.bool, device=device)
        m.scatter_(1, order[:, :n_masked], True)
        if self.mask == "channel":
            return m[:, :, None].expand(B, S, P)
        if self.mask == "time":
            return m[:, None, :].expand(B, S, P)
        return m.view(B, S, P)

    def reconstruct(self, x: torch.Tensor, spec: SignalSpec, generator: torch.Generator | None = None,
                    subject: torch.Tensor | None = None, keys: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Loss, predictions and targets of the masked tokens, and the mask (B, S, P) (see :meth:`masked_units`
        for ``generator`` and ``keys``)."""
        tok, position, patches = self.encoder.embed_tokens(x, spec, subject)
        B, S, P, D = tok.shape
        mask = self.masked_units(B, S, P, x.device, generator, keys)
        flat_mask = mask.reshape(B, S * P)
        n_keep = int((~flat_mask[0]).sum())
        keep = (~flat_mask).float().argsort(dim=1, descending=True, stable=True)[:, :n_keep]  # visible token indices
        visible = tok.reshape(B, S * P, D).gather(1, keep[..., None].expand(-1, -1, D))
        latent = self.encoder.encode(visible)
        visible_dec = self.to_decoder(latent)
        dec = self.mask_token.to(visible_dec.dtype).expand(B, S * P, -1).clone()   # autocast: bf16 activations
        dec = dec.scatter(1, keep[..., None].expand(-1, -1, dec.shape[-1]), visible_dec)
        dec = dec + self.decoder_position(position.reshape(1, S * P, D))
        pred = self.head(self.decoder(dec))[flat_mask]  # (n_masked_total, out_dim)
        masked_patches = patches.reshape(B, S * P, -1)[flat_mask]
        if self.target == "codes":
            target = self.tokenizer.codes(masked_patches)
            loss = nn.functional.cross_entropy(pred, target)
        else:
            target = patch_targets(masked_patches, self.target, self.normalize_target)
            loss = nn.functional.mse_loss(pred, target)
        return {"loss": loss, "pred": pred, "target": target, "mask": mask}

    def forward(self, x: torch.Tensor, spec: SignalSpec, subject: torch.Tensor | None = None,
                keys: torch.Tensor | None = None) -> torch.Tensor:
        return self.reconstruct(x, spec, subject=subject, keys=keys)["loss"]
