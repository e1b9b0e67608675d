"""Fitting a decoding pipeline from a composed training config (what ``neurodecode train`` runs).

``run(cfg, out_dir)`` is one training run: ``data`` → held-out ``split`` → :func:`fit_pipeline` (encoder, target
space, aligner, heads through the head protocol) → held-out scores → the checkpoint. It writes into ``out_dir``: the
resolved ``config.yaml``, ``metrics.json`` (held-out retrieval and image scores), ``heldout_epochs.h5`` (the held-out
trials, ready for ``neurodecode reconstruct``) and ``checkpoint/`` (a :class:`~neurodecode.pipeline.DecodingPipeline`).
The Hydra command line around it is :mod:`neurodecode.cli.train`.

May import: every stage below (``neurodecode.core`` … ``neurodecode.evaluation``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.alignment.targets import TargetSpace
from neurodecode.core.configs import instantiate
from neurodecode.encoders.features import encoder_input
from neurodecode.core.epochs import EpochSet, InputContract
from neurodecode.core.logs import logger
from neurodecode.core.persistence import dumps
from neurodecode.core.stimuli import stimulus_images
from neurodecode.heads.base import KINDS, TrainingData, check_head, prepare_latents
from neurodecode.pipeline.checkpoint import Baseline, DecodingPipeline

__all__ = ["BASELINE_NAME", "compare_with_baseline", "fit_baseline", "fit_pipeline", "load_data", "run",
           "split_heldout", "target_space"]


def load_data(data_cfg: Mapping[str, Any], path: Any = None) -> EpochSet:
    """Instantiate a ``data`` config (``path`` replaced when given) into one :class:`EpochSet` with stimuli."""
    from omegaconf import OmegaConf

    # resolved against the whole config first (e.g. ${preprocessing.steps}); checkpoints store it resolved
    cfg = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=True) if OmegaConf.is_config(data_cfg)
                           else dict(data_cfg))
    if path is not None:
        if "path" not in cfg:
            raise ValueError(f"the data recipe {cfg.get('_target_')!r} reads no files (it has no 'path' field); "
                             "pass an epoch store (.h5) instead, e.g. the run's heldout_epochs.h5")
        paths = [str(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
        cfg.path = paths if len(paths) > 1 else paths[0]
    out = instantiate(cfg, "config 'data'")
    if isinstance(out, tuple):          # loaders that return (epochs, report)
        out = out[0]
    if not isinstance(out, EpochSet):
        raise TypeError(f"data config {cfg.get('_target_')!r}: expected it to build a neurodecode EpochSet, got "
                        f"{type(out).__name__}")
    return out


def split_heldout(epochs: EpochSet, split: Mapping[str, Any], classes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out epoch indices: by a table column's value (``column``, ``test``) or by whole runs /
    sessions / subjects (``by``, ``test`` fraction or values; :func:`neurodecode.core.datasets.split_epochs`).
    ``classes``: the "stimuli" are classes (labels objective), which every part shares by design: not warned."""
    column, test = split.get("column"), split.get("test")
    if column:
        if column not in epochs.table.columns:
            raise ValueError(f"field 'split.column': expected a column of the epochs' table "
                             f"{list(epochs.table.columns)}, got {column!r}")
        values = test if isinstance(test, (list, tuple)) else [test]
        held = epochs.table[column].astype(str).isin([str(v) for v in values]).to_numpy()
        train, heldout = np.flatnonzero(~held), np.flatnonzero(held)
    else:
        from neurodecode.core.datasets import split_epochs

        parts = split_epochs(epochs.table, by=split.get("by", "run"), test=test, seed=int(split.get("seed", 0)),
                             on_shared_stimulus="ignore" if classes else "warn")
        train, heldout = np.asarray(parts.parts["train"]), np.asarray(parts.parts["test"])
    if len(train) == 0 or len(heldout) == 0:
        raise ValueError(f"field 'split': expected training and held-out epochs, got {len(train)} and "
                         f"{len(heldout)} with {dict(split)}")
    return train, heldout


def _fit_encoder(cfg: Any, epochs: EpochSet, Y: np.ndarray) -> Any:
    """The configured encoder fitted on the training epochs (a masked autoencoder is pretrained first; an encoder
    that ``fits_targets``, e.g. the brain module, is fitted onto the target latents ``Y``, others on the labels)."""
    import torch

    encoder = instantiate(cfg.encoder, "config 'encoder'")
    if isinstance(encoder, torch.nn.Module):      # a masked autoencoder (pretrained here) or a published encoder
        from neurodecode.encoders.models.mae import SignalMAE
        from neurodecode.encoders.pretraining import EncoderFeatures, pretrain

        missing = str(cfg.get("missing_positions", "error"))
        if isinstance(encoder, SignalMAE):
            trainer = {k: v for k, v in cfg.trainer.items() if k != "ddp"}
            res = pretrain(epochs, encoder, trainer=trainer, seed=int(cfg.seed), missing_positions=missing)
            logger.info(f"encoder pretrained: masked-reconstruction error {res.val_error_before:.4f} → "
                        f"{res.val_error_after:.4f}")
            encoder = res.model
        elif hasattr(encoder, "tokens"):        # LaBraM / CBraMod: its (published) weights as they are
            source = getattr(encoder, "published", "random initialisation: no published checkpoint")
            logger.info(f"encoder {type(encoder).__name__} used as built ({source}); its pooled tokens are the "
                        "features")
        else:
            raise TypeError(f"config group 'encoder': {cfg.encoder._target_} builds a {type(encoder).__name__}; a "
                            "training run takes a scikit-learn transformer (voxels, tangent_space), a masked "
                            "autoencoder (tiny_mae, mae_eeg, mae_meg_spatial, mae_seeg_regions) or a published "
                            "encoder architecture (labram_base, cbramod, tiny_labram, tiny_cbramod)")
        encoder = EncoderFeatures.for_epochs(encoder, epochs, pool=cfg.pool, device=cfg.trainer.device,
                                             missing_positions=missing)
    if not hasattr(encoder, "fit") or not hasattr(encoder, "transform"):
        raise TypeError(f"config group 'encoder': expected a scikit-learn transformer or a neurodecode masked "
                        f"autoencoder, got {type(encoder).__name__}")
    targets = Y if getattr(encoder, "fits_targets", False) else epochs.table["label"].to_numpy()
    return encoder.fit(encoder_input(encoder, epochs), targets)


def _head_config(cfg: Any, kind: str, epochs: EpochSet, latent_dim: int) -> dict[str, Any] | None:
    """The resolved config of the head in slot ``kind`` (None when empty), with the training captions filled in
    for heads built from them (a mandatory ``captions`` field); ``latent_dim`` is visible to the configs as ``${latent_dim}``."""
    from omegaconf import OmegaConf, open_dict

    if "heads" not in cfg or cfg.heads.get(kind) is None:
        return None
    with open_dict(cfg):
        cfg.latent_dim = int(latent_dim)
    hcfg = OmegaConf.to_container(cfg.heads[kind], resolve=True)          # resolved against the whole config
    if "_target_" not in hcfg:
        raise ValueError(f"config 'heads.{kind}': expected a head (a '_target_': choose one with "
                         f"head@heads.{kind}=NAME, or empty the slot with head@heads.{kind}=null), got only the keys "
                         f"{sorted(hcfg)}")
    if hcfg.get("captions") == "???":               # a head built from the training captions (tiny vocabularies)
        if "caption" not in epochs.stimuli.columns:
            raise ValueError(f"heads.{kind}: {hcfg.get('_target_')} is built from the training captions: expected a "
                             "'caption' column in the stimulus table")
        hcfg["captions"] = sorted(set(epochs.stimuli["caption"].astype(str)))
    return hcfg


def mesh_targets(epochs: EpochSet, ids: list[str], Y: np.ndarray, fit: Mapping[str, Any], target: TargetSpace,
                 seed: int) -> tuple[np.ndarray, list[Any]]:
    """A 3D head's training pairs: the stimuli's own meshes (a ``mesh`` column of mesh files) with their latents,
    or ``fit.procedural`` procedural objects (:func:`~neurodecode.heads.sdf.procedural_shapes`) whose rendered
    views are embedded in the run's target space."""
    import pandas as pd

    from neurodecode.heads.sdf import read_mesh

    if "mesh" in epochs.stimuli.columns:
        table = epochs.stimuli.set_index("stimulus")
        files = {i: table.loc[i, "mesh"] for i in dict.fromkeys(ids)}
        loaded = {i: read_mesh(f) for i, f in files.items()}        # closed, finite meshes, or the file named
        return Y, [loaded[i] for i in ids]
    n = int(fit.get("procedural") or 0)
    if n <= 0:
        raise ValueError("heads.meshes: training a 3D head needs the stimuli's meshes (a 'mesh' column of mesh "
                         "files) or procedural objects (meshes.fit.procedural=N)")
    if target.kind != "clip" and target.shape_ is None:
        raise ValueError("heads.meshes: procedural objects are embedded through the target space's images; "
                         f"objective {target.kind!r} has none")
    from neurodecode.heads.sdf import procedural_shapes

    size = int(target.shape_[0]) if target.shape_ is not None else 224
    shapes = procedural_shapes(n, seed=seed, render_size=size, n_views=1)
    renders = shapes["renders"][:, 0]
    table = pd.DataFrame({"stimulus": [f"procedural-{k}" for k in range(n)], "height": size, "width": size,
                          "pixels": list(renders.reshape(n, -1))})
    logger.info(f"heads.meshes: {n} procedural objects ({', '.join(sorted(set(shapes['kinds'])))}) rendered at "
                f"{size} px and embedded in the {target.kind} target space")
    return target.transform(table, list(table["stimulus"])), shapes["meshes"]


def _fit_head(head: Any, kind: str, data: TrainingData, fit: Mapping[str, Any], seed: int) -> bool:
    """Train ``head`` on what the run offers (:meth:`~neurodecode.heads.base.HeadBase.fit_from` picks its
    targets) when ``fit.max_epochs > 0``; returns whether it was trained."""
    if not fit.get("max_epochs", 0):
        return False
    if not head.trainable:
        logger.warning(f"heads.{kind}: {head.name} is not trainable here; {kind}.fit.max_epochs is ignored and the "
                       "head is used as built")
        return False
    t0 = time.perf_counter()
    head.fit_from(data, trainer={k: v for k, v in fit.items() if k != "procedural"}, seed=seed)
    logger.info(f"head {kind} ({head.name}) trained in {time.perf_counter() - t0:.1f} s")
    return True


def _training_data(epochs: EpochSet, ids: list[str], Y: np.ndarray, images: np.ndarray | None,
                   fit: Mapping[str, Any], target: TargetSpace, seed: int) -> TrainingData:
    """What the run offers a head: latents, stimulus images and captions, and (lazily) meshes."""
    captions = None
    if "caption" in epochs.stimuli.columns:
        captions = epochs.stimuli.set_index("stimulus").loc[ids, "caption"].astype(str).tolist()
    has_meshes = "mesh" in epochs.stimuli.columns or int(fit.get("procedural") or 0) > 0
    meshes = (lambda: mesh_targets(epochs, ids, Y, fit, target, seed)) if has_meshes else None
    return TrainingData(Y, images, captions, meshes)


def _fit_heads(cfg: Any, epochs: EpochSet, ids: list[str], X: np.ndarray, Y: np.ndarray, target: TargetSpace
               ) -> tuple[dict, dict, list, Any, Any]:
    """Heads of the config's slots (built, checked against the latent, trained when asked), the low-level branch and
    the brain-guidance encoder: (heads, their configs, the kinds trained, low-level, guidance)."""
    from omegaconf import OmegaConf

    heads, configs, trained = {}, {}, []
    has_images = {"pixels", "file"} & set(epochs.stimuli.columns)
    images = stimulus_images(epochs.stimuli, ids, target.scale) if has_images else None
    for kind in KINDS:
        hcfg = _head_config(cfg, kind, epochs, Y.shape[1])
        if hcfg is None:
            continue
        head = check_head(instantiate(hcfg, f"config 'heads.{kind}'"), kind, f"config 'heads.{kind}'")
        width = target.token_shape_[1] if target.token_shape_ is not None else Y.shape[1]   # token targets: W
        if head.latent.dim != width:
            raise ValueError(f"config 'heads.{kind}': field 'embed_dim': expected the objective's latent size "
                             f"{width}, got {head.latent.dim} ({head.name} reads {head.latent.space}); set "
                             f"heads.{kind}.embed_dim={width} or change the objective")
        fit = (OmegaConf.to_container(cfg.get(kind, {}) or {}, resolve=True).get("fit") or {})
        # raw-scale heads train on the scale they read; token-level latents as tokens
        Yh = prepare_latents(head, Y, target.raw_norm_, target.token_shape_)
        if _fit_head(head, kind, _training_data(epochs, ids, Yh, images, fit, target, int(cfg.seed)), fit,
                     int(cfg.seed)):
            trained.append(kind)
        heads[kind], configs[kind] = head, hcfg
    low, guide = _image_branches(cfg, heads.get("images"), images, X, target)
    return heads, configs, trained, low, guide


def _image_branches(cfg: Any, head: Any, images: np.ndarray | None, X: np.ndarray, target: TargetSpace
                    ) -> tuple[Any, Any]:
    """The image slot's extra branches, fitted on the training images: MindEye's low-level branch
    (:class:`~neurodecode.heads.images.LowLevelImages`, ``images.low_level``; image spaces decode linearly and need
    none) and encoder-guided generation's encoding model (``images.brain_guidance.top_voxels``)."""
    from omegaconf import OmegaConf

    if head is None or images is None:
        return None, None
    settings = OmegaConf.to_container(cfg.get("images", {}) or {}, resolve=True)
    low = guide = None
    top = int((settings.get("brain_guidance") or {}).get("top_voxels") or 0)
    if top > 0:
        from neurodecode.alignment.encoding_models import BrainGuidance

        guide = BrainGuidance(top, head.image_shape[0]).fit(images, X)
        logger.info(f"brain guidance: ridge encoder on {guide.size}×{guide.size} pixels → the "
                    f"{len(guide.voxels_)} best-encoded features")
    if settings.get("low_level", False) and not target.is_image_space:
        from neurodecode.heads.images import LowLevelImages

        low = LowLevelImages(head.image_shape, alphas=tuple(np.logspace(-1, 6, 15))).fit(X, images)
    return low, guide


def target_space(cfg: Any) -> TargetSpace:
    """The (unfitted) target space of a training config's ``objective``."""
    from omegaconf import OmegaConf

    obj = OmegaConf.to_container(cfg.objective, resolve=True)
    return TargetSpace(**{k: obj.get(k) for k in ("kind", "n_components", "model", "pretrained", "column", "root",
                                                   "image_size", "tokens") if obj.get(k) is not None})


def fit_pipeline(cfg: Any, epochs: EpochSet, stimuli_all: Any = None) -> DecodingPipeline:
    """Fit encoder, target space, aligner and heads on training epochs (a composed ``train`` config)."""
    import torch
    from omegaconf import OmegaConf

    torch.manual_seed(int(cfg.seed))
    target = target_space(cfg)
    if target.kind == "labels":                 # class decoding: each epoch's class is its "stimulus"
        epochs = target.class_view(epochs)
        stimuli_all = None
        configured = [k for k in KINDS if (cfg.get("heads") or {}).get(k) is not None]
        if configured:
            raise ValueError(f"config 'heads.{configured[0]}': the labels objective decodes classes, which no "
                             f"generative head reads; set head@heads.{configured[0]}=null (or use an image or CLIP "
                             "objective)")
    if epochs.stimuli is None or epochs.table["stimulus"].isna().any():
        raise ValueError("data: expected a stimulus id for every epoch and a stimulus table (epochs.stimuli); the "
                         "training run maps brain responses onto stimulus latents (to decode classes without "
                         "stimuli, use objective=labels)")
    ids = epochs.table["stimulus"].astype(str).tolist()
    target.fit(epochs.stimuli, list(dict.fromkeys(ids)))
    Y = target.transform(epochs.stimuli, ids)
    t0 = time.perf_counter()
    encoder = _fit_encoder(cfg, epochs, Y)
    X = np.asarray(encoder.transform(encoder_input(encoder, epochs)))
    logger.info(f"encoder {type(encoder).__name__}: {X.shape[0]} epochs → {X.shape[1]} features "
                f"({time.perf_counter() - t0:.1f} s)")
    aligner = instantiate(cfg.aligner, "config 'aligner'")
    t0 = time.perf_counter()
    aligner.fit(X, Y)
    logger.info(f"aligner {type(aligner).__name__}: {X.shape[1]} features → {Y.shape[1]}-d {target.kind} latents "
                f"({time.perf_counter() - t0:.1f} s)")
    selection = None
    if hasattr(aligner, "best_estimator_") and hasattr(aligner, "selection"):      # aligner=auto: keep the choice
        selection, aligner = aligner.selection(), aligner.best_estimator_
    heads, configs, trained, low, guide = _fit_heads(cfg, epochs, ids, X, Y, target)
    stimuli = stimuli_all if stimuli_all is not None else epochs.stimuli
    target.index_gallery(stimuli)                       # retrieval comes from the target space
    baseline = fit_baseline(epochs, encoder, aligner, X, Y) if cfg.get("baseline", True) else None
    return DecodingPipeline(OmegaConf.to_container(cfg, resolve=True), InputContract.from_epochs(epochs), encoder,
                            target, aligner, heads, head_configs=configs, trained_heads=trained, low_level=low,
                            stimuli=stimuli, baseline=baseline, selection=selection, guidance=guide)


#: what the plain reference of a training run is
BASELINE_NAME = "baseline: ridge on the z-scored epochs"   # voxels (fMRI), sensors × times (M/EEG)


def fit_baseline(epochs: EpochSet, encoder: Any, aligner: Any, X: np.ndarray, Y: np.ndarray) -> Baseline | None:
    """The plain reference of a training run, fitted on the same training epochs and latents: closed-form ridge
    (leave-one-out penalty) from the z-scored flattened epochs — voxels for fMRI, sensors × times for M/EEG, the
    linear baseline of MindEye and of Benchetrit et al. None when the configured pipeline *is* that reference
    (voxel features → ridge on all voxels).

    Returns
    -------
    Baseline (``encoder``: :class:`~neurodecode.encoders.voxels.VoxelFeatures`, ``aligner``:
    :class:`~neurodecode.alignment.aligners.RidgeAlignment`), or None.
    """
    from neurodecode.alignment.aligners import RidgeAlignment
    from neurodecode.encoders.voxels import VoxelFeatures

    plain_encoder = type(encoder) is VoxelFeatures and encoder.standardize
    if plain_encoder and type(aligner) is RidgeAlignment and aligner.select_voxels is None:
        return None
    t0 = time.perf_counter()
    if plain_encoder:
        base_encoder, Xb = encoder, X
    else:
        base_encoder = VoxelFeatures().fit(epochs.data)
        Xb = base_encoder.transform(epochs.data)
    ridge = RidgeAlignment().fit(Xb, Y)
    logger.info(f"{BASELINE_NAME}: {Xb.shape[1]} features → {Y.shape[1]}-d latents, alpha {ridge.alpha_[0]:g} "
                f"({time.perf_counter() - t0:.1f} s)")
    return Baseline(BASELINE_NAME, base_encoder, ridge)


def compare_with_baseline(pipe: DecodingPipeline, epochs: EpochSet, stimuli: Any, seed: int = 0,
                          name: str = "pipeline", latents: np.ndarray | None = None) -> dict[str, Any]:
    """The pipeline and its plain baseline on the same (held-out) epochs: the baseline's scores, the paired
    per-trial comparison (:mod:`neurodecode.core.scores`) and whether the pipeline beats it.
    ``latents``: the pipeline's on ``epochs`` when already computed.

    Returns
    -------
    result : dict
        ``name``, ``scores`` (rows), ``comparison`` (rows), ``beats_baseline`` and ``summary`` (one line);
        ``{"name": ..., "same_as_pipeline": True}`` when the pipeline is its own baseline, and
        ``{"name": ..., "skipped": why}`` when the config says ``baseline: false``.
    """
    from neurodecode.core.scores import compare_scores, verdict
    from neurodecode.evaluation.scoring import latent_scores, latent_trial_scores

    if pipe.baseline is None:
        if not pipe.config.get("baseline", True):
            return {"name": BASELINE_NAME, "skipped": "baseline: false in the training config"}
        return {"name": BASELINE_NAME, "same_as_pipeline": True}
    ids = epochs.table["stimulus"].astype(str).tolist()
    mine = pipe.latents(epochs) if latents is None else latents
    base = pipe.baseline_latents(epochs)
    per_trial = [latent_trial_scores(pipe.target, z, stimuli, ids) for z in (mine, base)]
    table = compare_scores(*per_trial, names=(name, BASELINE_NAME), seed=seed)
    beats, summary = verdict(table, "accuracy" if pipe.target.kind == "labels" else "two_way")
    scores = latent_scores(pipe.target, base, stimuli, ids, seed=seed, names=(BASELINE_NAME, BASELINE_NAME),
                           per_trial=per_trial[1])
    return {"name": BASELINE_NAME, "scores": json.loads(scores.to_json()),
            "comparison": table.to_dict(orient="records"), "beats_baseline": beats, "summary": summary,
            "per_trial": {"pipeline": per_trial[0].to_dict(orient="list"),
                          "baseline": per_trial[1].to_dict(orient="list")}}


def run(cfg: Any, out_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Any]:
    """One training run into ``out_dir``: data → split → fit → held-out scores → checkpoint.

    A folder that already holds a run (``metrics.json`` or ``checkpoint/``) is refused unless ``overwrite``.

    Parameters
    ----------
    cfg : omegaconf.DictConfig
        The training config (:func:`neurodecode.compose`, as ``neurodecode train`` composes it).
    out_dir : str or path-like
        The run folder: ``checkpoint/``, ``heldout_epochs.h5``, ``metrics.json``, ``config.yaml``.
    overwrite : bool
        Replace a finished run in ``out_dir``.

    Returns
    -------
    metrics : dict
        What ``metrics.json`` holds: ``name``, ``n_train``, ``n_heldout``, ``seconds``, ``scores`` (held-out,
        with chance levels and intervals), ``baseline`` (the plain baseline on the same trials, paired) and
        ``checkpoint``.
    """
    from omegaconf import OmegaConf

    from neurodecode.core.storage import save
    from neurodecode.evaluation.scoring import format_scores, latent_scores

    out = Path(out_dir)
    if not overwrite and ((out / "metrics.json").exists() or (out / "checkpoint").exists()):
        raise FileExistsError(f"{out}: a training run is already there; choose another folder or pass overwrite")
    t_start = time.perf_counter()
    rank = maybe_init_distributed()
    if rank == 0:                                   # under torchrun only rank 0 writes the run folder
        out.mkdir(parents=True, exist_ok=True)
    epochs = load_data(cfg.data)
    logger.info(f"data: {epochs.n_epochs} epochs × {epochs.n_channels} channels × {epochs.n_times} times "
                f"({cfg.data._target_})")
    target = target_space(cfg)
    if target.kind == "labels":                     # classes as "stimuli": also in heldout_epochs.h5
        epochs = target.class_view(epochs)
    train_idx, held_idx = split_heldout(epochs, cfg.split, classes=target.kind == "labels")
    held_ep = epochs[held_idx]
    pipe = fit_pipeline(cfg, epochs[train_idx], stimuli_all=epochs.stimuli)
    latents = pipe.latents(held_ep)
    baseline = compare_with_baseline(pipe, held_ep, epochs.stimuli, int(cfg.seed), str(cfg.name), latents)
    mine = pd.DataFrame(baseline["per_trial"]["pipeline"]) if "per_trial" in baseline else None
    scores = latent_scores(pipe.target, latents, epochs.stimuli, held_ep.table["stimulus"].astype(str).tolist(),
                           seed=int(cfg.seed), names=(str(cfg.name), str(cfg.name)), per_trial=mine)
    ckpt = out / "checkpoint"
    metrics = {"name": str(cfg.name), "n_train": len(train_idx), "n_heldout": len(held_idx),
               "seconds": round(time.perf_counter() - t_start, 2),
               "scores": json.loads(scores.to_json()), "baseline": baseline, "checkpoint": str(ckpt)}
    if pipe.selection:
        metrics["aligner_selection"] = pipe.selection
    if pipe.target.kind == "labels":
        from neurodecode.evaluation.scoring import confusion

        metrics["confusion"] = confusion(pipe.target, latents, held_ep.table["stimulus"].astype(str).tolist())
    if rank != 0:
        logger.info(f"rank {rank}: trained with rank 0, which writes {out}")
        _barrier()
        return metrics
    save(held_ep, out / "heldout_epochs.h5", overwrite=True)
    pipe.save(ckpt, overwrite=True)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    (out / "metrics.json").write_text(dumps(metrics, indent=1))       # strict JSON: no bare NaN
    _barrier()
    for line in format_scores(metrics["scores"] + baseline.get("scores", [])):
        logger.info(f"held-out {line.strip()}")
    _log_baseline(baseline)
    logger.info(f"checkpoint → {ckpt}; held-out trials → {out / 'heldout_epochs.h5'} ({metrics['seconds']:.0f} s)")
    return metrics


def _log_baseline(baseline: Mapping[str, Any]) -> None:
    """The comparison with the plain baseline in the log; a one-line warning when the pipeline does not beat it."""
    from neurodecode.core.scores import format_comparison

    if baseline.get("same_as_pipeline"):
        logger.info("the configured pipeline is the plain baseline (voxel features → ridge): nothing to compare")
        return
    if baseline.get("skipped"):
        logger.warning(f"no plain baseline was fitted ({baseline['skipped']}): nothing says whether this pipeline "
                       "beats ridge")
        return
    for line in format_comparison(pd.DataFrame(baseline["comparison"])):
        logger.info(f"vs baseline: {line}")
    if baseline["beats_baseline"]:
        logger.info(baseline["summary"])
    else:
        logger.warning(baseline["summary"])


def maybe_init_distributed() -> int:
    """Under torchrun (WORLD_SIZE > 1) or a SLURM job with several tasks (Hydra's submitit launcher,
    ``tasks_per_node``) join the process group, so the Trainer runs DDP; returns this process' rank (0 alone).

    Each process takes the GPU of its ``LOCAL_RANK`` (``torch.cuda.set_device``), so ``device: cuda`` means a
    different GPU per rank. The group holds gloo for CPU tensors and, with CUDA, NCCL for GPU tensors, so CPU
    aligners and GPU heads can both train under one launch.
    """
    import torch

    if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        from submitit.helpers import TorchDistributedEnvironment   # installed with hydra-submitit-launcher

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    return int(torch.distributed.get_rank())


def _barrier() -> None:
    """Wait for every process (nothing alone), so no rank exits while rank 0 still writes."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
