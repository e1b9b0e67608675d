"""Images from predicted image embeddings: an unCLIP diffusion head with MindEye's low-level branch.

:class:`UnCLIPImageHead` runs the Stable unCLIP recipe with diffusers components — a ``UNet2DConditionModel`` whose
class embedding is the (noise-augmented, normalised) image embedding, an optional ``AutoencoderKL``, a DDIM scheduler
— in one sampling loop that also accepts **initial images** at a ``strength`` (img2img): MindEye's low-level branch
gives a blurry reconstruction (:class:`LowLevelImages`: brain → pixels by ridge) and the
diffusion refines it, keeping its layout when the strength is low. Several samples per trial can be drawn and the one
whose embedding is closest to the predicted embedding kept (``select_with``).

* ``UnCLIPImageHead.from_pretrained("stabilityai/stable-diffusion-2-1-unclip-small")`` loads the real weights
  (CLIP ViT-L/14 image embeddings, 768-d; ``stable-diffusion-2-1-unclip`` takes ViT-H/14, 1024-d).
* ``UnCLIPImageHead.tiny(...)`` builds the same architecture from small configs (seconds on a CPU; tests and the
  built-in example), and :meth:`UnCLIPImageHead.fit` trains it on (image, embedding) pairs — the tiny generator
  that the digits69 reconstructions use, trained on the training images only.

Both follow the head protocol (:mod:`neurodecode.heads.base`): ``generate(latents (n, embed_dim), init_images
(n, H, W, C) in [0, 1] | None) -> ImageOutput`` with ``images`` (n, n_samples, H, W, C) float32 in [0, 1], each trial's
samples drawn with its own generators.

May import: ``neurodecode.core`` … ``neurodecode.alignment``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from neurodecode.core.estimators import trainer_settings
from neurodecode.core.registry import register
from neurodecode.heads.base import ImageHead, LatentSpec, load_pretrained, randn, trial_generators

__all__ = ["IPAdapterImageHead", "LowLevelImages", "UnCLIPImageHead"]


class UnCLIPImageHead(ImageHead, nn.Module):
    """Stable-unCLIP-style image generator conditioned on image embeddings (inference; ``fit`` for tiny models).

    Parameters
    ----------
    unet : diffusers.UNet2DConditionModel
        ``class_embed_type="projection"`` with ``projection_class_embeddings_input_dim = 2 * embed_dim``.
    scheduler : diffusers scheduler (DDIM)
    image_normalizer : StableUnCLIPImageNormalizer
    image_noising_scheduler : DDPMScheduler
        Noise augmentation of the embeddings (``noise_level``).
    prompt_embeds : tensor (1, n_tokens, cross_attention_dim)
        Text conditioning (the empty prompt's encoding).
    vae : AutoencoderKL, optional
        None: the diffusion runs on pixels in [-1, 1].
    config : dict
        What built it (model id or tiny config), stored in every output's metadata.
    """

    def __init__(self, unet: nn.Module, scheduler: Any, image_normalizer: nn.Module, image_noising_scheduler: Any,
                 prompt_embeds: torch.Tensor, vae: nn.Module | None = None,
                 config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.unet, self.vae, self.image_normalizer = unet, vae, image_normalizer
        self.scheduler, self.image_noising_scheduler = scheduler, image_noising_scheduler
        self.register_buffer("prompt_embeds", prompt_embeds)
        self._describe(dict(config or {}).get("model_id", "tiny-unclip"), config)
        self.embed_dim = unet.config.projection_class_embeddings_input_dim // 2

    trainable = True
    img2img = True
    brain_guided = True
    options = ("init_images", "strength", "noise_level", "brain_guidance", "brain_scale")

    @property
    def latent(self) -> LatentSpec:
        raw = bool(self.config.get("raw_embeddings", "model_id" in self.config))
        space = "image embeddings (CLIP ViT-L/14 for stable-diffusion-2-1-unclip-small)" if raw \
            else "the embeddings it was trained on"
        norm = None
        if raw:      # the scale of the embeddings its image normaliser was fitted on: E‖x‖² = Σ mean² + std²
            mean, std = self.image_normalizer.mean.detach().double(), self.image_normalizer.std.detach().double()
            norm = float(torch.sqrt((mean ** 2 + std ** 2).sum()))
        return LatentSpec(self.embed_dim, space=space, raw=raw, norm=norm)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images it generates and trains on."""
        c = self.unet.config.in_channels if self.vae is None else self.vae.config.in_channels
        return self.image_size, self.image_size, int(c)

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model_id: str = "stabilityai/stable-diffusion-2-1-unclip-small", *,
                        device: str = "cpu", dtype: str = "float32", **_: Any) -> UnCLIPImageHead:
        """Load a Stable unCLIP model (diffusers layout) and encode the empty prompt once."""
        from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
        from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
        from transformers import CLIPTextModel, CLIPTokenizer

        torch_dtype = getattr(torch, dtype)
        unet = load_pretrained(UNet2DConditionModel, model_id, "unet", torch_dtype=torch_dtype)
        vae = load_pretrained(AutoencoderKL, model_id, "vae", torch_dtype=torch_dtype)
        normalizer = load_pretrained(StableUnCLIPImageNormalizer, model_id, "image_normalizer")
        scheduler = load_pretrained(DDIMScheduler, model_id, "scheduler")
        noising = load_pretrained(DDPMScheduler, model_id, "image_noising_scheduler")
        tokenizer = load_pretrained(CLIPTokenizer, model_id, "tokenizer")
        text_encoder = load_pretrained(CLIPTextModel, model_id, "text_encoder", torch_dtype=torch_dtype)
        tokens = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
        with torch.no_grad():
            prompt = text_encoder(tokens.input_ids)[0]
        return cls(unet, scheduler, normalizer, noising, prompt, vae,
                   {"model_id": model_id, "dtype": dtype}).to(device)

    @classmethod
    def tiny(cls, embed_dim: int = 32, image_size: int = 32, channels: int = 1,
             block_out_channels: Sequence[int] = (32, 64), layers_per_block: int = 1, cross_attention_dim: int = 32,
             attention_head_dim: int = 8, prompt_tokens: int = 4, use_vae: bool = False,
             num_train_timesteps: int = 1000, seed: int = 0, device: str = "cpu",
             raw_embeddings: bool = False) -> UnCLIPImageHead:
        """The same architecture, small and randomly initialised (seeded) — train it with :meth:`fit`.

        ``raw_embeddings=True`` makes it read raw tower embeddings at its image normaliser's scale, as the
        published weights do (to test that path offline)."""
        config = {"embed_dim": embed_dim, "image_size": image_size, "channels": channels,
                  "block_out_channels": list(block_out_channels), "layers_per_block": layers_per_block,
                  "cross_attention_dim": cross_attention_dim, "attention_head_dim": attention_head_dim,
                  "prompt_tokens": prompt_tokens, "use_vae": use_vae, "num_train_timesteps": num_train_timesteps,
                  "seed": seed}
        from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
        from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer

        torch.manual_seed(seed)
        vae = None
        latent_channels, sample_size = channels, image_size
        if use_vae:
            vae = AutoencoderKL(in_channels=channels, out_channels=channels, block_out_channels=[16, 32],
                                down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                                latent_channels=4, norm_num_groups=8, sample_size=image_size)
            latent_channels, sample_size = 4, image_size // 2
        n = len(block_out_channels)
        unet = UNet2DConditionModel(
            sample_size=sample_size, in_channels=latent_channels, out_channels=latent_channels,
            block_out_channels=list(block_out_channels), layers_per_block=layers_per_block,
            down_block_types=["DownBlock2D"] * (n - 1) + ["CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D"] + ["UpBlock2D"] * (n - 1),
            cross_attention_dim=cross_attention_dim, attention_head_dim=attention_head_dim, norm_num_groups=8,
            class_embed_type="projection", projection_class_embeddings_input_dim=2 * embed_dim)
        scheduler = DDIMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule="squaredcos_cap_v2",
                                  clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")
        noising = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
        prompt = torch.zeros(1, prompt_tokens, cross_attention_dim)
        head = cls(unet, scheduler, StableUnCLIPImageNormalizer(embed_dim), noising, prompt, vae,
                   {"tiny": config, "raw_embeddings": bool(raw_embeddings)})
        return head if device == "cpu" else head.to(device)

    # -- latents <-> images -------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.prompt_embeds.device

    @property
    def image_size(self) -> int:
        s = self.unet.config.sample_size
        return s * (2 ** (len(self.vae.config.block_out_channels) - 1)) if self.vae is not None else s

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] → diffusion latents."""
        if self.vae is None:
            return images
        return self.vae.encode(images).latent_dist.mean * self.vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Diffusion latents → images (B, C, H, W) in [-1, 1]."""
        if self.vae is None:
            return latents
        return self.vae.decode(latents / self.vae.config.scaling_factor).sample

    def _to_tensor(self, images: Any, where: str) -> torch.Tensor:
        a = np.asarray(images, dtype=np.float32)
        if a.ndim == 3:
            a = a[..., None]
        c = self.unet.config.in_channels if self.vae is None else self.vae.config.in_channels
        if a.ndim != 4 or a.shape[1:] != (self.image_size, self.image_size, c):
            raise ValueError(f"field '{where}': expected images (n, {self.image_size}, {self.image_size}, {c}) in "
                             f"[0, 1], got shape {a.shape}")
        return torch.as_tensor(a, device=self.device).permute(0, 3, 1, 2) * 2 - 1

    def _condition(self, embeds: torch.Tensor, noise_level: int, generators: Sequence[torch.Generator] | None
                   ) -> torch.Tensor:
        """unCLIP's class conditioning: normalised, noised (``noise_level``) embeddings + the level's embedding
        (one generator per row, or fresh noise for training)."""
        from diffusers.models.embeddings import get_timestep_embedding

        level = torch.full((embeds.shape[0],), int(noise_level), device=embeds.device)
        noise = (torch.randn_like(embeds) if generators is None
                 else randn(embeds.shape[1:], generators, embeds.device, embeds.dtype))
        scaled = self.image_normalizer.scale(embeds)
        noised = self.image_normalizer.unscale(self.image_noising_scheduler.add_noise(scaled, noise, level))
        level_emb = get_timestep_embedding(level, embeds.shape[-1], flip_sin_to_cos=True, downscale_freq_shift=0)
        return torch.cat([noised, level_emb.to(embeds.dtype)], dim=1)

    # -- sampling -----------------------------------------------------------------------------------------------
    def _brain_step(self, latents: torch.Tensor, eps: torch.Tensor, t: Any, scheduler: Any,
                    brain_guidance: Callable[[torch.Tensor], torch.Tensor], brain_scale: float) -> torch.Tensor:
        """ε shifted along the gradient of an encoding model's predicted activation of the clean-image estimate
        (classifier guidance, as BrainDiVE): ε − scale · sqrt(1 − ᾱ_t) · ∇_x activation(x̂₀(x))."""
        ab = scheduler.alphas_cumprod.to(latents.device)[int(t)].to(latents.dtype)
        with torch.enable_grad():
            x = latents.detach().requires_grad_(True)
            x0 = (x - (1 - ab).sqrt() * eps.detach()) / ab.sqrt()
            activation = brain_guidance(((self.decode_latents(x0) + 1) / 2).clamp(0, 1)).sum()
            grad = torch.autograd.grad(activation, x)[0]
        return eps - brain_scale * (1 - ab).sqrt() * grad

    @torch.no_grad()
    def _draw(self, embeds: torch.Tensor, init: torch.Tensor | None, strength: float, steps: int,
              guidance_scale: float, noise_level: int, generators: Sequence[torch.Generator],
              brain_guidance: Callable[[torch.Tensor], torch.Tensor] | None = None,
              brain_scale: float = 0.0) -> torch.Tensor:
        B = embeds.shape[0]
        cond = self._condition(embeds, noise_level, generators)
        cfg = guidance_scale > 1.0
        if cfg:
            cond = torch.cat([torch.zeros_like(cond), cond])
        prompt = self.prompt_embeds.expand(cond.shape[0], -1, -1)
        scheduler = self.scheduler.__class__.from_config(self.scheduler.config)
        scheduler.set_timesteps(steps, device=self.device)
        timesteps = scheduler.timesteps
        c, s = self.unet.config.in_channels, self.unet.config.sample_size
        noise = randn((c, s, s), generators, self.device, embeds.dtype)
        if init is not None and strength < 1.0:
            t_start = max(0, steps - int(round(steps * strength)))
            timesteps = timesteps[t_start:]
            latents = self.encode_images(init)
            latents = scheduler.add_noise(latents, noise, timesteps[:1].repeat(B)) if len(timesteps) else latents
        else:
            latents = noise * scheduler.init_noise_sigma
        for t in timesteps:
            inp = torch.cat([latents] * 2) if cfg else latents
            inp = scheduler.scale_model_input(inp, t)
            eps = self.unet(inp, t, encoder_hidden_states=prompt, class_labels=cond).sample
            if cfg:
                uncond, text = eps.chunk(2)
                eps = uncond + guidance_scale * (text - uncond)
            if brain_guidance is not None and brain_scale:
                eps = self._brain_step(latents, eps, t, scheduler, brain_guidance, brain_scale)
            latents = scheduler.step(eps, t, latents).prev_sample      # DDIM with eta = 0 draws no noise
        return ((self.decode_latents(latents) + 1) / 2).clamp(0, 1)

    @property
    def _dtype(self) -> torch.dtype:
        return self.unet.dtype

    def _prepare(self, embeds: torch.Tensor, init_images: Any = None, strength: float = 1.0, noise_level: int = 0,
                 brain_guidance: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 brain_scale: float = 0.0) -> dict[str, Any]:
        """The per-call inputs of :meth:`generate`'s own options.

        Parameters
        ----------
        init_images : array (n_trials, H, W[, C]) in [0, 1], optional
            Starting points (MindEye's blurry low-level reconstructions); used with ``strength < 1``.
        strength : float in (0, 1]
            Fraction of the diffusion run from the initial images (1: they are ignored).
        noise_level : int
            unCLIP noise augmentation of the embeddings.
        brain_guidance, brain_scale :
            Encoder-guided generation (BrainDiVE): a differentiable ``brain_guidance(images (B, C, H, W) in [0, 1])
            -> (B,)`` — an encoding model's predicted activation of a voxel group, e.g.
            :meth:`~neurodecode.alignment.encoding_models.RidgeEncodingModel.activation` — whose gradient on each
            step's clean-image estimate steers sampling towards images that drive the group (``brain_scale`` > 0)
            or silence it (< 0); 0: plain sampling.
        """
        if not 0 < strength <= 1:
            raise ValueError(f"field 'strength': expected a value in (0, 1], got {strength}")
        init = None if init_images is None else self._to_tensor(init_images, "init_images")
        if init is not None and len(init) != len(embeds):
            raise ValueError(f"field 'init_images': expected one image per embedding ({len(embeds)}), got {len(init)}")
        return {"init": init, "strength": strength, "noise_level": noise_level, "brain_guidance": brain_guidance,
                "brain_scale": float(brain_scale)}

    def _sample(self, embeds: torch.Tensor, state: dict[str, Any], idx: np.ndarray,
                generators: Sequence[torch.Generator], steps: int, guidance_scale: float) -> torch.Tensor:
        init = None if state["init"] is None else state["init"][idx]
        return self._draw(embeds, init, state["strength"], steps, guidance_scale, state["noise_level"], generators,
                          state["brain_guidance"], state["brain_scale"])

    # -- training the tiny generator -------------------------------------------------------------------------
    def fit(self, latents: Any, images: Any, *, cond_drop_prob: float = 0.1,
            trainer: Mapping[str, Any] | None = None, seed: int = 0) -> UnCLIPImageHead:
        """Train the UNet (DDPM ε-prediction) on (embedding, image) pairs — ``latents (n, embed_dim)``, ``images (n,
        H, W, C)`` of :attr:`image_shape` in [0, 1]; conditioning dropped at ``cond_drop_prob`` for classifier-free
        guidance. For tiny generators on small image sets."""
        from neurodecode.core.training import Trainer

        x = self._to_tensor(images, "images").cpu()
        e = torch.as_tensor(self.latent.check(latents, f"{self.name} image head"), dtype=torch.float32)
        if len(e) != len(x):
            raise ValueError(f"field 'latents': expected one embedding per image ({len(x)}), got {len(e)}")
        n_train = self.scheduler.config.num_train_timesteps
        params = trainer_settings(trainer, {"max_epochs": 200, "batch_size": 32, "lr": 1e-3}, self.name, seed=seed,
                                  device=str(self.device))
        params["batch_size"] = min(params["batch_size"], len(x))
        calls, seed = itertools.count(), params["seed"]

        def objective(model: nn.Module, batch: Any) -> torch.Tensor:
            # the noise, timestep and condition drop of an item depend on (seed, micro-step, item) only, so that N
            # processes splitting a global batch draw what one process draws for it
            xb, eb, ib = batch
            gens = trial_generators(seed, ib.tolist(), next(calls), device=xb.device)
            with torch.no_grad():
                lat = self.encode_images(xb)
            cond = self._condition(eb, 0, gens)
            u = torch.stack([torch.rand((), generator=g, device=g.device) for g in gens])
            cond = torch.where((u < cond_drop_prob)[:, None], torch.zeros_like(cond), cond)
            t = torch.cat([torch.randint(0, n_train, (1,), generator=g, device=g.device) for g in gens])
            noise = randn(lat.shape[1:], gens, lat.device, lat.dtype)
            noisy = self.scheduler.add_noise(lat, noise, t)
            pred = model(noisy, t, encoder_hidden_states=self.prompt_embeds.expand(len(xb), -1, -1),
                         class_labels=cond).sample
            return nn.functional.mse_loss(pred, noise)

        Trainer(**{**params, "drop_last": True}).fit(
            self.unet, objective, torch.utils.data.TensorDataset(x, e, torch.arange(len(x))))
        self.unet.eval()
        return self


@register
class LowLevelImages(RegressorMixin, BaseEstimator):
    """MindEye's low-level branch: ridge regression from brain features to the pixels of the stimulus images, whose
    blurry predictions start the image head's img2img (the one branch a training run fits and its checkpoint holds).

    Parameters
    ----------
    image_shape : (H, W, C)
        The images it predicts (a training run: the image head's :attr:`~ImageHead.image_shape`).
    alphas : sequence of float
        Ridge penalties (chosen by leave-one-out).

    Attributes
    ----------
    ridge_ : RidgeAlignment
        Features (n, n_features) → flattened pixels (n, H·W·C).
    """

    def __init__(self, image_shape: Sequence[int] = (32, 32, 1),
                 alphas: Sequence[float] = tuple(np.logspace(-1, 6, 15))) -> None:
        self.image_shape = image_shape
        self.alphas = alphas

    def fit(self, X: Any, images: Any) -> LowLevelImages:
        """Fit on brain features ``X (n, n_features)`` and stimulus images ``(n, H', W'[, C'])`` in [0, 1] (resized to
        ``image_shape``)."""
        from neurodecode.alignment.aligners import RidgeAlignment
        from neurodecode.core.stimuli import resize_images

        H, W, C = (int(v) for v in self.image_shape)
        if H != W:
            raise ValueError(f"field 'image_shape': expected square images (H = W), got {tuple(self.image_shape)}")
        imgs = np.asarray(images, dtype=np.float32)
        imgs = resize_images(imgs[..., None] if imgs.ndim == 3 else imgs, H, C)
        self.ridge_ = RidgeAlignment(alphas=tuple(self.alphas)).fit(X, imgs.reshape(len(imgs), -1))
        self.n_features_in_ = self.ridge_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Blurry images (n, H, W, C) in [0, 1]."""
        check_is_fitted(self, "ridge_")
        flat = self.ridge_.predict(X)
        return np.clip(flat, 0, 1).reshape(len(flat), *(int(v) for v in self.image_shape)).astype(np.float32)


class IPAdapterImageHead(ImageHead, nn.Module):
    """Images from image embeddings through IP-Adapter: a Stable Diffusion UNet whose cross-attention also reads
    tokens projected from the embedding (diffusers' ``load_ip_adapter`` and ``ip_adapter_image_embeds``).

    ``IPAdapterImageHead.from_pretrained()`` loads Stable Diffusion 1.5 with ``h94/IP-Adapter``'s
    ``ip-adapter_sd15.bin`` (CLIP ViT-H/14 image embeddings, 1024-d); ``tiny(...)`` builds the same wiring from
    small configs with random IP-Adapter weights (seeded) for tests. ``generate`` returns an :class:`ImageOutput`
    with ``images`` (n_trials, n_samples, H, W, 3). Not trainable here; no img2img start.
    """

    def __init__(self, pipe: Any, embed_dim: int, prompt_embeds: torch.Tensor,
                 config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.pipe, self.embed_dim = pipe, embed_dim
        self.unet, self.vae = pipe.unet, pipe.vae  # registered, so .to() and state_dict() see them
        self.register_buffer("prompt_embeds", prompt_embeds)
        self._describe(dict(config or {}).get("model_id", "tiny-ip-adapter"), config)

    defaults = {"num_inference_steps": 25, "guidance_scale": 5.0}

    @property
    def latent(self) -> LatentSpec:
        raw = bool(self.config.get("raw_embeddings", "model_id" in self.config))
        space = "CLIP ViT-H/14 image embeddings" if raw else "random IP-Adapter projection (tiny variant)"
        return LatentSpec(self.embed_dim, space=space, raw=raw)       # its scale: the target space's raw norm

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images it generates."""
        size = int(self.unet.config.sample_size) * self.pipe.vae_scale_factor
        return size, size, 3

    @classmethod
    def from_pretrained(cls, model_id: str = "stable-diffusion-v1-5/stable-diffusion-v1-5",
                        ip_adapter: str = "h94/IP-Adapter", weight_name: str = "ip-adapter_sd15.bin",
                        scale: float = 1.0, device: str = "cpu", dtype: str = "float32") -> IPAdapterImageHead:
        from diffusers import StableDiffusionPipeline

        pipe = load_pretrained(StableDiffusionPipeline, model_id, torch_dtype=getattr(torch, dtype),
                               safety_checker=None, requires_safety_checker=False)
        try:
            pipe.load_ip_adapter(ip_adapter, subfolder="models", weight_name=weight_name)
        except (OSError, ValueError) as err:
            raise RuntimeError(f"could not load the IP-Adapter weights {ip_adapter}/models/{weight_name}: not in the "
                               f"Hugging Face cache and not downloadable here. On a machine with internet run "
                               f"`huggingface-cli download {ip_adapter} models/{weight_name}`. ({err})") from None
        pipe.set_ip_adapter_scale(scale)
        with torch.no_grad():
            prompt, _ = pipe.encode_prompt("", "cpu", 1, False)
        embed_dim = pipe.unet.encoder_hid_proj.image_projection_layers[0].image_embeds.in_features
        config = {"model_id": model_id, "ip_adapter": ip_adapter, "weight_name": weight_name, "scale": scale}
        return cls(pipe, embed_dim, prompt, config).to(device)

    @classmethod
    def tiny(cls, embed_dim: int = 24, image_size: int = 32, cross_attention_dim: int = 32,
             block_out_channels: Sequence[int] = (16, 32), prompt_tokens: int = 4, seed: int = 0,
             device: str = "cpu", raw_embeddings: bool = False) -> IPAdapterImageHead:
        """Small SD-like UNet + VAE + DDIM and random IP-Adapter weights (image projection to 4 tokens);
        ``raw_embeddings=True``: reads raw tower embeddings as the published weights do."""
        config = {"embed_dim": embed_dim, "image_size": image_size, "cross_attention_dim": cross_attention_dim,
                  "block_out_channels": list(block_out_channels), "prompt_tokens": prompt_tokens, "seed": seed,
                  "raw_embeddings": bool(raw_embeddings)}
        from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

        torch.manual_seed(seed)
        n = len(block_out_channels)
        unet = UNet2DConditionModel(
            sample_size=image_size // 2, in_channels=4, out_channels=4, block_out_channels=list(block_out_channels),
            layers_per_block=1, down_block_types=["DownBlock2D"] * (n - 1) + ["CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D"] + ["UpBlock2D"] * (n - 1), cross_attention_dim=cross_attention_dim,
            attention_head_dim=8, norm_num_groups=8)
        vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=[16, 32],
                            down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                            latent_channels=4, norm_num_groups=8, sample_size=image_size)
        scheduler = DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                                  steps_offset=1)
        tokens = 4  # IP-Adapter's image projection: embedding → 4 cross-attention tokens
        state = {"image_proj": {"proj.weight": torch.randn(cross_attention_dim * tokens, embed_dim) * 0.05,
                                "proj.bias": torch.zeros(cross_attention_dim * tokens),
                                "norm.weight": torch.ones(cross_attention_dim),
                                "norm.bias": torch.zeros(cross_attention_dim)}, "ip_adapter": {}}
        key = 1  # diffusers numbers the cross-attention processors 1, 3, 5, ...
        for name in unet.attn_processors:
            if name.endswith("attn1.processor"):
                continue
            if name.startswith("mid_block"):
                hidden = block_out_channels[-1]
            elif name.startswith("up_blocks"):
                hidden = list(reversed(block_out_channels))[int(name[len("up_blocks.")])]
            else:
                hidden = block_out_channels[int(name[len("down_blocks.")])]
            for kv in ("k", "v"):
                state["ip_adapter"][f"{key}.to_{kv}_ip.weight"] = torch.randn(hidden, cross_attention_dim) * 0.05
            key += 2
        unet._load_ip_adapter_weights([state], low_cpu_mem_usage=False)
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, image_encoder=None,
                                       requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        prompt = torch.zeros(1, prompt_tokens, cross_attention_dim)
        head = cls(pipe, embed_dim, prompt, {"tiny": config, "raw_embeddings": bool(raw_embeddings)})
        return head if device == "cpu" else head.to(device)

    @property
    def device(self) -> torch.device:
        return self.prompt_embeds.device

    @property
    def _dtype(self) -> torch.dtype:
        return self.unet.dtype

    @torch.no_grad()
    def _sample(self, embeds: torch.Tensor, state: Any, idx: np.ndarray, generators: Sequence[torch.Generator],
                steps: int, guidance_scale: float) -> torch.Tensor:
        """The Stable Diffusion loop with each row's own IP-Adapter embedding (diffusers' pipeline repeats one
        embedding for the whole batch) and classifier-free guidance against a zero embedding and empty prompt."""
        unet, vae = self.unet, self.vae
        B, cfg = len(embeds), guidance_scale > 1.0
        scheduler = self.pipe.scheduler.__class__.from_config(self.pipe.scheduler.config)
        scheduler.set_timesteps(steps, device=embeds.device)
        c, size = unet.config.in_channels, unet.config.sample_size
        latents = randn((c, size, size), generators, embeds.device, embeds.dtype) * scheduler.init_noise_sigma
        prompt, ip = self.prompt_embeds.expand(B, -1, -1).to(embeds.dtype), embeds[:, None]
        if cfg:
            prompt, ip = torch.cat([torch.zeros_like(prompt), prompt]), torch.cat([torch.zeros_like(ip), ip])
        for t in scheduler.timesteps:
            inp = scheduler.scale_model_input(torch.cat([latents] * 2) if cfg else latents, t)
            eps = unet(inp, t, encoder_hidden_states=prompt, added_cond_kwargs={"image_embeds": [ip]}).sample
            if cfg:
                uncond, cond = eps.chunk(2)
                eps = uncond + guidance_scale * (cond - uncond)
            latents = scheduler.step(eps, t, latents).prev_sample
        return ((vae.decode(latents / vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)
