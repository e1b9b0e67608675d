"""Hydra training runs: ``neurodecode train`` / ``python -m neurodecode.train``.

The run composes ``conf/train.yaml`` from the config groups ``data``, ``preprocessing``, ``encoder``, ``objective``,
``aligner``, ``head`` (three slots: ``heads.images``, ``heads.captions``, ``heads.meshes``), ``trainer`` and
``experiment``, instantiates each ``_target_``, and writes into its own output folder (Hydra's ``runs/...``):
the resolved config (``.hydra/config.yaml`` and inside the checkpoint), ``metrics.json`` (held-out retrieval and
image scores), ``heldout_epochs.h5`` (the held-out trials, ready for ``neurodecode reconstruct``) and
``checkpoint/`` (a :class:`~neurodecode.pipeline.DecodingPipeline`).

Examples::

    neurodecode train experiment=demo
    neurodecode train experiment=digits69 data.path=/data/digit69_28x28.mat aligner=mlp
    neurodecode train --multirun experiment=demo aligner=ridge,mlp seed=0,1,2
    neurodecode train experiment=demo hydra/launcher=submitit_slurm hydra.launcher.gpus_per_node=1 --multirun
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .configs import CONF_DIR
from .epochs import EpochSet
from .pipeline import (HEAD_KINDS, DecodingPipeline, TargetSpace, image_head_format, input_contract, resize_images,
                       stimulus_images)

__all__ = ["compose", "fit_pipeline", "load_data", "main", "run", "split_heldout"]


def _log(msg: str) -> None:
    print(f"[neurodecode train] {msg}", flush=True)


def load_data(data_cfg: Mapping[str, Any], path: Any = None) -> EpochSet:
    """Instantiate a ``data`` config (``path`` replaced when given) into one :class:`EpochSet` with stimuli."""
    from omegaconf import OmegaConf

    from .configs import instantiate

    # resolved against the whole config first (e.g. ${preprocessing.steps}); checkpoints store it resolved
    cfg = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=True) if OmegaConf.is_config(data_cfg)
                           else dict(data_cfg))
    if path is not None:
        if "path" not in cfg:
            raise ValueError(f"the data recipe {cfg.get('_target_')!r} reads no files (it has no 'path' field); "
                             "pass an epoch store (.h5) instead, e.g. the run's heldout_epochs.h5")
        paths = [str(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
        cfg.path = paths if len(paths) > 1 else paths[0]
    out = instantiate(cfg)
    if isinstance(out, tuple):          # loaders that return (epochs, report)
        out = out[0]
    if not isinstance(out, EpochSet):
        raise TypeError(f"data config {cfg.get('_target_')!r}: expected it to build a neurodecode EpochSet, got "
                        f"{type(out).__name__}")
    return out


def split_heldout(epochs: EpochSet, split: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out epoch indices: by a table column's value (``column``, ``test``) or by whole runs /
    sessions / subjects (``by``, ``test`` fraction or values; :func:`neurodecode.datasets.split_epochs`)."""
    column, test = split.get("column"), split.get("test")
    if column:
        if column not in epochs.table.columns:
            raise ValueError(f"field 'split.column': expected a column of the epochs' table "
                             f"{list(epochs.table.columns)}, got {column!r}")
        values = test if isinstance(test, (list, tuple)) else [test]
        held = epochs.table[column].astype(str).isin([str(v) for v in values]).to_numpy()
        train, heldout = np.flatnonzero(~held), np.flatnonzero(held)
    else:
        from .datasets import split_epochs

        parts = split_epochs(epochs.table, by=split.get("by", "run"), test=test, seed=int(split.get("seed", 0)))
        train, heldout = np.asarray(parts.parts["train"]), np.asarray(parts.parts["test"])
    if len(train) == 0 or len(heldout) == 0:
        raise ValueError(f"field 'split': expected training and held-out epochs, got {len(train)} and "
                         f"{len(heldout)} with {dict(split)}")
    return train, heldout


def _fit_encoder(cfg: Any, epochs: EpochSet) -> Any:
    import torch

    from .configs import instantiate

    encoder = instantiate(cfg.encoder)
    if isinstance(encoder, torch.nn.Module):           # a masked autoencoder: pretrain it on the training epochs
        from .encoders import EncoderFeatures, pretrain
        from .models.mae import SignalMAE

        if not isinstance(encoder, SignalMAE):
            raise TypeError(f"config group 'encoder': {cfg.encoder._target_} builds a {type(encoder).__name__}; a "
                            "training run takes a scikit-learn transformer (voxels, tangent_space) or a masked "
                            "autoencoder (tiny_mae, mae_eeg, mae_meg_spatial, mae_seeg_regions)")

        trainer = {k: v for k, v in cfg.trainer.items() if k != "ddp"}
        res = pretrain(epochs, encoder, trainer=trainer, seed=int(cfg.seed))
        _log(f"encoder pretrained: masked-reconstruction error {res.val_error_before:.4f} → "
             f"{res.val_error_after:.4f}")
        encoder = EncoderFeatures.for_epochs(res.model, epochs, pool=cfg.pool, device=cfg.trainer.device)
    if not hasattr(encoder, "fit") or not hasattr(encoder, "transform"):
        raise TypeError(f"config group 'encoder': expected a scikit-learn transformer or a neurodecode masked "
                        f"autoencoder, got {type(encoder).__name__}")
    return encoder.fit(epochs.data, epochs.table["label"].to_numpy())


def _check_dim(kind: str, head: Any, dim: int) -> None:
    want = getattr(head, "embed_dim", None)
    if want is not None and int(want) != dim:
        raise ValueError(f"config 'heads.{kind}': field 'embed_dim': expected the objective's latent size {dim}, "
                         f"got {want}; set heads.{kind}.embed_dim={dim} (or change objective)")


def fit_pipeline(cfg: Any, epochs: EpochSet, stimuli_all: Any = None) -> DecodingPipeline:
    """Fit encoder, target space, aligner and heads on training epochs (a composed ``train`` config)."""
    import torch
    from omegaconf import OmegaConf

    from .configs import instantiate

    torch.manual_seed(int(cfg.seed))
    if epochs.stimuli is None or epochs.table["stimulus"].isna().any():
        raise ValueError("data: expected a stimulus id for every epoch and a stimulus table (epochs.stimuli); the "
                         "training run maps brain responses onto stimulus latents")
    ids = epochs.table["stimulus"].astype(str).tolist()
    t0 = time.perf_counter()
    encoder = _fit_encoder(cfg, epochs)
    X = np.asarray(encoder.transform(epochs.data))
    _log(f"encoder {type(encoder).__name__}: {X.shape[0]} epochs → {X.shape[1]} features "
         f"({time.perf_counter() - t0:.1f} s)")
    obj = OmegaConf.to_container(cfg.objective, resolve=True)
    target = TargetSpace(**{k: obj.get(k) for k in ("kind", "n_components", "model", "pretrained", "column",
                                                     "root", "image_size") if obj.get(k) is not None})
    target.fit(epochs.stimuli, list(dict.fromkeys(ids)))
    Y = target.transform(epochs.stimuli, ids)
    aligner = instantiate(cfg.aligner)
    t0 = time.perf_counter()
    aligner.fit(X, Y)
    _log(f"aligner {type(aligner).__name__}: {X.shape[1]} features → {Y.shape[1]}-d {target.kind} latents "
         f"({time.perf_counter() - t0:.1f} s)")

    heads, configs, trained, low = {}, {}, [], None
    images = stimulus_images(epochs.stimuli, ids, target.scale) if "pixels" in epochs.stimuli.columns else None
    for kind in HEAD_KINDS:
        hcfg = cfg.heads.get(kind) if "heads" in cfg else None
        if hcfg is None:
            continue
        hcfg = OmegaConf.to_container(hcfg, resolve=True)          # resolved against the whole config
        settings = OmegaConf.to_container(cfg.get(kind, {}) or {}, resolve=True)
        if kind == "captions" and hcfg.get("captions") == "???":
            if "caption" not in epochs.stimuli.columns:
                raise ValueError("heads.captions: a trained caption head needs a 'caption' column in the stimulus "
                                 "table")
            hcfg["captions"] = sorted(set(epochs.stimuli["caption"].astype(str)))
        head = instantiate(hcfg)
        _check_dim(kind, head, Y.shape[1])
        fit = settings.get("fit") or {}
        t0 = time.perf_counter()
        if kind == "images" and images is not None:
            size, channels = image_head_format(head)
            imgs = resize_images(images, size, channels)
            if fit.get("max_epochs", 0) > 0 and hasattr(head, "fit"):
                head.fit(imgs, Y, trainer={"seed": int(cfg.seed), **fit})
                trained.append(kind)
            if settings.get("low_level", False) and not target.is_image_space:   # (image spaces decode linearly)
                from .alignment import RidgeAlignment

                ridge = RidgeAlignment(alphas=np.logspace(-1, 6, 15)).fit(X, imgs.reshape(len(imgs), -1))
                low = {"ridge": ridge, "shape": list(imgs.shape[1:])}
        elif kind == "captions" and fit.get("max_epochs", 0) > 0 and hasattr(head, "fit"):
            caps = epochs.stimuli.set_index("stimulus").loc[ids, "caption"].astype(str).tolist()
            head.fit(Y, caps, trainer={"seed": int(cfg.seed), **fit})
            trained.append(kind)
        if kind in trained:
            _log(f"head {kind} ({type(head).__name__}) trained in {time.perf_counter() - t0:.1f} s")
        heads[kind], configs[kind] = head, hcfg
    stimuli = stimuli_all if stimuli_all is not None else epochs.stimuli
    gallery = target.transform(stimuli, stimuli["stimulus"].tolist())
    return DecodingPipeline(OmegaConf.to_container(cfg, resolve=True), input_contract(epochs), encoder, target,
                            aligner, heads, configs, trained, low, stimuli, gallery)


def run(cfg: Any, out_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Any]:
    """One training run into ``out_dir``: data → split → fit → held-out scores → checkpoint.

    A folder that already holds a run (``metrics.json`` or ``checkpoint/``) is refused unless ``overwrite``.
    """
    from omegaconf import OmegaConf

    from .reconstruct import latent_scores
    from .storage import save

    out = Path(out_dir)
    if not overwrite and ((out / "metrics.json").exists() or (out / "checkpoint").exists()):
        raise FileExistsError(f"{out}: a training run is already there; choose another folder or pass overwrite")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    _maybe_init_distributed()
    epochs = load_data(cfg.data)
    _log(f"data: {epochs.n_epochs} epochs × {epochs.n_channels} channels × {epochs.n_times} times "
         f"({cfg.data._target_})")
    train_idx, held_idx = split_heldout(epochs, cfg.split)
    train_ep, held_ep = epochs[train_idx], epochs[held_idx]
    pipe = fit_pipeline(cfg, train_ep, stimuli_all=epochs.stimuli)
    save(held_ep, out / "heldout_epochs.h5", overwrite=True)
    scores = latent_scores(pipe, pipe.latents(held_ep), epochs.stimuli,
                           held_ep.table["stimulus"].astype(str).tolist(), seed=int(cfg.seed),
                           names=(str(cfg.name), str(cfg.name)))
    ckpt = pipe.save(out / "checkpoint", overwrite=True)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    metrics = {"name": str(cfg.name), "n_train": len(train_idx), "n_heldout": len(held_idx),
               "seconds": round(time.perf_counter() - t_start, 2),
               "scores": json.loads(scores.to_json()), "checkpoint": str(ckpt)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
    for row in metrics["scores"]:
        _log(f"held-out {row['kind']} {row['metric']}: {row['value']:.3f} (chance {row['chance']:.3g})")
    _log(f"checkpoint → {ckpt}; held-out trials → {out / 'heldout_epochs.h5'} ({metrics['seconds']:.0f} s)")
    return metrics


def _maybe_init_distributed() -> None:
    """Under torchrun (WORLD_SIZE > 1) or a SLURM job with several tasks (Hydra's submitit launcher,
    ``tasks_per_node``) join the process group, so the Trainer runs DDP."""
    import torch

    if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        from submitit.helpers import TorchDistributedEnvironment   # installed with hydra-submitit-launcher

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


HINT = ("Hint: a key that the config does not have is refused; add a new key with +key=value, see what exists "
        "with `neurodecode train --cfg job` (resolved config) or `neurodecode train --help` (groups and options).")


def compose(overrides: Sequence[str] = ()) -> Any:
    """Compose ``conf/train.yaml`` with overrides (Hydra's compose API); errors get a hint."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            return hydra_compose("train", overrides=list(overrides), return_hydra_config=False)
        except (HydraException, OmegaConfBaseException) as err:
            raise ValueError(f"{err}\n{HINT}") from None


def _hydra_main(cfg: Any) -> float:
    from hydra.core.hydra_config import HydraConfig

    metrics = run(cfg, HydraConfig.get().runtime.output_dir)
    top = [r["value"] for r in metrics["scores"] if r["metric"] == "two_way"]
    return float(top[0]) if top else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neurodecode train`` and ``python -m neurodecode.train`` (Hydra's command line)."""
    import hydra

    argv = list(sys.argv[1:] if argv is None else argv)
    plain = [a for a in argv if not a.startswith("-") and "=" in a]
    if not any(a in ("--help", "-h", "--hydra-help", "--info", "-i") for a in argv) and "--multirun" not in argv \
            and "-m" not in argv:
        compose(plain)            # fail early, with the hint, on a bad key or value
    app = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")(_hydra_main)
    old = sys.argv
    sys.argv = ["neurodecode train", *argv]
    try:
        app()
    finally:
        sys.argv = old
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as err:
        print(f"python -m neurodecode.train: error: {err}", file=sys.stderr)
        sys.exit(2)
