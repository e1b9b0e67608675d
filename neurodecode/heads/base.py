"""The head protocol: what every generative head declares, takes and returns (diffusers' pipelines and nilearn's
``BaseMasker`` fix one interface the same way).

A head is a subclass of one kind base — :class:`ImageHead`, :class:`CaptionHead` or :class:`MeshHead` — which

* gives it a ``kind`` (``"images"``, ``"captions"`` or ``"meshes"``), a ``name``, a provenance ``config`` and a
  :class:`LatentSpec` — the latent it reads (dimension; pooled ``(n, dim)`` and/or token-level ``(n, n_tokens,
  dim)``; the space it expects);
* implements ``generate(latents, *, seed=0, trial_ids=None, **options)`` once per kind — check the latents, one
  generator per trial, batches that back off on GPU memory errors, a typed output (:class:`ImageOutput`,
  :class:`CaptionOutput`, :class:`MeshOutput`) with per-trial metadata and a ``write(out_dir)`` — around the head's
  own sampling step; the options a head uses are declared (:attr:`HeadBase.options`) and others refused;
* declares what it is trained on (``trainable``, :attr:`HeadBase.fit_needs`) and picks its training targets from
  what a training run offers (:meth:`HeadBase.fit_from` on a :class:`TrainingData`): images of the head's
  ``image_shape``, captions, or meshes — so the pipeline never asks a head what it can do.

Randomness is **per trial**: trial ``t``'s sample ``k`` is drawn with its own generator seeded by
:func:`trial_seed` ``(seed, t, k)``, so an output depends on (seed, trial id, sample index) only — not on the batch
it was generated in, nor on a batch halved after a CUDA out-of-memory error.

Also here: loading real weights with an error that names them (:func:`load_pretrained`) and batching that backs off
on GPU memory errors (:func:`run_in_batches`). May import: ``neurodecode.core`` … ``neurodecode.alignment``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

__all__ = ["KINDS", "KIND_BASES", "CaptionHead", "CaptionOutput", "Head", "HeadBase", "HeadOutput", "ImageHead",
           "ImageOutput", "LatentSpec", "MeshHead", "MeshOutput", "TrainingData", "check_head", "check_latents",
           "load_pretrained", "prepare_latents", "randn", "rank_samples", "render_mesh", "run_in_batches", "trial_generators",
           "trial_ids_for", "trial_seed"]

KINDS = ("images", "captions", "meshes")


# -- what a head reads -------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LatentSpec:
    """The latent a head reads.

    Attributes
    ----------
    dim : int
        ``embed_dim`` of each vector.
    pooled, tokens : bool
        Accepts ``(n_trials, dim)`` and/or ``(n_trials, n_tokens, dim)``.
    space : str
        What the vectors must be (e.g. "CLIP ViT-L/14 image embeddings"), for error messages and reports.
    raw : bool
        The head reads the image tower's unnormalised embeddings (published unCLIP / IP-Adapter weights were
        trained on them), not the unit vectors of a cosine target space: :func:`prepare_latents` rescales.
    norm : float or None
        The mean L2 norm of the embeddings it expects, when its weights say so (unCLIP: from its image
        normaliser's statistics, sqrt(Σ mean² + std²)); else the target space's measured raw norm is used.
    """

    dim: int
    pooled: bool = True
    tokens: bool = False
    space: str = "the space the head was built or trained for"
    raw: bool = False
    norm: float | None = None

    def check(self, latents: Any, head: str) -> np.ndarray:
        """Latents as float32 ``(n, dim)`` or ``(n, n_tokens, dim)``, or a ValueError naming the head and shapes."""
        if hasattr(latents, "detach"):
            latents = latents.detach().cpu().numpy()
        a = np.asarray(latents, dtype=np.float32)
        if a.ndim == 1 and self.pooled:
            a = a[None]
        ok = a.ndim >= 2 and a.shape[-1] == self.dim and ((a.ndim == 2 and self.pooled) or (a.ndim == 3 and self.tokens))
        if not ok:
            want = " or ".join(s for s, on in ((f"(n_trials, {self.dim})", self.pooled),
                                               (f"(n_trials, n_tokens, {self.dim})", self.tokens)) if on)
            raise ValueError(f"field 'latents': the {head} expects {want} embeddings, got shape {a.shape}; it reads "
                             f"{self.space}: align to this head's embedding space first")
        if not np.isfinite(a).all():
            raise ValueError(f"field 'latents': expected finite values for the {head}, got NaN or Inf")
        if self.norm is not None and len(a):
            have = float(np.median(np.linalg.norm(a, axis=-1)))
            if not self.norm / 3 <= have <= self.norm * 3:
                import warnings

                warnings.warn(f"the {head} expects embeddings of norm ≈ {self.norm:.3g} (its weights' scale), got "
                              f"a median norm of {have:.3g}: rescale them with neurodecode.heads.base."
                              "prepare_latents (unit-norm CLIP targets are not the tower's raw scale)",
                              UserWarning, stacklevel=3)
        return a


def prepare_latents(head: Any, latents: Any, raw_norm: float | None = None,
                    token_shape: Sequence[int] | None = None) -> np.ndarray:
    """Latents at the scale ``head`` expects: unchanged for heads trained on the target space, each vector
    rescaled (direction kept) to the expected norm for heads that read the image tower's raw embeddings
    (``LatentSpec.raw``) — the norm their weights declare, else ``raw_norm`` (the target space's measured
    mean raw norm, ``raw_norm_``). With ``token_shape`` (a
    token-level objective's ``(n_tokens, width)``) the flattened latents are reshaped into tokens first.

    Raises when a raw head's scale is known from neither (never a silent unit-norm conditioning); warns when the
    two disagree by more than 1.5× (the objective's CLIP model is probably not the head's).
    """
    spec = head.latent
    a = np.asarray(latents.detach().cpu().numpy() if hasattr(latents, "detach") else latents, dtype=np.float32)
    if token_shape is not None:                  # token-level targets, flattened by the aligner: (n, T, W) again
        if not spec.tokens:
            raise ValueError(f"field 'objective.tokens': the objective's latents are image tokens "
                             f"{tuple(token_shape)}, but the {head.name} head reads pooled {spec.space}; use a "
                             "pooled objective or a head that reads tokens (e.g. shap_e_img2img)")
        a = a.reshape(len(a), *token_shape)
    if not spec.raw:
        return a
    norm = spec.norm if spec.norm is not None else raw_norm
    if norm is None:
        raise ValueError(f"field 'objective': the {head.name} head reads raw (unnormalised) {spec.space}, and "
                         "neither its weights nor the target space give their scale; use an image objective "
                         "(objective=clip_vit_l14 with image stimuli) so that the raw norm is measured")
    if spec.norm is not None and raw_norm is not None and not 1 / 1.5 <= spec.norm / raw_norm <= 1.5:
        import warnings

        warnings.warn(f"the {head.name} head expects embeddings of norm ≈ {spec.norm:.3g}, but the target space's "
                      f"images embed at ≈ {raw_norm:.3g}: its CLIP model is probably not the head's", UserWarning,
                      stacklevel=2)
    lengths = np.linalg.norm(a, axis=-1, keepdims=True)
    return (a / np.where(lengths > 0, lengths, 1.0) * norm).astype(np.float32)


def check_latents(latents: Any, embed_dim: int, head: str) -> np.ndarray:
    """Pooled latents as float32 ``(n_trials, embed_dim)`` (see :meth:`LatentSpec.check`)."""
    return LatentSpec(embed_dim).check(latents, head)


# -- per-trial randomness ------------------------------------------------------------------------------------------

def trial_seed(seed: int, trial: Any, sample: int = 0) -> int:
    """A 63-bit seed that depends on ``(seed, trial id, sample index)`` only (the trial id may be any string)."""
    digest = hashlib.sha256(str(trial).encode()).digest()
    entropy = [int(seed) & 0xFFFFFFFF, int.from_bytes(digest[:8], "little"), int(sample)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def trial_generators(seed: int, trials: Sequence[Any], sample: int = 0, device: Any = "cpu") -> list[Any]:
    """One ``torch.Generator`` per trial, seeded by :func:`trial_seed`."""
    import torch

    return [torch.Generator(device).manual_seed(trial_seed(seed, t, sample)) for t in trials]


def randn(shape: Sequence[int], generators: Sequence[Any], device: Any = "cpu", dtype: Any = None) -> Any:
    """``(len(generators), *shape)`` standard normal draws, row ``i`` from ``generators[i]`` (batch-independent)."""
    import torch

    return torch.stack([torch.randn(tuple(shape), generator=g, device=device, dtype=dtype) for g in generators])


# -- outputs -------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class HeadOutput:
    """What every head returns: per-trial results and what made them.

    Attributes
    ----------
    head : str
        The head's name.
    trials : list of str
        Trial ids, one per result.
    seed : int
    seconds_per_trial : float
    config : dict
        What built the head (model ids or a tiny config), stored in ``metadata.json``.
    """

    kind: ClassVar[str] = ""
    head: str
    trials: list[str]
    seed: int
    seconds_per_trial: float
    config: dict

    def __len__(self) -> int:
        return len(self.trials)

    def _check_len(self, n: int, what: str) -> None:
        if n != len(self.trials):
            raise ValueError(f"field '{what}': expected one result per trial ({len(self.trials)}), got {n}")

    def report_columns(self) -> dict[str, list]:
        """Column name → one cell per trial, for the HTML report."""
        raise NotImplementedError

    def _write(self, out_dir: str | os.PathLike, subjects: Sequence[Any] | None, **files: Any) -> Path:
        from neurodecode.heads.writing import write_trials

        return write_trials(out_dir, self.head, trials=self.trials, subjects=subjects, seed=self.seed,
                            model_ids=self.config, timings={"seconds_per_trial": self.seconds_per_trial}, **files)


@dataclasses.dataclass
class ImageOutput(HeadOutput):
    """``images`` (n_trials, n_samples, H, W, C) float32 in [0, 1], the selected sample first; ``best`` (n_trials,)
    the index of the selected sample among those drawn; ``label`` names the report column."""

    kind: ClassVar[str] = "images"
    images: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 1, 1, 1, 1), np.float32))
    best: np.ndarray | None = None
    label: str = "generated"

    def __post_init__(self) -> None:
        if self.images.ndim != 5:
            raise ValueError(f"field 'images': expected (n_trials, n_samples, H, W, C), got shape {self.images.shape}")
        self._check_len(len(self.images), "images")
        if self.best is None:
            self.best = np.zeros(len(self.images), dtype=int)

    def report_columns(self) -> dict[str, list]:
        return {self.label: list(self.images[:, 0])}

    def write(self, out_dir: str | os.PathLike, subjects: Sequence[Any] | None = None) -> Path:
        return self._write(out_dir, subjects, images=self.images)


@dataclasses.dataclass
class CaptionOutput(HeadOutput):
    """``captions`` (one per trial); ``top`` the k best per trial (ranked heads) and their ``scores``."""

    kind: ClassVar[str] = "captions"
    captions: list[str] = dataclasses.field(default_factory=list)
    top: list[list[str]] | None = None
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._check_len(len(self.captions), "captions")

    def report_columns(self) -> dict[str, list]:
        return {"caption": list(self.captions)}

    def write(self, out_dir: str | os.PathLike, subjects: Sequence[Any] | None = None) -> Path:
        return self._write(out_dir, subjects, captions=self.captions)


@dataclasses.dataclass
class MeshOutput(HeadOutput):
    """``meshes`` (trimesh.Trimesh, one per trial) and ``renders`` (n_trials, n_views, size, size) grey views."""

    kind: ClassVar[str] = "meshes"
    meshes: list[Any] = dataclasses.field(default_factory=list)
    renders: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 1, 1, 1), np.float32))

    def __post_init__(self) -> None:
        self._check_len(len(self.meshes), "meshes")

    def report_columns(self) -> dict[str, list]:
        return {"mesh views": [list(r) for r in self.renders]}

    def write(self, out_dir: str | os.PathLike, subjects: Sequence[Any] | None = None) -> Path:
        return self._write(out_dir, subjects, meshes=self.meshes, mesh_format="glb")


def render_mesh(mesh: Any, n_views: int = 4, size: int = 128, elevation: float = 20.0,
                background: float = 1.0) -> np.ndarray:
    """Grey-level views of a mesh around the vertical axis: (n_views, size, size) in [0, 1].

    Orthographic projection, Lambert shading from the viewer, painter's algorithm (faces drawn back to front) —
    enough to look at a decoded object and to score it with image metrics.
    """
    from PIL import Image, ImageDraw

    verts = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    views = np.full((n_views, size, size), background, dtype=np.float32)
    if len(faces) == 0:
        return views
    centre = (verts.max(0) + verts.min(0)) / 2
    scale = 0.9 * size / 2 / max(np.abs(verts - centre).max(), 1e-9)
    el = np.deg2rad(elevation)
    for k in range(n_views):
        az = 2 * np.pi * k / n_views
        rot_y = np.array([[np.cos(az), 0, np.sin(az)], [0, 1, 0], [-np.sin(az), 0, np.cos(az)]])
        rot_x = np.array([[1, 0, 0], [0, np.cos(el), -np.sin(el)], [0, np.sin(el), np.cos(el)]])
        v = (verts - centre) @ rot_y.T @ rot_x.T
        tri = v[faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        norm = np.linalg.norm(normal, axis=1)
        shade = np.abs(normal[:, 2]) / np.where(norm > 0, norm, 1)
        order = np.argsort(tri[:, :, 2].mean(1))  # far (small z) first, viewer at +z
        img = Image.new("L", (size, size), int(background * 255))
        draw = ImageDraw.Draw(img)
        xy = np.stack([tri[:, :, 0] * scale + size / 2, size / 2 - tri[:, :, 1] * scale], axis=-1)
        for f in order:
            draw.polygon([tuple(p) for p in xy[f]], fill=int(40 + 200 * shade[f]))
        views[k] = np.asarray(img, dtype=np.float32) / 255.0
    return views


# -- the protocol and the kind bases ------------------------------------------------------------------------------

@runtime_checkable
class Head(Protocol):
    """What ``train``, ``reconstruct`` and the evaluation harness rely on (and nothing else); every neurodecode
    head is one of the kind bases below, which implement it."""

    kind: str
    name: str
    trainable: bool

    @property
    def latent(self) -> LatentSpec: ...

    def generate(self, latents: Any, *, seed: int = 0, trial_ids: Sequence[Any] | None = None,
                 **options: Any) -> HeadOutput: ...


@dataclasses.dataclass
class TrainingData:
    """What a training run offers a head to fit on, one row per training trial.

    Attributes
    ----------
    latents : ndarray (n_trials, embed_dim) or (n_trials, n_tokens, width)
        At the scale the head reads (:func:`prepare_latents`).
    images : ndarray (n_trials, H, W, C) in [0, 1], optional
        The stimulus images (from a ``pixels`` or ``file`` column).
    captions : list of str, optional
        The stimulus captions (a ``caption`` column).
    meshes : callable, optional
        ``meshes() -> (latents, meshes)``: the stimuli's own meshes with ``latents``, or procedural objects with
        their embeddings (built only when a 3D head is trained).
    """

    latents: np.ndarray
    images: np.ndarray | None = None
    captions: list[str] | None = None
    meshes: Callable[[], tuple[np.ndarray, list[Any]]] | None = None


class HeadBase:
    """What every head has, written once: its kind, name and provenance ``config`` (what built it — a model id or
    a tiny config — stored in every output's metadata), the options its ``generate`` takes, and what its ``fit``
    needs from a training run.

    Subclass one of :class:`ImageHead`, :class:`CaptionHead`, :class:`MeshHead`; they implement ``generate`` once
    (check latents → per-trial generators → batches → typed output) around the head's own sampling step.
    """

    kind: ClassVar[str] = ""
    #: ``fit`` exists and trains the head (tiny generators, caption mappers, the SDF decoder)
    trainable: ClassVar[bool] = False
    #: what ``fit`` reads from the stimuli besides its kind's own targets (e.g. GIT's map: ``{"images"}``)
    fit_needs: ClassVar[frozenset[str]] = frozenset()
    #: the keyword options of ``generate`` this head uses (others are refused, never silently ignored)
    options: ClassVar[tuple[str, ...]] = ()
    name: str
    config: dict[str, Any]

    def _describe(self, name: str, config: Mapping[str, Any] | None) -> None:
        """Set the head's display name and provenance config (called by each head's constructor)."""
        self.name, self.config = name, dict(config or {})

    @property
    def latent(self) -> LatentSpec:
        raise NotImplementedError

    def _check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"{self.name}: generate() takes the options {list(self.options)}, not {unknown}")

    def fit_from(self, data: TrainingData, trainer: Mapping[str, Any] | None = None, seed: int = 0) -> HeadBase:
        """Train on what a training run offers (:class:`TrainingData`): the kind base picks its targets."""
        raise TypeError(f"{self.name} is not trainable")

    def _require(self, data: TrainingData, what: str, hint: str) -> Any:
        value = getattr(data, what)
        if value is None:
            raise ValueError(f"heads.{self.kind}: {self.name} trains on the stimulus {what}: expected {hint}")
        return value


class ImageHead(HeadBase):
    """Image heads: ``generate(latents) -> ImageOutput`` with ``images`` (n_trials, n_samples, H, W, C) in [0, 1].

    A subclass defines :attr:`image_shape`, ``device`` and ``_sample(embeds, state, generators, steps,
    guidance_scale) -> tensor (B, C, H, W) in [0, 1]`` — one draw per row, each row from its own generator — and
    may define ``_prepare(embeds, **options) -> state`` for per-call inputs (initial images, guidance).
    """

    kind: ClassVar[str] = "images"
    #: img2img from MindEye's low-level reconstruction (``init_images``, ``strength``)
    img2img: ClassVar[bool] = False
    #: encoder-guided sampling (``brain_guidance``, ``brain_scale``)
    brain_guided: ClassVar[bool] = False
    #: the head's own defaults for the shared options
    defaults: ClassVar[Mapping[str, Any]] = {"num_inference_steps": 25, "guidance_scale": 1.0}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images it generates (and trains on)."""
        raise NotImplementedError

    def _prepare(self, embeds: Any, **options: Any) -> Any:
        return None

    def generate(self, latents: Any, *, seed: int = 0, trial_ids: Sequence[Any] | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None, n_samples: int = 1,
                 batch_size: int = 8, select_with: Callable[[np.ndarray], np.ndarray] | None = None,
                 progress: bool = False, **options: Any) -> ImageOutput:
        """Images for each predicted embedding.

        Parameters
        ----------
        latents : array (n_trials, embed_dim)
        seed, trial_ids :
            Sample ``k`` of trial ``t`` is drawn with a generator seeded by ``trial_seed(seed, t, k)``; ``trial_ids``
            default to ``0 .. n_trials-1``.
        num_inference_steps, guidance_scale :
            Sampling steps; classifier-free guidance against a zero embedding (1: none). Default: the head's.
        n_samples : int
            Samples per trial.
        batch_size : int
            Trials per batch; on a CUDA out-of-memory error the batch is halved and retried (same images).
        select_with : callable, optional
            ``select_with(images (n, H, W, C)) -> embeddings (n, embed_dim)``; the sample closest (cosine) to the
            trial's predicted embedding is returned first and its index reported.
        **options :
            The head's own (:attr:`options`), e.g. ``init_images``/``strength`` (img2img) or ``brain_guidance``.
        """
        import torch

        self._check_options(options)
        if n_samples < 1:
            raise ValueError(f"field 'n_samples': expected >= 1, got {n_samples}")
        target = self.latent.check(latents, f"{self.name} image head")
        trials = trial_ids_for(trial_ids, len(target))
        steps = int(num_inference_steps or self.defaults["num_inference_steps"])
        scale = float(self.defaults["guidance_scale"] if guidance_scale is None else guidance_scale)
        embeds = torch.as_tensor(target, device=self.device, dtype=self._dtype)
        state = self._prepare(embeds, **options)
        t0 = time.perf_counter()

        def run(idx: np.ndarray) -> np.ndarray:
            draws = [self._sample(embeds[idx], state, idx, trial_generators(seed, [trials[i] for i in idx], k,
                                                                             self.device), steps, scale)
                     for k in range(n_samples)]
            return torch.stack(draws, 1).permute(0, 1, 3, 4, 2).float().cpu().numpy()

        images = run_in_batches(run, len(embeds), batch_size, progress=progress, desc="images")
        best = np.zeros(len(embeds), dtype=int)
        if select_with is not None and n_samples > 1:
            images, best = rank_samples(images, target, select_with)
        return ImageOutput(self.name, trials, seed, (time.perf_counter() - t0) / max(len(embeds), 1),
                           dict(self.config), images=images, best=best)

    def fit_from(self, data: TrainingData, trainer: Mapping[str, Any] | None = None, seed: int = 0) -> ImageHead:
        """Train on the stimulus images (resized to :attr:`image_shape`) and their latents."""
        from neurodecode.core.stimuli import resize_images

        images = self._require(data, "images", "a 'pixels' or 'file' column in the stimulus table")
        H, _, C = self.image_shape
        return self.fit(data.latents, resize_images(images, H, C), trainer=trainer, seed=seed)


class CaptionHead(HeadBase):
    """Caption heads: ``generate(latents) -> CaptionOutput`` (one caption per trial; ranked heads also give the top
    k and their scores). A subclass defines ``_captions(z, **options) -> (captions, top, scores)`` on the checked
    latents ``z`` (float32 (n, embed_dim))."""

    kind: ClassVar[str] = "captions"

    def generate(self, latents: Any, *, seed: int = 0, trial_ids: Sequence[Any] | None = None,
                 **options: Any) -> CaptionOutput:
        """Captions for each latent (deterministic; ``seed`` is recorded); ``options``: the head's own
        (:attr:`options`, e.g. ``k`` for a caption bank, ``max_tokens`` for a decoder)."""
        self._check_options(options)
        z = self.latent.check(latents, self.name)
        trials = trial_ids_for(trial_ids, len(z))
        t0 = time.perf_counter()
        captions, top, scores = self._captions(z, **options)
        return CaptionOutput(self.name, trials, seed, (time.perf_counter() - t0) / max(len(z), 1),
                             dict(self.config), captions=captions, top=top, scores=scores)

    def fit_from(self, data: TrainingData, trainer: Mapping[str, Any] | None = None, seed: int = 0) -> CaptionHead:
        """Train on the stimulus captions (and images, for heads whose ``fit_needs`` say so)."""
        captions = self._require(data, "captions", "a 'caption' column in the stimulus table")
        extra = {}
        if "images" in self.fit_needs:
            extra["images"] = self._require(data, "images", "a 'pixels' or 'file' column in the stimulus table")
        return self.fit(data.latents, captions, trainer=trainer, seed=seed, **extra)


class MeshHead(HeadBase):
    """3D heads: ``generate(latents) -> MeshOutput`` with meshes (trimesh) and rendered grey views (n_trials,
    n_views, size, size). A subclass defines ``_meshes(z, trials, seed, **options) -> list of meshes`` on the
    checked latents ``z``."""

    kind: ClassVar[str] = "meshes"

    def generate(self, latents: Any, *, seed: int = 0, trial_ids: Sequence[Any] | None = None, n_views: int = 4,
                 render_size: int = 128, **options: Any) -> MeshOutput:
        """Meshes and ``n_views`` rendered views of ``render_size`` pixels for each latent; ``options``: the
        head's own (:attr:`options`: a grid size, a sampler's steps ...)."""
        self._check_options(options)
        z = self.latent.check(latents, f"{self.name} 3D head")
        trials = trial_ids_for(trial_ids, len(z))
        t0 = time.perf_counter()
        meshes = self._meshes(z, trials, seed, **options)
        renders = np.stack([render_mesh(m, n_views, render_size) for m in meshes])
        return MeshOutput(self.name, trials, seed, (time.perf_counter() - t0) / max(len(z), 1), dict(self.config),
                          meshes=meshes, renders=renders)

    def fit_from(self, data: TrainingData, trainer: Mapping[str, Any] | None = None, seed: int = 0) -> MeshHead:
        """Train on the stimuli's meshes (or procedural objects) and their latents."""
        make = self._require(data, "meshes", "a 'mesh' column of mesh files, or meshes.fit.procedural=N objects")
        latents, meshes = make()
        return self.fit(latents, meshes, trainer=trainer, seed=seed)


#: the kind bases, by kind
KIND_BASES: dict[str, type[HeadBase]] = {"images": ImageHead, "captions": CaptionHead, "meshes": MeshHead}


def check_head(head: Any, kind: str, where: str) -> Any:
    """``head`` if it is a head of ``kind`` (a subclass of that kind's base), else a TypeError naming the config."""
    if not isinstance(head, KIND_BASES[kind]):
        raise TypeError(f"{where}: expected a {kind} head (a neurodecode.heads.base.{KIND_BASES[kind].__name__}), "
                        f"got {type(head).__name__} of kind {getattr(head, 'kind', None)!r}")
    return head


def trial_ids_for(trial_ids: Sequence[Any] | None, n: int) -> list[str]:
    """The trials' ids as strings (default: ``"0"`` to ``str(n - 1)``), one per latent."""
    ids = [str(i) for i in range(n)] if trial_ids is None else [str(t) for t in trial_ids]
    if len(ids) != n:
        raise ValueError(f"field 'trial_ids': expected one id per latent ({n}), got {len(ids)}")
    return ids


# -- weights and batching ------------------------------------------------------------------------------------------

def load_pretrained(cls: Any, model_id: str, subfolder: str | None = None, **kw: Any) -> Any:
    """``cls.from_pretrained(model_id, subfolder=...)`` with an error that says which weights are missing and how to
    get them (no hub access here, or not in the cache)."""
    try:
        return cls.from_pretrained(model_id, subfolder=subfolder, **kw) if subfolder else \
            cls.from_pretrained(model_id, **kw)
    except (OSError, ValueError) as err:
        where = f"{model_id}/{subfolder}" if subfolder else model_id
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise RuntimeError(
            f"could not load the weights {where!r} for {cls.__name__}: they are not in the Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and "
            f"{'HF_HUB_OFFLINE=1 forbids downloading them' if offline else 'the hub could not be reached'}. "
            f"On a machine with internet run `huggingface-cli download {model_id}` (or load the head once there) "
            f"and copy the cache, or point HF_HOME at a cache that has it. ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]})") from None


def run_in_batches(fn: Callable[[np.ndarray], np.ndarray], n: int, batch_size: int, *, progress: bool = False,
                   desc: str = "") -> np.ndarray:
    """``fn(indices) -> array`` over ``n`` items in batches, concatenated; a CUDA out-of-memory error halves the
    batch and retries (down to 1). With per-trial generators the result does not depend on the batch size."""
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"field 'batch_size': expected >= 1, got {batch_size}")
    out, start = [], 0
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False)
    while start < n:
        idx = np.arange(start, min(n, start + batch_size))
        try:
            out.append(fn(idx))
        except torch.cuda.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            torch.cuda.empty_cache()
            continue
        start += len(idx)
        bar.update(len(idx))
    bar.close()
    return np.concatenate(out)


def rank_samples(images: np.ndarray, target: np.ndarray, select_with: Callable[[np.ndarray], np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Samples of each trial ranked by cosine similarity of ``select_with(images)`` to the trial's ``target``
    latent: (images with the best first, index of the best among those drawn)."""
    n, s = images.shape[:2]
    flat = np.asarray(select_with(images.reshape(-1, *images.shape[2:])), dtype=np.float64).reshape(n, s, -1)
    target = np.asarray(target, dtype=np.float64).reshape(n, -1)
    if flat.shape[-1] != target.shape[-1]:
        raise ValueError(f"field 'select_with': expected embeddings of the latents' size {target.shape[-1]}, got "
                         f"{flat.shape[-1]}")
    sims = np.einsum("nsd,nd->ns", flat / np.linalg.norm(flat, axis=-1, keepdims=True),
                     target / np.linalg.norm(target, axis=-1, keepdims=True))
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(images, order[:, :, None, None, None], axis=1), sims.argmax(1)
