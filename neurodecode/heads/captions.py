"""Captions from predicted embeddings: the nearest caption of a bank, or a prefix into a causal language model.

* :class:`NearestCaptionHead` — embeds a caption bank once with an open_clip text encoder (or any function) and
  returns each trial's most similar captions (cosine, block by block: memory linear in the bank size).
* :class:`GitCaptionHead` — GIT (Wang et al. 2022) fed as MindEye2 feeds it: a linear map, fitted by ridge regression
  from the training trials' latents to the visual tokens GIT's own image encoder gives their stimulus images,
  predicts a trial's visual tokens; GIT's text decoder then writes the caption. ``from_pretrained`` takes a
  published captioner (``microsoft/git-base-coco``; only the map is fitted), ``tiny(...)`` a small GIT from a
  config and a word-level tokenizer, whose captioner ``fit`` first trains on the (image, caption) pairs.
* :class:`PrefixCaptionHead` — ClipCap (Mokady et al. 2021): a small mapping network turns the embedding into
  ``prefix_length`` token embeddings of a ``transformers`` causal language model (GPT-2 by default), trained on
  image-caption pairs with the language model frozen (or not); greedy decoding. ``tiny(...)`` builds a word-level
  tokenizer from the training captions and a small GPT-2 from a config (offline, seconds).

All are :class:`~neurodecode.heads.base.CaptionHead` s: ``generate(latents (n_trials, embed_dim)) ->
CaptionOutput`` (``captions``: one str per trial), written once in the base. Greedy decoding and bank ranking are
deterministic.

May import: ``neurodecode.core`` … ``neurodecode.alignment``.
"""

from __future__ import annotations

from types import SimpleNamespace
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from neurodecode.core.estimators import trainer_settings
from neurodecode.heads.base import CaptionHead, LatentSpec, load_pretrained

__all__ = ["CAPTION_TRAINER", "GitCaptionHead", "NearestCaptionHead", "PrefixCaptionHead"]

#: Trainer settings of the trainable caption heads (``trainer=`` overrides them key by key)
CAPTION_TRAINER = {"max_epochs": 50, "batch_size": 32, "lr": 1e-3}


class NearestCaptionHead(CaptionHead):
    """The most similar captions of a bank, in the embedding space of a text encoder.

    Parameters
    ----------
    captions : list of str
        The bank (e.g. COCO captions).
    embedder : OpenCLIPEmbedder or callable
        ``embed_texts(list of str) -> (n, embed_dim)`` (an :class:`~neurodecode.alignment.embeddings.OpenCLIPEmbedder` caches
        the bank's embeddings on disk), or a function with that behaviour.
    block : int
        Bank rows compared at once.
    """

    def __init__(self, captions: Sequence[str], embedder: Any, block: int = 65536) -> None:
        if not len(captions):
            raise ValueError("field 'captions': expected a non-empty caption bank")
        self.captions = [str(c) for c in captions]
        embed = embedder.embed_texts if hasattr(embedder, "embed_texts") else embedder
        bank = np.asarray(embed(self.captions), dtype=np.float32)
        self.bank = torch.nn.functional.normalize(torch.as_tensor(bank), dim=-1)
        self.embed_dim, self.block = self.bank.shape[1], block
        model = getattr(embedder, "model_name", "custom")
        self._describe(f"nearest caption ({model})", {"bank_size": len(self.captions), "embedder": model,
                                                       "pretrained": getattr(embedder, "pretrained", None)})

    options = ("k",)

    @property
    def latent(self) -> LatentSpec:
        return LatentSpec(self.embed_dim, space=f"the text-embedding space of {self.config['embedder']}")

    @classmethod
    def from_files(cls, captions_file: str, model: str = "ViT-L-14", pretrained: str | None = "openai",
                   device: str = "cpu") -> NearestCaptionHead:
        """A bank read from a text file (one caption per line), embedded by an open_clip text encoder."""
        from pathlib import Path

        from neurodecode.alignment.embeddings import OpenCLIPEmbedder

        path = Path(captions_file)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: field 'captions_file': expected a text file with one caption per line")
        captions = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        return cls(captions, OpenCLIPEmbedder(model, pretrained, device=device))

    @torch.no_grad()
    def _captions(self, z: np.ndarray, k: int = 1) -> tuple[list[str], list[list[str]], np.ndarray]:
        """Top-``k`` captions per trial: the best, the lists of k, their cosines (n, k)."""
        q = torch.nn.functional.normalize(torch.as_tensor(z), dim=-1)
        if not 1 <= k <= len(self.captions):
            raise ValueError(f"field 'k': expected 1 <= k <= the bank size {len(self.captions)}, got {k}")
        best_s = torch.full((len(q), k), -torch.inf)
        best_i = torch.zeros((len(q), k), dtype=torch.long)
        for start in range(0, len(self.bank), self.block):
            s = q @ self.bank[start:start + self.block].T
            cand_s = torch.cat([best_s, s], 1)
            cand_i = torch.cat([best_i, torch.arange(start, start + s.shape[1]).expand(len(q), -1)], 1)
            top = cand_s.topk(k, dim=1)
            best_s, best_i = top.values, cand_i.gather(1, top.indices)
        top = [[self.captions[j] for j in row] for row in best_i.tolist()]
        return [t[0] for t in top], top, best_s.numpy()


def _word_tokenizer(captions: Sequence[str]) -> Any:
    """A word-level fast tokenizer over the words of ``captions`` (lower case), with BOS/EOS/PAD/UNK."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for c in captions for w in c.lower().split()})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[BOS]", "[EOS]", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]",
                                   unk_token="[UNK]")


def _until_end(tokenizer: Any, rows: Sequence[Sequence[int]], eos: int) -> list[str]:
    """Greedily decoded token rows → captions: each row up to its first end token, special tokens dropped."""
    return [tokenizer.decode(row[:row.index(eos)] if eos in row else row, skip_special_tokens=True).strip()
            for row in rows]


class PrefixCaptionHead(CaptionHead, nn.Module):
    """ClipCap prefix captioning: embedding → ``prefix_length`` LM token embeddings → greedy caption.

    Parameters
    ----------
    lm : transformers causal LM (e.g. GPT2LMHeadModel)
    tokenizer : transformers tokenizer with an EOS token
    embed_dim : int
        Size of the embeddings it reads.
    prefix_length : int
    hidden : int
        Width of the mapping MLP.
    freeze_lm : bool
        Train only the mapping network (ClipCap's "MLP + frozen GPT-2").
    config : dict
        What built it (for metadata and rebuilding).
    """

    def __init__(self, lm: nn.Module, tokenizer: Any, embed_dim: int, prefix_length: int = 10, hidden: int = 512,
                 freeze_lm: bool = True, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.lm, self.tokenizer = lm, tokenizer
        width = lm.get_input_embeddings().embedding_dim
        self.embed_dim, self.prefix_length, self.freeze_lm = embed_dim, prefix_length, freeze_lm
        self.mapping = nn.Sequential(nn.Linear(embed_dim, hidden), nn.Tanh(), nn.Linear(hidden, prefix_length * width))
        self._describe(f"prefix caption head ({dict(config or {}).get('lm_id', 'tiny')})", config)
        if freeze_lm:
            self.lm.requires_grad_(False)

    trainable = True
    options = ("max_tokens",)

    @property
    def latent(self) -> LatentSpec:
        return LatentSpec(self.embed_dim, space="the embeddings its mapping network was trained on")

    @classmethod
    def from_pretrained(cls, lm_id: str = "gpt2", embed_dim: int = 768, prefix_length: int = 10, hidden: int = 512,
                        freeze_lm: bool = True, device: str = "cpu") -> PrefixCaptionHead:
        """A pretrained causal LM from the hub / cache (e.g. ``gpt2``); the mapping is then trained with ``fit``."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        lm = load_pretrained(AutoModelForCausalLM, lm_id)
        tok = load_pretrained(AutoTokenizer, lm_id)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return cls(lm, tok, embed_dim, prefix_length, hidden, freeze_lm,
                   {"lm_id": lm_id, "embed_dim": embed_dim, "prefix_length": prefix_length, "hidden": hidden,
                    "freeze_lm": freeze_lm}).to(device)

    @classmethod
    def tiny(cls, captions: Sequence[str], embed_dim: int = 32, prefix_length: int = 4, n_embd: int = 32,
             n_layer: int = 2, n_head: int = 2, hidden: int = 64, freeze_lm: bool = False, seed: int = 0,
             device: str = "cpu") -> PrefixCaptionHead:
        """A small GPT-2 from a config and a word-level tokenizer over ``captions`` (trained with ``fit``)."""
        from transformers import GPT2Config, GPT2LMHeadModel

        tok = _word_tokenizer(captions)
        torch.manual_seed(seed)
        lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=n_embd, n_layer=n_layer,
                                        n_head=n_head, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))   # deterministic: 1 = N ranks
        config = {"tiny": {"vocabulary": tok.convert_ids_to_tokens(list(range(len(tok)))), "embed_dim": embed_dim,
                           "prefix_length": prefix_length, "n_embd": n_embd, "n_layer": n_layer, "n_head": n_head,
                           "hidden": hidden, "freeze_lm": freeze_lm, "seed": seed}}
        return cls(lm, tok, embed_dim, prefix_length, hidden, freeze_lm, config).to(device)

    @property
    def device(self) -> torch.device:
        return next(self.mapping.parameters()).device

    def _prefix(self, latents: torch.Tensor) -> torch.Tensor:
        return self.mapping(latents).view(len(latents), self.prefix_length, -1)

    def forward(self, latents: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy of the captions given the prefix (the training loss; ``forward`` so that a
        DistributedDataParallel wrapper synchronises its gradients)."""
        prefix = self._prefix(latents)
        tokens = self.lm.get_input_embeddings()(input_ids)
        embeds = torch.cat([prefix, tokens], dim=1)
        mask = torch.cat([torch.ones(prefix.shape[:2], dtype=attention_mask.dtype, device=prefix.device),
                          attention_mask], dim=1)
        labels = torch.cat([torch.full(prefix.shape[:2], -100, device=prefix.device),
                            input_ids.masked_fill(attention_mask == 0, -100)], dim=1)
        logits = self.lm(inputs_embeds=embeds, attention_mask=mask).logits[:, :-1]
        target = labels[:, 1:]
        per_token = nn.functional.cross_entropy(logits.transpose(1, 2).float(), target, ignore_index=-100,
                                                reduction="none")
        valid = (target != -100).to(per_token.dtype)
        # the mean over captions of each caption's mean token loss: N processes averaging their shares' gradients
        # then train as one process on the whole batch (a token-level mean would weight long captions by rank)
        return ((per_token * valid).sum(1) / valid.sum(1).clamp(min=1)).mean()

    def _encode(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [f"{c} {self.tokenizer.eos_token}" if self.tokenizer.eos_token not in c else c for c in captions]
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        return enc.input_ids, enc.attention_mask

    def fit(self, latents: Any, captions: Sequence[str], trainer: Mapping[str, Any] | None = None,
            seed: int = 0) -> PrefixCaptionHead:
        """Train the mapping (and the LM unless frozen) on (embedding, caption) pairs."""
        from neurodecode.core.training import Trainer

        z = torch.as_tensor(self.latent.check(latents, self.name))
        if len(captions) != len(z):
            raise ValueError(f"field 'captions': expected one caption per embedding ({len(z)}), got {len(captions)}")
        ids, mask = self._encode(captions)
        params = trainer_settings(trainer, CAPTION_TRAINER, self.name, seed=seed, device=str(self.device))
        params["batch_size"] = min(params["batch_size"], len(z))
        Trainer(**{**params, "drop_last": True}).fit(self, lambda m, b: m(*b),
                                                     torch.utils.data.TensorDataset(z, ids, mask))
        return self.eval()

    @torch.no_grad()
    def _captions(self, z: np.ndarray, max_tokens: int = 20) -> tuple[list[str], None, None]:
        """Greedy captions of at most ``max_tokens`` tokens."""
        z = torch.as_tensor(z, device=self.device)
        self.eval()
        embeds = self._prefix(z)
        wte = self.lm.get_input_embeddings()
        eos = self.tokenizer.eos_token_id
        out = torch.full((len(z), 0), eos, dtype=torch.long, device=self.device)
        done = torch.zeros(len(z), dtype=torch.bool, device=self.device)
        for _ in range(max_tokens):
            nxt = self.lm(inputs_embeds=embeds).logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == eos
            if done.all():
                break
            embeds = torch.cat([embeds, wte(nxt)[:, None]], 1)
        return _until_end(self.tokenizer, out.tolist(), eos), None, None


class _VisualTokens(nn.Module):
    """GIT's image encoder, or (``tokens_given``) a pass-through for visual tokens handed over as
    (batch, 1, n_tokens, hidden) — how predicted tokens enter GIT's ``pixel_values`` path unchanged."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.tokens_given = encoder, False

    def forward(self, pixel_values: torch.Tensor, **kw: Any) -> Any:
        if self.tokens_given:
            return SimpleNamespace(last_hidden_state=pixel_values[:, 0])
        return self.encoder(pixel_values, **kw)


def _bos_eos(tokenizer: Any) -> tuple[int, int]:
    """GIT's start and end tokens: BERT's [CLS]/[SEP] for the published models, BOS/EOS for a word-level one."""
    bos = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ValueError("field 'tokenizer': expected start and end tokens ([CLS]/[SEP] or BOS/EOS) for GIT")
    return int(bos), int(eos)


class GitCaptionHead(CaptionHead, nn.Module):
    """GIT captions from predicted latents through a linear map into GIT's visual-token space (MindEye2).

    Parameters
    ----------
    captioner : transformers.GitForCausalLM
    tokenizer : transformers tokenizer
    embed_dim : int
        Size of the latents it reads.
    image_processor : transformers image processor, optional
        Turns stimulus images into GIT's ``pixel_values`` (the published models' CLIP preprocessing); None: resize
        to the vision config's size and scale to [-1, 1] (the tiny variant).
    train_captioner : bool
        ``fit`` first trains the captioner on (stimulus image, caption) pairs (the tiny variant); False: the
        captioner is used as published and only the map is fitted.
    config : dict
        What built it (for metadata and rebuilding).

    Attributes
    ----------
    map : nn.Linear (embed_dim → n_tokens · hidden)
        Latent → visual tokens, set by ``fit`` from a ridge regression (penalty by leave-one-out).
    """

    def __init__(self, captioner: nn.Module, tokenizer: Any, embed_dim: int, image_processor: Any = None,
                 train_captioner: bool = False, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.captioner, self.tokenizer, self.image_processor = captioner, tokenizer, image_processor
        vision = captioner.config.vision_config
        self.image_size = int(vision.image_size)
        self.n_tokens = (self.image_size // int(vision.patch_size)) ** 2 + 1          # patches + the class token
        self.hidden = int(vision.hidden_size)
        self.vision = _VisualTokens(captioner.git.image_encoder)
        captioner.git.image_encoder = self.vision
        self.embed_dim, self.train_captioner = int(embed_dim), bool(train_captioner)
        self.map = nn.Linear(self.embed_dim, self.n_tokens * self.hidden)
        self.bos, self.eos = _bos_eos(tokenizer)
        self._describe(f"GIT caption head ({dict(config or {}).get('model_id', 'tiny')})", config)
        if not train_captioner:
            self.captioner.requires_grad_(False)

    trainable = True
    fit_needs = frozenset({"images"})       # the map is fitted onto the visual tokens of the stimulus images
    options = ("max_tokens",)

    @property
    def latent(self) -> LatentSpec:
        return LatentSpec(self.embed_dim, space="the latents its visual-token map was fitted on")

    @property
    def device(self) -> torch.device:
        return self.map.weight.device

    @classmethod
    def from_pretrained(cls, model_id: str = "microsoft/git-base-coco", embed_dim: int = 768,
                        device: str = "cpu") -> GitCaptionHead:
        """A published GIT captioner and its processor from the hub / cache; ``fit`` then fits the map only."""
        from transformers import AutoProcessor, GitForCausalLM

        captioner = load_pretrained(GitForCausalLM, model_id)
        processor = load_pretrained(AutoProcessor, model_id)
        return cls(captioner, processor.tokenizer, embed_dim, processor.image_processor, False,
                   {"model_id": model_id, "embed_dim": embed_dim}).to(device)

    @classmethod
    def tiny(cls, captions: Sequence[str], embed_dim: int = 32, image_size: int = 16, patch_size: int = 4,
             hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2, seed: int = 0,
             device: str = "cpu") -> GitCaptionHead:
        """A small GIT (vision tower and text decoder) from a config with a word-level tokenizer over ``captions``;
        ``fit`` trains it on the stimulus images and captions, then fits the map."""
        from transformers import GitConfig, GitForCausalLM

        tok = _word_tokenizer(captions)
        torch.manual_seed(seed)
        vision = {"hidden_size": hidden_size, "intermediate_size": 2 * hidden_size, "num_hidden_layers": num_layers,
                  "num_attention_heads": num_heads, "num_channels": 3, "image_size": image_size,
                  "patch_size": patch_size, "attention_dropout": 0.0}
        config = GitConfig(vision_config=vision, vocab_size=len(tok), hidden_size=hidden_size,
                           num_hidden_layers=num_layers, num_attention_heads=num_heads,
                           intermediate_size=2 * hidden_size, max_position_embeddings=64, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        return cls(GitForCausalLM(config), tok, embed_dim, None, True,
                   {"tiny": {"vocabulary": tok.convert_ids_to_tokens(list(range(len(tok)))), "embed_dim": embed_dim,
                             "image_size": image_size, "patch_size": patch_size, "hidden_size": hidden_size,
                             "num_layers": num_layers, "num_heads": num_heads, "seed": seed}}).to(device)

    def pixel_values(self, images: Any) -> torch.Tensor:
        """Stimulus images (n, H, W, C) or grey (n, H, W) in [0, 1] → GIT's ``pixel_values`` (n, 3, size, size)."""
        from neurodecode.core.stimuli import resize_images

        images = np.asarray(images, dtype=np.float32)
        images = images[..., None] if images.ndim == 3 else images
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"field 'images': expected (n_images, height, width[, 1 or 3]) in [0, 1], got shape "
                             f"{images.shape}")
        if self.image_processor is not None:
            rgb = resize_images(images, images.shape[1], 3)
            pv = self.image_processor(images=list(rgb), do_rescale=False, return_tensors="pt").pixel_values
        else:
            pv = torch.as_tensor(resize_images(images, self.image_size, 3)).permute(0, 3, 1, 2) * 2 - 1
        return pv.to(self.device)

    def visual_tokens(self, images: Any) -> torch.Tensor:
        """GIT's image-encoder output for stimulus images: (n, n_tokens, hidden) — the map's regression target."""
        return self._encode_pixels(self.pixel_values(images))

    @torch.no_grad()
    def _encode_pixels(self, pixel_values: torch.Tensor, block: int = 64) -> torch.Tensor:
        self.vision.tokens_given = False
        return torch.cat([self.vision(pixel_values[i:i + block]).last_hidden_state
                          for i in range(0, len(pixel_values), block)])

    def _token_ids(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [[self.bos, *self.tokenizer(str(c), add_special_tokens=False).input_ids, self.eos] for c in captions]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), int(self.tokenizer.pad_token_id or 0), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)], mask[i, :len(r)] = torch.as_tensor(r), 1
        return ids, mask

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
                ) -> torch.Tensor:
        """The captioner's next-token loss on (image, caption) pairs (the tiny variant's training loss)."""
        self.vision.tokens_given = False
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        return self.captioner(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                              labels=labels).loss

    def fit(self, latents: Any, captions: Sequence[str], trainer: Mapping[str, Any] | None = None,
            images: Any = None, seed: int = 0) -> GitCaptionHead:
        """Train the captioner on (image, caption) pairs when ``train_captioner``, then fit the map: ridge from
        ``latents`` (n, embed_dim) to the visual tokens of ``images`` (n, H, W, C) in [0, 1], one per latent."""
        from neurodecode.alignment.aligners import RidgeAlignment
        from neurodecode.core.training import Trainer

        z = self.latent.check(latents, self.name)
        if len(captions) != len(z):
            raise ValueError(f"field 'captions': expected one caption per latent ({len(z)}), got {len(captions)}")
        if images is None or len(images) != len(z):
            raise ValueError(f"field 'images': {self.name} fits its map onto the visual tokens of the stimulus "
                             f"images: expected one image per latent ({len(z)}), got "
                             f"{'none' if images is None else len(images)}")
        pv = self.pixel_values(images)
        if self.train_captioner:
            ids, mask = self._token_ids(captions)
            params = trainer_settings(trainer, CAPTION_TRAINER, self.name, seed=seed, device=str(self.device))
            params["batch_size"] = min(params["batch_size"], len(z))
            Trainer(**{**params, "drop_last": True}).fit(self, lambda m, b: m(*b),
                                                         torch.utils.data.TensorDataset(pv.cpu(), ids, mask))
        self.eval()
        tokens = self._encode_pixels(pv)
        ridge = RidgeAlignment(alphas=np.logspace(-2, 5, 15)).fit(z, tokens.reshape(len(z), -1).cpu().numpy())
        with torch.no_grad():
            self.map.weight.copy_(torch.as_tensor(ridge.coef_, dtype=torch.float32))
            self.map.bias.copy_(torch.as_tensor(ridge.intercept_, dtype=torch.float32))
        return self

    @torch.no_grad()
    def _captions(self, z: np.ndarray, max_tokens: int = 20) -> tuple[list[str], None, None]:
        """Greedy captions from the mapped visual tokens."""
        z = torch.as_tensor(z, device=self.device)
        self.eval()
        tokens = self.map(z).view(len(z), 1, self.n_tokens, self.hidden)
        out = torch.full((len(z), 1), self.bos, dtype=torch.long, device=self.device)
        done = torch.zeros(len(z), dtype=torch.bool, device=self.device)
        self.vision.tokens_given = True
        try:
            for _ in range(max_tokens):
                nxt = self.captioner(input_ids=out, pixel_values=tokens).logits[:, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, self.eos), nxt)
                out, done = torch.cat([out, nxt[:, None]], 1), done | (nxt == self.eos)
                if done.all():
                    break
        finally:
            self.vision.tokens_given = False
        return _until_end(self.tokenizer, out[:, 1:].tolist(), self.eos), None, None
